//! The flag evaluator component (the evaluator with the store linked in) from the
//! project's wasmtime host, against moto with SigV4 checking on: every flag of
//! a rich data set for every context equals LaunchDarkly's Node server SDK on
//! the same file (`variationDetail`, `allFlagsState` with its options, the
//! secure-mode hash); typed errors; one round trip per call.

use std::path::PathBuf;

use serde_json::{json, Value};

use ld_dynamodb_host::data;
use ld_dynamodb_host::embed::{HostOptions, Session, StoreError};
use ld_dynamodb_host::evaluator::{
    EvalError, Evaluator, EvaluatorRuntime, FlagFilter, StateOptions,
};
use ld_dynamodb_host::{CredentialSource, Error};
use ld_dynamodb_tests::iam::Iam;
use ld_dynamodb_tests::proxy::{Action, Gate, Proxy};
use ld_dynamodb_tests::{evaluator_component, fresh_store, node_oracle, Backend, REGION};

use crate::library::Switchable;

const PREFIX: Option<&str> = Some("eval");

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(root().join("tests/data").join(name)).unwrap())
        .unwrap()
}

/// A new table loaded with `tests/data/parity.json`, and a store on it.
async fn parity_table(backend: &Backend, label: &str) -> (String, Session) {
    let (table, mut store) = fresh_store(backend, label, PREFIX).await;
    let text = std::fs::read_to_string(root().join("tests/data/parity.json")).unwrap();
    store.init(&data::all_data(&text).unwrap()).await.unwrap();
    (table, store)
}

/// A table loaded with `tests/data/parity.json` and an evaluator on it
/// (through `endpoint`, the backend's own when `None`).
async fn evaluator_on_loaded_table(backend: &Backend, endpoint: Option<&str>) -> Evaluator {
    let (table, _) = parity_table(backend, "evaluator").await;
    let mut config = backend.config(&table, PREFIX);
    if let Some(endpoint) = endpoint {
        config = config.with_endpoint(Some(endpoint.to_string()));
    }
    let runtime = EvaluatorRuntime::load(&evaluator_component()).unwrap();
    runtime
        .open(&HostOptions::default(), &config)
        .await
        .expect("valid config")
}

const OPTIONS: [(FlagFilter, bool, bool); 4] = [
    (FlagFilter::All, false, false),
    (FlagFilter::ClientSide, false, false),
    (FlagFilter::All, true, false),
    (FlagFilter::All, true, true),
];

fn node_options((filter, with_reasons, tracked_only): (FlagFilter, bool, bool)) -> Value {
    json!({
        "clientSideOnly": filter == FlagFilter::ClientSide,
        "withReasons": with_reasons,
        "detailsOnlyForTrackedFlags": tracked_only,
    })
}

