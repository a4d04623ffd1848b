//! HTTPS end to end: a TLS front (`support/tls.rs`, a test CA and server
//! certificates made at test time) before moto with SigV4 checking on. The
//! library and the CLI complete Init and reads through it when they trust the
//! test CA (a pool's CA bundle, `AWS_CA_BUNDLE`, a profile's `ca_bundle`); a
//! certificate for another host, from an unknown authority, or expired is
//! refused with an error naming the cause, before any request is sent; and
//! nothing reaches the front in the clear.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Arc;

use serde_json::{json, Value};

use ld_dynamodb_host::connections::{tls_failure, Pool, Trust};
use ld_dynamodb_host::embed::{HostOptions, Session, StoreConfig, StoreError, TransportKind};
use ld_dynamodb_host::error::explained;
use ld_dynamodb_tests::tls::{Pki, TlsFront};
use ld_dynamodb_tests::{
    cli_binary, collection, item, ok, run_with_stdin, runtime, store_err, tombstone, unique_table,
    versions, Backend, REGION,
};

/// A store session through `front` whose connections trust `trust`.
async fn session(front: &TlsFront, table: &str, trust: Trust) -> (StoreConfig, Session) {
    let mut config = Backend::moto().config(table, None);
    config = config.with_endpoint(Some(front.endpoint.clone()));
    let options = HostOptions::default().capture_stderr(true);
    let instance = runtime()
        .instance_with_connections(&options, Arc::new(Pool::trusting(trust)))
        .await
        .unwrap();
    let session = instance.open(&config).await.unwrap();
    (config, session)
}

/// Asserts what the front saw: `handshakes` completed, nothing in the clear,
/// and bytes forwarded only after a handshake.
fn assert_all_tls(front: &TlsFront, handshakes: bool) {
    assert_eq!(front.plaintext(), 0, "a connection started in the clear");
    assert!(front.connections() >= 1, "the client connected");
    if handshakes {
        assert!(front.handshakes() >= 1 && front.forwarded() > 0);
    } else {
        assert_eq!(front.handshakes(), 0, "{:?}", front.failures());
        assert_eq!(front.forwarded(), 0, "nothing passed a refused handshake");
    }
}

#[tokio::test]
async fn the_library_inits_and_reads_over_https_trusting_a_ca_bundle() {
    let moto = Backend::moto();
    let pki = Pki::make();
    let front = TlsFront::start(&moto.endpoint, &pki, "good").await;
    let table = unique_table("https");
    let (_, mut store) = session(&front, &table, Trust::Bundle(pki.path("ca.pem"))).await;
    assert!(ok!(store.create_table()));
    let data = [
        collection(
            "features",
            vec![item("f1", 3, json!({"on": true})), tombstone("f2", 2)],
        ),
        collection("segments", vec![item("s1", 1, json!({}))]),
    ];
    let report = ok!(store.init(&data));
    assert_eq!((report.written, report.deleted), (3, 0));
    assert!(ok!(store.is_initialized()));
    let f1 = ok!(store.get("features", "f1")).unwrap();
    assert_eq!((f1.version, f1.deleted), (3, false));
    assert_eq!(
        versions(&ok!(store.get_all("features"))),
        [("f1".into(), 3, false), ("f2".into(), 2, true)]
    );
    // The rows are in moto, read without TLS by boto3.
    assert_eq!(moto.scan(&table).len(), 4, "3 items and the marker");
    assert_all_tls(&front, true);
    assert_eq!(tls_failure(&front.endpoint), None);
}

