//! Configuration and input validation through the component, the host's
//! outbound allow-list, and a scan of every output of failing scenarios for
//! the secret key and the session token.

use std::process::Command;
use std::time::Duration;

use serde_json::json;

use ld_dynamodb_host::embed::{
    Credentials, HostOptions, RetryPolicy, Session, StoreConfig, StoreError, TransportKind,
};
use ld_dynamodb_host::outbound::Allow;
use ld_dynamodb_host::Error;
use ld_dynamodb_tests::proxy::{aws_signature_echo, Action, Proxy};
use ld_dynamodb_tests::*;

const SECRET: &str = "S3CR3T-never-print-me-0123456789abcdef";
const TOKEN: &str = "T0K3N-never-print-me-session";

fn with_secrets(config: StoreConfig) -> StoreConfig {
    let credentials = Credentials {
        secret_access_key: SECRET.into(),
        session_token: Some(TOKEN.into()),
        ..config.credentials().clone()
    };
    config.with_credentials(credentials)
}

fn assert_clean(text: &str) {
    assert!(!text.contains(SECRET), "the secret leaked: {text}");
    assert!(!text.contains(TOKEN), "the session token leaked: {text}");
}

async fn open_error(config: StoreConfig) -> String {
    let instance = runtime()
        .instance(&HostOptions::default().capture_stderr(true))
        .await
        .unwrap();
    match instance.open(&config).await {
        Err(Error::Store(StoreError::InvalidConfig(message))) => message,
        Err(other) => panic!("{other:?}"),
        Ok(_) => panic!("config {config:?} was accepted"),
    }
}