/// What LaunchDarkly's Node server SDK answers for the data file.
fn oracle(contexts: &Value, flags: &[String]) -> Value {
    node_oracle(&json!({
        "data_file": root().join("tests/data/parity.json"),
        "contexts": contexts,
        "flags": flags,
        "default": "fallback",
        "options": OPTIONS.iter().map(|o| node_options(*o)).collect::<Vec<_>>(),
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_flag_for_every_context_equals_the_node_server_sdk() {
    let backend = Backend::moto();
    let mut evaluator = evaluator_on_loaded_table(&backend, None).await;
    let data = read("parity.json");
    let contexts = read("parity-contexts.json");
    let mut flags: Vec<String> = data["flags"].as_object().unwrap().keys().cloned().collect();
    flags.push("no-such-flag".into());
    assert!(flags.len() > 40 && data["segments"].as_object().unwrap().len() >= 6);
    assert!(contexts.as_array().unwrap().len() >= 20);
    let expected = oracle(&contexts, &flags);
    let mut compared = 0;
    for (c, context) in contexts.as_array().unwrap().iter().enumerate() {
        let context_json = context.to_string();
        for (f, flag) in flags.iter().enumerate() {
            let ours = evaluator
                .evaluate(flag, &context_json, "\"fallback\"")
                .await
                .unwrap_or_else(|e| panic!("{flag} for {context}: {e:?}"));
            let theirs = &expected["details"][c][f];
            let value: Value = serde_json::from_str(&ours.value_json).unwrap();
            let reason: Value = serde_json::from_str(&ours.reason_json).unwrap();
            let what = format!("{flag} for {context}");
            assert_eq!(value, theirs["value"], "value of {what}");
            assert_eq!(
                ours.variation_index.map(Value::from).unwrap_or(Value::Null),
                theirs["variationIndex"],
                "variation of {what}"
            );
            assert_eq!(reason, theirs["reason"], "reason of {what}");
            compared += 1;
        }
        for (o, options) in OPTIONS.iter().enumerate() {
            let (filter, with_reasons, details_only_for_tracked_flags) = *options;
            let state = evaluator
                .all_flags_state(
                    &context_json,
                    StateOptions {
                        filter,
                        with_reasons,
                        details_only_for_tracked_flags,
                    },
                )
                .await
                .unwrap();
            let state: Value = serde_json::from_str(&state).unwrap();
            assert_eq!(
                state, expected["states"][o][c],
                "allFlagsState {options:?} for {context}"
            );
        }
        // Mobile: the flags available to mobile keys, as the Node SDK's full state has them.
        let mobile: Value = serde_json::from_str(
            &evaluator
                .all_flags_state(
                    &context_json,
                    StateOptions {
                        filter: FlagFilter::Mobile,
                        with_reasons: false,
                        details_only_for_tracked_flags: false,
                    },
                )
                .await
                .unwrap(),
        )
        .unwrap();
        let all = &expected["states"][0][c];
        let mobile_keys: Vec<&String> = data["flags"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(_, f)| f["clientSideAvailability"]["usingMobileKey"] == true)
            .map(|(k, _)| k)
            .collect();
        for key in &mobile_keys {
            assert_eq!(mobile[key.as_str()], all[key.as_str()], "{key}");
            assert_eq!(
                mobile["$flagsState"][key.as_str()],
                all["$flagsState"][key.as_str()]
            );
        }
        assert_eq!(
            mobile["$flagsState"].as_object().unwrap().len(),
            mobile_keys.len()
        );
        let hash = evaluator
            .secure_mode_hash(&context_json, "sdk-oracle-key")
            .await
            .unwrap();
        assert_eq!(hash, expected["hashes"][c], "secure-mode hash of {context}");
    }
    eprintln!("{compared} evaluations equal the Node server SDK's");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_contexts_defaults_and_tables_are_typed_errors() {
    let backend = Backend::moto();
    let mut evaluator = evaluator_on_loaded_table(&backend, None).await;
    // (A legacy user, `{"key": ""}`, may have an empty key, as in every SDK.)
    for context in [
        "{",
        "[1]",
        r#"{"kind":"user"}"#,
        r#"{"kind":"user","key":""}"#,
        r#"{"kind":"multi"}"#,
        r#"{"name":"no key"}"#,
    ] {
        match evaluator.evaluate("op-in", context, "null").await {
            Err(Error::Evaluation(EvalError::InvalidContext(why))) => {
                assert!(why.contains("context"), "{why}")
            }
            other => panic!("{context}: {other:?}"),
        }
        assert!(matches!(
            evaluator.secure_mode_hash(context, "k").await,
            Err(Error::Evaluation(EvalError::InvalidContext(_)))
        ));
    }
    assert!(matches!(
        evaluator
            .evaluate("op-in", r#"{"key":"u"}"#, "not json")
            .await,
        Err(Error::Evaluation(EvalError::InvalidDefault(_)))
    ));
    // A table that does not exist: the store's typed error, no trap.
    let runtime = EvaluatorRuntime::load(&evaluator_component()).unwrap();
    let mut missing = runtime
        .open(
            &HostOptions::default(),
            &backend.config("no-such-table", PREFIX),
        )
        .await
        .unwrap();
    match missing.evaluate("op-in", r#"{"key":"u"}"#, "null").await {
        Err(Error::Store(StoreError::Service(e))) => {
            assert_eq!(e.code, "ResourceNotFoundException")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_call_reads_the_table_in_one_round_trip() {
    let backend = Backend::moto();
    // The proxy holds the first queries until the third has arrived: three
    // queries sent one after another would never get there (the gate gives up
    // after 30 s, and the order of arrivals and answers below fails).
    let gate = Gate::new(3);
    let proxy = Proxy::start(&backend.endpoint, move |_| gate.hold()).await;
    let mut evaluator = evaluator_on_loaded_table(&backend, Some(&proxy.endpoint)).await;
    let before = proxy.exchanges().len();
    let ours = evaluator
        .evaluate("prereq-chain", r#"{"key":"user-1","country":"fr"}"#, "null")
        .await
        .unwrap();
    assert_eq!(ours.value_json, "\"on\"");
    let exchanges = proxy.exchanges()[before..].to_vec();
    // Flags, segments and the marker: three Queries, all sent before any was
    // answered.
    assert_eq!(exchanges.len(), 3);
    let last_arrival = exchanges.iter().map(|e| e.arrived).max().unwrap();
    let first_answer = exchanges.iter().map(|e| e.answered).min().unwrap();
    assert!(last_arrival < first_answer, "the reads were sequential");
    let before = proxy.exchanges().len();
    evaluator
        .all_flags_state(
            r#"{"key":"user-1"}"#,
            StateOptions {
                filter: FlagFilter::All,
                with_reasons: true,
                details_only_for_tracked_flags: false,
            },
        )
        .await
        .unwrap();
    assert_eq!(proxy.exchanges().len() - before, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_snapshot_serves_until_its_time_to_live_and_never_after() {
    use std::time::Duration;
    let backend = Backend::moto();
    let proxy = Proxy::start(&backend.endpoint, |_| Action::Forward).await;
    let (table, mut store) = parity_table(&backend, "evaluator-cache").await;
    let mut config = backend.config(&table, PREFIX);
    config = config.with_endpoint(Some(proxy.endpoint.clone()));
    let runtime = EvaluatorRuntime::load(&evaluator_component()).unwrap();
    // Two evaluators on the table. `held` keeps its snapshot for 10 minutes,
    // so its checks within the time to live hold whatever the scheduler does
    // (they take well under a second; a window is kept, sized so that no load
    // reaches it). `expiring` keeps its snapshot for 300 ms, which the test
    // waits out: past the time to live by construction, not by a race.
    let (long, short) = (Duration::from_secs(600), Duration::from_millis(300));
    let mut held = runtime
        .open_with_cache(&HostOptions::default(), &config, Some(long))
        .await
        .unwrap();
    let mut expiring = runtime
        .open_with_cache(&HostOptions::default(), &config, Some(short))
        .await
        .unwrap();
    let user = r#"{"key":"user-9"}"#;
    let value = |e: &ld_dynamodb_host::evaluator::Evaluation| e.value_json.clone();
    let started = std::time::Instant::now();
    for evaluator in [&mut held, &mut expiring] {
        let first = evaluator
            .evaluate("string-value", user, "null")
            .await
            .unwrap();
        assert_eq!(value(&first), "\"blue\"");
    }
    assert_eq!(proxy.requests(), 6, "one snapshot each");
    // The flag changes behind the evaluators' backs.
    let mut flag = read("parity.json")["flags"]["string-value"].clone();
    flag["version"] = json!(99);
    flag["fallthrough"] = json!({"variation": 0});
    store
        .upsert(
            "features",
            "string-value",
            &ld_dynamodb_host::embed::Item {
                version: 99,
                deleted: false,
                json: flag.to_string(),
            },
        )
        .await
        .unwrap();
    // Within the time to live: the same snapshot, no request.
    let cached = held.evaluate("string-value", user, "null").await.unwrap();
    assert_eq!(value(&cached), "\"blue\"");
    assert_eq!(proxy.requests(), 6);
    assert!(started.elapsed() < long, "the window held");
    // Past it: the table is read again, in one round trip.
    tokio::time::sleep(short).await;
    let fresh = expiring
        .evaluate("string-value", user, "null")
        .await
        .unwrap();
    assert_eq!(
        value(&fresh),
        "\"red\"",
        "past the time to live the table is read again"
    );
    assert_eq!(proxy.requests(), 6 + 3);
}

/// `Evaluator::builder`, as docs/evaluator.md uses it: the settings of
/// `DataStore::builder`, the cache's time to live, and credentials from a
/// source, fetched again and the evaluator reopened when DynamoDB rejects them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_builder_opens_an_evaluator_whose_credentials_are_kept_current() {
    let moto = Backend::moto();
    let (table, _) = parity_table(&moto, "evaluator-builder").await;
    let iam = Iam::new_user(&moto, "evalrotate", &["dynamodb:*"]);
    let key1 = iam.create_key();
    let provider = Switchable(
        std::sync::Arc::new(std::sync::Mutex::new(key1.clone())),
        Default::default(),
    );
    let fetches = || provider.1.load(std::sync::atomic::Ordering::SeqCst);
    let proxy = Proxy::start(&moto.endpoint, |_| Action::Forward).await;
    let runtime = EvaluatorRuntime::load(&evaluator_component()).unwrap();
    let builder = || {
        Evaluator::builder(&table)
            .prefix("eval")
            .region(REGION)
            .endpoint(&proxy.endpoint)
            .credentials(CredentialSource::from_provider(provider.clone()))
    };
    let user = r#"{"key":"user-9"}"#;

    // The cache's time to live: one read serves the calls within it.
    let mut cached = builder()
        .cache_ttl(std::time::Duration::from_secs(60))
        .build(&runtime)
        .await
        .unwrap();
    let before = proxy.exchanges().len();
    for _ in 0..3 {
        let answer = cached.evaluate("string-value", user, "null").await;
        assert_eq!(answer.unwrap().value_json, "\"blue\"");
    }
    assert_eq!(
        proxy.exchanges().len() - before,
        3,
        "one snapshot: three queries"
    );

    // Without a cache every call reads; an unannounced rotation (the key in
    // use deleted) is answered by one fetch, a reopened evaluator and one retry.
    let mut evaluator = builder().build(&runtime).await.unwrap();
    let answer = evaluator.evaluate("string-value", user, "null").await;
    assert_eq!(answer.unwrap().value_json, "\"blue\"");
    let key2 = iam.create_key();
    *provider.0.lock().unwrap() = key2.clone();
    iam.delete_key(&key1);
    let (fetched, sent) = (fetches(), proxy.exchanges().len());
    let answer = evaluator.evaluate("string-value", user, "null").await;
    assert_eq!(answer.unwrap().value_json, "\"blue\"");
    assert_eq!(fetches(), fetched + 1, "one fetch");
    assert_eq!(
        proxy.exchanges().len() - sent,
        6,
        "a snapshot refused, then one read"
    );

    // No working key: the service's error, after one fetch that gave the same key.
    // (From a task of its own: the evaluator's calls are `Send`.)
    iam.delete_key(&key2);
    let answer =
        tokio::spawn(async move { evaluator.evaluate("string-value", user, "null").await });
    match answer.await.unwrap() {
        Err(Error::Store(StoreError::Service(e))) => {
            assert_eq!(e.code, "InvalidClientTokenId")
        }
        other => panic!("{other:?}"),
    }

    // Settings are checked as DataStore::builder checks them.
    let error = Evaluator::builder("").region(REGION).build(&runtime).await;
    assert_eq!(
        error.err().unwrap().to_string(),
        "invalid configuration: no table name: set LD_DYNAMODB_TABLE, or pass --table to the CLI"
    );
}
