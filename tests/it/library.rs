//! The host as a library: the pooled `DataStore` shared by tasks, a fresh
//! instance after a trap, credentials rotated at run time against moto's IAM
//! (SigV4 checked), and the `examples/` program against dynalite.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_credential_types::provider::{future, ProvideCredentials};
use serde_json::{json, Value};

use ld_dynamodb_host::data;
use ld_dynamodb_host::embed::{
    Credentials, HostOptions, RetryPolicy, StoreError, Timeouts, TransportKind, UpsertOutcome,
};
use ld_dynamodb_host::{CredentialSource, DataStore, Error};
use ld_dynamodb_tests::iam::Iam;
use ld_dynamodb_tests::proxy::{Action, Proxy};
use ld_dynamodb_tests::{
    collection, item, open_config, runtime, unique_table, user_environment, Backend, REGION,
};

async fn created_store(backend: &Backend, label: &str) -> (String, DataStore) {
    let table = unique_table(label);
    let store = backend
        .data_store(&table)
        .build(runtime().clone())
        .await
        .expect("opens");
    assert!(store.create_table().await.expect("creates the table"));
    (table, store)
}

#[test]
fn the_store_is_send_and_sync() {
    fn shared<T: Send + Sync + Clone + 'static>() {}
    shared::<DataStore>();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_share_a_bounded_pool_of_instances() {
    let backend = Backend::dynalite();
    let table = unique_table("pool");
    let store = backend
        .data_store(&table)
        .instances(3)
        .build(runtime().clone())
        .await
        .unwrap();
    store.create_table().await.unwrap();
    let items: Vec<_> = (0..20)
        .map(|i| item(&format!("f{i}"), i + 1, json!({})))
        .collect();
    store.init(&[collection("features", items)]).await.unwrap();
    // Each GetItem takes 200 ms at the proxy, so concurrent calls need
    // instances of their own, up to the limit.
    let proxy = Proxy::start(&backend.endpoint, |request| match request.op.as_str() {
        "GetItem" => Action::Stall(Duration::from_millis(200)),
        _ => Action::Forward,
    })
    .await;
    let store = backend
        .data_store(&table)
        .endpoint(&proxy.endpoint)
        .instances(3)
        .build(runtime().clone())
        .await
        .unwrap();
    let calls: Vec<_> = (0..12)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.get("features", &format!("f{}", i % 20)).await })
        })
        .collect();
    for (i, call) in calls.into_iter().enumerate() {
        let got = call.await.unwrap().unwrap().expect("the item exists");
        assert_eq!(got.version, (i % 20) as u64 + 1);
    }
    assert_eq!(store.instances_created(), 3);
    assert!(store.is_initialized().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trapped_instance_is_replaced_by_a_fresh_one() {
    let backend = Backend::dynalite();
    let (table, direct) = created_store(&backend, "trap").await;
    direct
        .upsert("features", "f", &item("f", 3, json!({})).item)
        .await
        .unwrap();
    // The first GetItem stalls past the host's call timeout: the call traps.
    let mut first = true;
    let proxy = Proxy::start(&backend.endpoint, move |request| {
        if request.op == "GetItem" && std::mem::take(&mut first) {
            Action::Stall(Duration::from_secs(3))
        } else {
            Action::Forward
        }
    })
    .await;
    let store = backend
        .data_store(&table)
        .endpoint(&proxy.endpoint)
        .instances(1)
        .host_options(
            HostOptions::default()
                .call_timeout(Duration::from_millis(500))
                .capture_stderr(true),
        )
        .build(runtime().clone())
        .await
        .unwrap();
    let trapped = store.get("features", "f").await;
    assert!(matches!(trapped, Err(Error::Host(_))), "{trapped:?}");
    let got = store
        .get("features", "f")
        .await
        .expect("a new instance answers");
    assert_eq!(got.map(|i| i.version), Some(3));
    assert_eq!(store.instances_created(), 2);
}

#[tokio::test]
async fn store_errors_keep_their_type_and_text() {
    let backend = Backend::dynalite();
    let store = backend
        .data_store(&unique_table("missing"))
        .build(runtime().clone())
        .await
        .unwrap();
    let error = store.get("features", "f").await.unwrap_err();
    let Some(StoreError::Service(service)) = error.store_error() else {
        panic!("{error:?}");
    };
    assert_eq!(service.code, "ResourceNotFoundException");
    assert!(error
        .to_string()
        .starts_with("DynamoDB error ResourceNotFoundException: "));
    // It names what was asked, and how to fix it.
    let text = error.to_string();
    assert!(
        text.contains(&format!("in region {REGION} at {}", backend.endpoint))
            && text.contains("ld-dynamodb create-table"),
        "{text}"
    );
    let invalid = backend
        .data_store("")
        .build(runtime().clone())
        .await
        .err()
        .unwrap();
    assert_eq!(
        invalid.to_string(),
        "invalid configuration: no table name: set LD_DYNAMODB_TABLE, or pass --table to the CLI"
    );
}

/// Settings by name (`DataStoreBuilder::setting`): they reach the component
/// (the attempts of a refused request are the setting's), and an unknown
/// name is refused when the store is built, naming it.
#[tokio::test]
async fn settings_by_name_reach_the_component_and_unknown_ones_are_refused() {
    let backend = Backend::dynalite();
    let unknown = backend
        .data_store("flags")
        .setting("init-speed", "3")
        .build(runtime().clone())
        .await
        .err()
        .unwrap();
    assert!(
        matches!(unknown.store_error(), Some(StoreError::InvalidConfig(m)) if m.contains("unknown setting \"init-speed\"")),
        "{unknown}"
    );
    // Nothing listens on port 9: every attempt is refused at once.
    let store = backend
        .data_store("flags")
        .endpoint("http://127.0.0.1:9")
        .setting("max-attempts", "2")
        .setting("base-delay-ms", "1")
        .setting("max-delay-ms", "1")
        .build(runtime().clone())
        .await
        .unwrap();
    let error = store.get("features", "f").await.unwrap_err();
    let Some(StoreError::Transport(refused)) = error.store_error() else {
        panic!("{error:?}");
    };
    assert_eq!(
        (refused.kind(), refused.attempts),
        (TransportKind::ConnectionRefused, 2)
    );
}

/// A credentials provider the test switches from one key to another (the
/// second field counts its fetches).
#[derive(Debug, Clone)]
pub(crate) struct Switchable(pub Arc<Mutex<Credentials>>, pub Arc<AtomicUsize>);

impl ProvideCredentials for Switchable {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        let c = self.0.lock().unwrap().clone();
        self.1.fetch_add(1, Ordering::SeqCst);
        future::ProvideCredentials::ready(Ok(aws_credential_types::Credentials::new(
            c.access_key_id,
            c.secret_access_key,
            None,
            None,
            "test",
        )))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_key_keeps_the_store_working() {
    let moto = Backend::moto();
    let iam = Iam::new_user(&moto, "rotate", &["dynamodb:*"]);
    let (table, admin) = created_store(&moto, "rotate").await;
    admin
        .upsert("features", "f", &item("f", 1, json!({})).item)
        .await
        .unwrap();

    let key1 = iam.create_key();
    let provider = Switchable(Arc::new(Mutex::new(key1.clone())), Arc::default());
    let fetches = || provider.1.load(Ordering::SeqCst);
    let proxy = Proxy::start(&moto.endpoint, |_| Action::Forward).await;
    let gets = || {
        proxy
            .exchanges()
            .iter()
            .filter(|e| e.request.op == "GetItem")
            .count()
    };
    let store = moto
        .data_store(&table)
        .endpoint(&proxy.endpoint)
        .credentials(CredentialSource::from_provider(provider.clone()))
        .instances(2)
        .build(runtime().clone())
        .await
        .unwrap();
    assert_eq!(
        store.get("features", "f").await.unwrap().unwrap().version,
        1
    );

    // Planned rotation: a new key, handed over (set-credentials), the old one deleted.
    let key2 = iam.create_key();
    *provider.0.lock().unwrap() = key2.clone();
    store.refresh_credentials().await.unwrap();
    iam.delete_key(&key1);
    for version in 2..=4 {
        let outcome = store
            .upsert("features", "f", &item("f", version, json!({})).item)
            .await
            .expect("signed with the new key");
        assert_eq!(outcome, UpsertOutcome::Applied);
    }

    // Unannounced rotation: the key in use is deleted; the service's
    // InvalidClientTokenId makes the store fetch credentials and retry once.
    let key3 = iam.create_key();
    *provider.0.lock().unwrap() = key3.clone();
    iam.delete_key(&key2);
    let (fetched, sent) = (fetches(), gets());
    assert_eq!(
        store.get("features", "f").await.unwrap().unwrap().version,
        4
    );
    assert_eq!(
        (fetches(), gets()),
        (fetched + 1, sent + 2),
        "one fetch, one retry"
    );
    assert!(store.is_initialized().await.is_ok());

    // No working key at all: the rejection is reported after one fetch, which
    // gave the same key, so without a retry.
    iam.delete_key(&key3);
    let (fetched, sent) = (fetches(), gets());
    let error = store.get("features", "f").await.unwrap_err();
    assert_eq!((fetches(), gets()), (fetched + 1, sent + 1));
    let Some(StoreError::Service(service)) = error.store_error() else {
        panic!("{error:?}");
    };
    assert_eq!(service.code, "InvalidClientTokenId");
}

#[tokio::test]
async fn set_credentials_replaces_the_key_of_an_open_store() {
    let moto = Backend::moto();
    let iam = Iam::new_user(&moto, "setcred", &["dynamodb:*"]);
    let (table, _admin) = created_store(&moto, "setcred").await;
    let key1 = iam.create_key();
    let config = moto.config(&table, None).with_credentials(key1.clone());
    let mut session = open_config(&config).await;
    assert!(!session.is_initialized().await.unwrap());
    let key2 = iam.create_key();
    iam.delete_key(&key1);
    let rejected = session.is_initialized().await.unwrap_err();
    assert!(
        matches!(rejected.store_error(), Some(StoreError::Service(s)) if s.code == "InvalidClientTokenId")
    );
    session.set_credentials(&key2).await.unwrap();
    assert!(!session.is_initialized().await.unwrap());
    // Empty credentials are refused and the current ones kept.
    let empty = Credentials {
        access_key_id: String::new(),
        secret_access_key: "x".into(),
        session_token: None,
    };
    assert_eq!(
        session
            .set_credentials(&empty)
            .await
            .unwrap_err()
            .store_error(),
        Some(&StoreError::InvalidConfig(
            "access key id is required".into()
        ))
    );
    assert!(!session.is_initialized().await.unwrap());
}

/// The example program (`host-example/examples/evaluate-flags.rs`), which
/// `cargo test --workspace` builds beside this test's own binary; checked to be
/// newer than its source.
fn example_binary() -> PathBuf {
    let deps = std::env::current_exe().unwrap();
    let binary = deps
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/evaluate-flags");
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../host-example/examples/evaluate-flags.rs");
    let modified = |p: &PathBuf| std::fs::metadata(p).and_then(|m| m.modified());
    let built = modified(&binary)
        .unwrap_or_else(|e| panic!("{}: {e} (run cargo test --workspace)", binary.display()));
    assert!(
        built >= modified(&source).unwrap(),
        "{} is older than its source: run cargo test --workspace",
        binary.display()
    );
    binary
}

/// Runs the example (`binary`) for `checkout-banner` and user-1 to user-3,
/// with the environment `scripts/demo.sh` sets (the endpoint in
/// `AWS_ENDPOINT_URL_DYNAMODB`).
fn run_example(
    binary: &PathBuf,
    backend: &Backend,
    table: &str,
    endpoint: &str,
) -> std::process::Output {
    let args = ["checkout-banner", "user-1", "user-2", "user-3"];
    run_example_with(binary, backend, table, endpoint, &args)
}

/// [`run_example`] with other arguments.
fn run_example_with(
    binary: &PathBuf,
    backend: &Backend,
    table: &str,
    endpoint: &str,
    args: &[&str],
) -> std::process::Output {
    Command::new(binary)
        .args(args)
        .env("LD_DYNAMODB_TABLE", table)
        .env("AWS_ENDPOINT_URL_DYNAMODB", endpoint)
        .env_remove("AWS_ENDPOINT_URL")
        .env("AWS_REGION", REGION)
        .env("AWS_ACCESS_KEY_ID", &backend.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &backend.secret_access_key)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .expect("the example was built by cargo test")
}

/// A dynalite table holding `examples/latest-all.json`.
async fn example_table(backend: &Backend, label: &str) -> String {
    let (table, store) = created_store(backend, label).await;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = std::fs::read_to_string(root.join("examples/latest-all.json")).unwrap();
    store.init(&data::all_data(&text).unwrap()).await.unwrap();
    table
}

/// Checks what the example printed for `checkout-banner` and user-1 to
/// user-3. checkout-banner needs new-checkout to serve true, which it does
/// for the members of segment beta-testers (user-1, user-2); it targets user-2.
fn assert_example_output(output: &std::process::Output) {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<Value> = String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines,
        [
            json!({ "context": "user-1", "flag": "checkout-banner", "value": "Try the new checkout",
                    "variation": 0, "reason": {"kind": "FALLTHROUGH"} }),
            json!({ "context": "user-2", "flag": "checkout-banner", "value": "Checkout",
                    "variation": 1, "reason": {"kind": "TARGET_MATCH"} }),
            json!({ "context": "user-3", "flag": "checkout-banner", "value": "Checkout",
                    "variation": 1,
                    "reason": {"kind": "PREREQUISITE_FAILED", "prerequisiteKey": "new-checkout"} }),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_evaluates_flags_from_the_table() {
    let backend = Backend::dynalite();
    let table = example_table(&backend, "example").await;
    assert_example_output(&run_example(
        &example_binary(),
        &backend,
        &table,
        &backend.endpoint,
    ));
}

/// A context argument that is a JSON object is LaunchDarkly's context JSON:
/// its kind counts (checkout-banner's prerequisite matches segment
/// beta-testers, which holds user-1 as a user: an org keyed user-1 is not in
/// it), and so do the kinds of a multi-kind context. A malformed one is an
/// error before anything is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_takes_context_json_with_kinds() {
    let backend = Backend::dynalite();
    let table = example_table(&backend, "example-json").await;
    let user = r#"{"kind":"user","key":"user-1","plan":"pro"}"#;
    let org = r#"{"kind":"org","key":"user-1"}"#;
    let multi = r#"{"kind":"multi","org":{"key":"acme"},"user":{"key":"user-2"}}"#;
    let args = ["checkout-banner", user, org, multi, "user-3"];
    let output = run_example_with(
        &example_binary(),
        &backend,
        &table,
        &backend.endpoint,
        &args,
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let json = |text: &str| serde_json::from_str::<Value>(text).unwrap();
    let prerequisite_failed =
        json!({"kind": "PREREQUISITE_FAILED", "prerequisiteKey": "new-checkout"});
    assert_eq!(
        lines,
        [
            json!({ "context": json(user), "flag": "checkout-banner",
                    "value": "Try the new checkout", "variation": 0,
                    "reason": {"kind": "FALLTHROUGH"} }),
            json!({ "context": json(org), "flag": "checkout-banner", "value": "Checkout",
                    "variation": 1, "reason": prerequisite_failed }),
            json!({ "context": json(multi), "flag": "checkout-banner", "value": "Checkout",
                    "variation": 1, "reason": {"kind": "TARGET_MATCH"} }),
            json!({ "context": "user-3", "flag": "checkout-banner", "value": "Checkout",
                    "variation": 1, "reason": prerequisite_failed }),
        ]
    );
    let args = ["checkout-banner", r#"{"kind":"user"}"#];
    let output = run_example_with(
        &example_binary(),
        &backend,
        &table,
        &backend.endpoint,
        &args,
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success() && output.stdout.is_empty());
    assert!(
        stderr.starts_with(r#"evaluate-flags: error: invalid context {"kind":"user"}: "#),
        "{stderr}"
    );
}

/// A crate outside the workspace, as docs/rust.md tells another Rust project
/// to write it: the library by path (no component installed anywhere), the
/// example program as its `main.rs`. It builds into the workspace's target
/// folder with the workspace's lock file and profiles, so the dependencies
/// already built are reused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crate_outside_the_workspace_builds_on_the_library_and_carries_the_component() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("ld-scratch-host-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("src")).unwrap();
    let workspace = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let profiles = &workspace[workspace.find("\n[profile.").expect("profiles")..];
    let manifest = format!(
        r#"[package]
name = "scratch-host"
version = "0.1.0"
edition = "2021"
publish = false

[dependencies]
ld-dynamodb-host = {{ path = "{host}", default-features = false, features = ["launchdarkly"] }}
launchdarkly-server-sdk = {{ version = "~3.2", default-features = false, features = ["hyper-rustls-webpki-roots", "crypto-aws-lc-rs"] }}
tokio = {{ version = "1", features = ["rt-multi-thread", "macros", "time", "net", "io-util"] }}
serde_json = "1.0"
anyhow = "1"

# Its own workspace.
[workspace]
{profiles}"#,
        host = root.join("host-example").display(),
    );
    std::fs::write(dir.join("Cargo.toml"), manifest).unwrap();
    std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    std::fs::copy(
        root.join("host-example/examples/evaluate-flags.rs"),
        dir.join("src/main.rs"),
    )
    .unwrap();
    let build = user_environment(&mut Command::new("cargo"))
        .args(["build", "--quiet", "--offline"])
        .env("CARGO_TARGET_DIR", root.join("target"))
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        build.status.success(),
        "{}",
        String::from_utf8_lossy(&build.stderr)
    );
    let backend = Backend::dynalite();
    let table = example_table(&backend, "scratch").await;
    let binary = root.join("target/debug/scratch-host");
    assert_example_output(&run_example(&binary, &backend, &table, &backend.endpoint));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_fails_on_an_unreachable_missing_or_empty_table() {
    let backend = Backend::dynalite();
    let (empty, _store) = created_store(&backend, "example-empty").await;
    let cases = [
        (
            empty.as_str(),
            backend.endpoint.clone(),
            "no $inited marker",
        ),
        (
            "no-such-table",
            backend.endpoint.clone(),
            "ResourceNotFoundException",
        ),
        (
            empty.as_str(),
            "http://127.0.0.1:9".to_string(),
            "transport error",
        ),
    ];
    for (table, endpoint, cause) in cases {
        let output = run_example(&example_binary(), &backend, table, &endpoint);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{table} at {endpoint}: {stderr}");
        assert!(output.stdout.is_empty(), "no value is printed");
        assert!(stderr.contains(cause), "{stderr}");
    }
    // The missing table is named with the region and endpoint asked.
    let output = run_example(
        &example_binary(),
        &backend,
        "no-such-table",
        &backend.endpoint,
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("table \"no-such-table\"")
            && stderr.contains(REGION)
            && stderr.contains(&backend.endpoint),
        "{stderr}"
    );
}

#[test]
fn a_pooled_connection_does_not_wait_for_the_runtime_that_opened_it() {
    let backend = Backend::dynalite();
    let opener = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = opener.block_on(async {
        let table = unique_table("runtimes");
        let store = backend
            .data_store(&table)
            .retry(RetryPolicy {
                max_attempts: 1,
                base_delay: Duration::from_millis(1),
                max_delay: Duration::from_millis(1),
            })
            .timeouts(Timeouts {
                first_byte: Some(Duration::from_secs(3)),
                ..Timeouts::default()
            })
            .build(runtime().clone())
            .await
            .unwrap();
        store.create_table().await.unwrap();
        store
            .upsert("features", "f", &item("f", 1, json!({})).item)
            .await
            .unwrap();
        store
    });
    // The opening runtime's only thread now waits for a call made on another
    // runtime, which takes the idle connection the first one opened.
    let got = opener.block_on(async {
        let store = store.clone();
        std::thread::spawn(move || {
            let other = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            other.block_on(store.get("features", "f"))
        })
        .join()
        .unwrap()
    });
    assert_eq!(
        got.expect("answered on the shared connection")
            .map(|i| i.version),
        Some(1)
    );
}

/// A program that links the library keeps its own `tracing` events: the store
/// crate compiles them out in the component (wasm32) only.
#[test]
fn the_library_leaves_its_users_tracing_events_in_place() {
    use tracing::level_filters::{LevelFilter, STATIC_MAX_LEVEL};
    assert_eq!(STATIC_MAX_LEVEL, LevelFilter::TRACE);
}