#[tokio::test]
async fn invalid_configs_get_their_own_messages() {
    let base = || Backend::dynalite().config("some-table", None);
    type Change = Box<dyn Fn(StoreConfig) -> StoreConfig>;
    let cases: Vec<(Change, &str)> = vec![
        (Box::new(|c| c.with_table("")), "table name is required"),
        (
            Box::new(|c| c.with_endpoint(Some("ftp://127.0.0.1:1".into()))),
            "only http and https",
        ),
        (
            Box::new(|c| c.with_endpoint(Some("not a url".into()))),
            "is invalid",
        ),
        (Box::new(|c| c.with_region("")), "region is required"),
        (
            Box::new(|c| c.with_region("Not_A_Region")),
            "region \"Not_A_Region\" is invalid",
        ),
        (
            Box::new(|c| {
                let credentials = Credentials {
                    access_key_id: "".into(),
                    ..c.credentials().clone()
                };
                c.with_credentials(credentials)
            }),
            "access key id is required",
        ),
        (
            Box::new(|c| {
                let credentials = Credentials {
                    secret_access_key: "".into(),
                    ..c.credentials().clone()
                };
                c.with_credentials(credentials)
            }),
            "secret access key is required",
        ),
    ];
    for (change, expected) in cases {
        let config = change(with_secrets(base()));
        let message = open_error(config).await;
        assert!(
            message.contains(expected),
            "{message:?} should say {expected:?}"
        );
        assert_clean(&message);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_token_is_sent_and_signed() {
    let backend = Backend::dynalite();
    let (table, _) = fresh_store(&backend, "token", None).await;
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let proxy = Proxy::start(&backend.endpoint, move |r| {
        log.lock().unwrap().push(r.headers.clone());
        Action::Forward
    })
    .await;
    let mut config = with_secrets(backend.config(&table, None));
    config = config.with_endpoint(Some(proxy.endpoint.clone()));
    let mut store = open_config(&config).await;
    assert_eq!(ok!(store.get("features", "k")), None);
    let headers = seen.lock().unwrap()[0].clone();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(header("x-amz-security-token").as_deref(), Some(TOKEN));
    let auth = header("authorization").unwrap();
    assert!(auth.contains("x-amz-security-token"), "{auth}");
    assert!(!auth.contains("user-agent"));
    assert!(!auth.contains(SECRET));
}

/// A store on `table` in an instance with the given outbound policy.
async fn open_allowing(backend: &Backend, table: &str, allow: Allow) -> Session {
    let options = HostOptions::default().allow(allow).capture_stderr(true);
    let instance = runtime().instance(&options).await.unwrap();
    instance.open(&backend.config(table, None)).await.unwrap()
}

#[tokio::test]
async fn the_host_denies_origins_other_than_the_allowed_ones() {
    let backend = Backend::dynalite();
    let (table, _) = fresh_store(&backend, "allow", None).await;
    // Another port; the configured host and port over another scheme.
    let https = backend.endpoint.replace("http://", "https://");
    for allowed in ["http://127.0.0.1:9".to_string(), https] {
        let mut store = open_allowing(&backend, &table, Allow::Only(vec![allowed])).await;
        let err = store.get("features", "k").await.unwrap_err();
        match &err {
            Error::Store(StoreError::Transport(t)) => {
                assert_eq!(t.kind(), TransportKind::HttpRequestDenied);
                assert_eq!(t.attempts, 1, "a denied request is not retried");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(store.instance().requests_sent(), 0);
    }
    // The default policy allows exactly the configured endpoint.
    let mut store = open_allowing(&backend, &table, Allow::default()).await;
    assert_eq!(store.get("features", "k").await.unwrap(), None);
}

#[tokio::test]
async fn failing_scenarios_never_show_secrets() {
    let moto = Backend::moto();
    let dynalite = Backend::dynalite();
    let (table, _) = fresh_store(&moto, "secrets", None).await;
    let mut refused = dynalite.config(&table, None);
    refused = refused.with_endpoint(Some("http://127.0.0.1:9".into()));
    refused = refused.with_retry(Some(RetryPolicy {
        max_attempts: 2,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(2),
    }));
    // A server that echoes the signed request, as AWS's signature errors do:
    // the session token is sent, so this scenario can leak it.
    let echo = Proxy::start(&dynalite.endpoint, aws_signature_echo).await;
    let mut echoed = dynalite.config(&table, None);
    echoed = echoed.with_endpoint(Some(echo.endpoint.clone()));
    let scenarios = [
        ("wrong secret on moto", moto.config(&table, None)),
        ("missing table", dynalite.config("no-such-table", None)),
        ("connection refused", refused),
        ("request echoed", echoed),
    ];
    for (name, config) in scenarios {
        let mut store = open_config(&with_secrets(config)).await;
        let outputs = [
            store.get("features", "k").await.map(|_| ()),
            store
                .init(&[collection("features", vec![item("a", 1, json!({}))])])
                .await
                .map(|_| ()),
            store
                .upsert("features", "k", &item("k", 1, json!({})).item)
                .await
                .map(|_| ()),
            store
                .upsert("features", "k", &item("other", 1, json!({})).item)
                .await
                .map(|_| ()),
        ];
        for result in outputs {
            let err = result.expect_err(name);
            assert!(matches!(err, Error::Store(_)), "{name}: {err:?}");
            assert_clean(&format!("{err:?} {err}"));
        }
        assert_clean(&store.instance().stderr());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_output_never_shows_secrets() {
    let moto = Backend::moto();
    let binary = cli_binary();
    let echo = Proxy::start(&moto.endpoint, aws_signature_echo).await;
    for (endpoint, args) in [
        (echo.endpoint.as_str(), vec!["status"]),
        (moto.endpoint.as_str(), vec!["status"]),
        (moto.endpoint.as_str(), vec!["get", "flags", "x"]),
        ("http://127.0.0.1:9", vec!["all", "flags"]),
        ("ftp://bad", vec!["status"]),
    ] {
        let out = Command::new(&binary)
            .args(&args)
            .env("AWS_ACCESS_KEY_ID", &moto.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", SECRET)
            .env("AWS_SESSION_TOKEN", TOKEN)
            .env("AWS_REGION", REGION)
            .env("AWS_ENDPOINT_URL", endpoint)
            .env("LD_DYNAMODB_TABLE", "secrets-cli")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} against {endpoint} fails");
        assert_clean(&String::from_utf8_lossy(&out.stdout));
        assert_clean(&String::from_utf8_lossy(&out.stderr));
    }
}