#[tokio::test]
async fn each_bad_certificate_is_refused_with_its_cause_before_any_request() {
    let moto = Backend::moto();
    let pki = Pki::make();
    let ca = pki.path("ca.pem");
    let cases = [
        (
            "wrong-host",
            Trust::Bundle(ca.clone()),
            "not valid for the host name localhost",
        ),
        (
            "unknown-ca",
            Trust::Bundle(ca.clone()),
            "not signed by a trusted certificate authority",
        ),
        ("expired", Trust::Bundle(ca.clone()), "has expired"),
        // The test CA is not among the built-in roots.
        (
            "good",
            Trust::WebPki,
            "not signed by a trusted certificate authority (trusting the built-in webpki roots",
        ),
    ];
    for (cert, trust, cause) in cases {
        let front = TlsFront::start(&moto.endpoint, &pki, cert).await;
        let (config, mut store) = session(&front, &unique_table("https-bad"), trust).await;
        let error = store_err!(store.get("features", "f1"));
        let StoreError::Transport(transport) = &error else {
            panic!("{cert}: a transport error, not {error:?}");
        };
        // Not retried: another attempt meets the same certificate.
        assert_eq!(
            (transport.kind(), transport.attempts),
            (TransportKind::TlsCertificateError, 1),
            "{cert}"
        );
        let text = explained(error, &config).to_string();
        assert!(
            text.contains(cause) && text.contains(&front.endpoint),
            "{cert}: {text}"
        );
        assert_all_tls(&front, false);
        // The server side sees the client's alert (its task may run after
        // the client's error returns: waited for, up to a generous bound).
        let waited = std::time::Instant::now();
        while front.failures().is_empty() && waited.elapsed() < std::time::Duration::from_secs(30) {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        let failures = front.failures();
        assert!(
            failures.iter().any(|f| f.contains("received fatal alert")),
            "{cert}: {failures:?}"
        );
    }
}

#[tokio::test]
async fn an_unusable_ca_bundle_is_named_in_the_error() {
    let pki = Pki::make();
    let front = TlsFront::start(&Backend::moto().endpoint, &pki, "good").await;
    let missing = pki.path("missing.pem");
    let (config, mut store) = session(&front, "no-bundle", Trust::Bundle(missing.clone())).await;
    let error = store_err!(store.get("features", "f1"));
    let text = explained(error, &config).to_string();
    assert!(
        text.contains(&format!("{}", missing.display())) && text.contains("cannot read"),
        "{text}"
    );
    // Nothing was sent: the pool did not connect without trust.
    assert_eq!(front.connections(), 0);
    let not_pem = pki.path("good.key");
    let (config, mut store) = session(&front, "no-bundle", Trust::Bundle(not_pem)).await;
    let error = store_err!(store.get("features", "f1"));
    assert!(
        explained(error, &config)
            .to_string()
            .contains("holds no PEM certificate"),
        "a key file is not a bundle"
    );
}

/// The CLI through `front`, with keys for moto and `env` added.
fn cli(
    front: &TlsFront,
    home: &std::path::Path,
    table: &str,
    env: &[(&str, PathBuf)],
    args: &[&str],
    stdin: &str,
) -> Output {
    let moto = Backend::moto();
    let mut command = Command::new(cli_binary());
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("AWS_ACCESS_KEY_ID", &moto.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &moto.secret_access_key)
        .env("AWS_DEFAULT_REGION", REGION)
        .env("AWS_ENDPOINT_URL", &front.endpoint)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("LD_DYNAMODB_TABLE", table)
        .env(
            "LD_DYNAMODB_CACHE_DIR",
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/component-cache"),
        );
    for (name, value) in env {
        command.env(name, value);
    }
    run_with_stdin(command, stdin)
}

fn json_of(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

const DATA: &str = r#"{"flags": {"f1": {"key": "f1", "version": 3, "on": true}}, "segments": {}}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_trusts_aws_ca_bundle_and_the_profile_ca_bundle() {
    let moto = Backend::moto();
    let pki = Pki::make();
    let front = TlsFront::start(&moto.endpoint, &pki, "good").await;
    let ca = pki.path("ca.pem");
    // The profile's config file names the CA bundle.
    let config = pki.path("config");
    std::fs::write(
        &config,
        format!("[profile tls]\nca_bundle = {}\n", ca.display()),
    )
    .unwrap();
    let by_variable = [("AWS_CA_BUNDLE", ca.clone())];
    let by_profile = [
        ("AWS_CONFIG_FILE", config.clone()),
        ("AWS_PROFILE", PathBuf::from("tls")),
    ];
    let table = unique_table("https-cli");
    // The front runs on this runtime's other worker while a CLI runs.
    let run = |env: &[(&str, PathBuf)], args: &[&str], stdin: &str| {
        tokio::task::block_in_place(|| cli(&front, &pki.dir, &table, env, args, stdin))
    };
    assert_eq!(
        json_of(&run(&by_variable, &["create-table"], ""))["created"],
        true
    );
    assert_eq!(
        json_of(&run(&by_profile, &["init", "-"], DATA))["written"],
        1
    );
    assert_eq!(
        json_of(&run(&by_variable, &["get", "flags", "f1"], ""))["version"],
        3
    );
    assert_eq!(
        json_of(&run(&by_profile, &["status"], "")),
        json!({"initialized": true, "available": true})
    );
    assert_all_tls(&front, true);
    // Without either, the built-in roots do not know the test CA.
    let out = run(&[], &["status"], "");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("TLS-certificate-error")
            && stderr.contains("not signed by a trusted certificate authority")
            && stderr.contains("AWS_CA_BUNDLE"),
        "{stderr}"
    );
    assert!(!stderr.contains(&moto.secret_access_key));
    // A bad certificate through the CLI: the cause in its one error line.
    let expired = TlsFront::start(&moto.endpoint, &pki, "expired").await;
    let out = tokio::task::block_in_place(|| {
        cli(
            &expired,
            &pki.dir,
            &table,
            &by_variable,
            &["get", "flags", "f1"],
            "",
        )
    });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("has expired"),
        "{stderr}"
    );
    assert_all_tls(&expired, false);
}

/// `wasmtime serve` (the edge app's host) trusts only the webpki roots built
/// into it: the test CA, named by `AWS_CA_BUNDLE` and `SSL_CERT_FILE` in its
/// environment, does not make the front's certificate acceptable.
#[test]
fn wasmtime_serve_takes_no_custom_ca() {
    let moto = Backend::moto();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let pki = Pki::make();
    let front = runtime.block_on(TlsFront::start(&moto.endpoint, &pki, "good"));
    let ca = pki.path("ca.pem");
    let mut command = Command::new(ld_dynamodb_tests::project_root().join(".tools/bin/wasmtime"));
    command
        .env_clear()
        .env("AWS_ACCESS_KEY_ID", &moto.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &moto.secret_access_key)
        .env("AWS_CA_BUNDLE", &ca)
        .env("SSL_CERT_FILE", &ca);
    let vars = [
        "table=edge-tls".to_string(),
        format!("region={REGION}"),
        format!("endpoint={}", front.endpoint),
        "auth=none".into(),
    ];
    let served = crate::edge::Served::spawn(command, &vars);
    // Every answer is 503, and the log names the TLS failure. Under load,
    // wasmtime's client sometimes reports the refused handshake as a stream
    // closed early (HTTP-response-incomplete) instead: the app reads again at
    // the next request after its retry interval (1 s), so requests go on
    // until a TLS error is logged, up to 30 s (the log is read by a thread).
    let waited = std::time::Instant::now();
    let mut asked = None::<std::time::Instant>;
    while !served.log().contains("TLS-") && waited.elapsed() < std::time::Duration::from_secs(30) {
        if asked.is_none_or(|at| at.elapsed() > std::time::Duration::from_millis(1100)) {
            let (status, _, body) = served.get("/sdk/latest-all", &[]);
            assert_eq!(status, 503, "{}", String::from_utf8_lossy(&body));
            asked = Some(std::time::Instant::now());
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(served.log().contains("TLS-"), "{}", served.log());
    assert_all_tls(&front, false);
}
