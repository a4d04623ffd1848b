//! Faults between the component and the server, injected by a proxy in front
//! of dynalite (which does not check signatures, so the proxy may rewrite
//! requests) or moto (pass-through only): throttling, server errors, dropped
//! and stalled connections, unprocessed batch items, broken bodies. After an
//! `Ok` from Init every item and the marker are in the table; after an `Err`
//! the marker is absent and the error names the cause; nothing traps.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use ld_dynamodb_host::embed::{
    Collection, RetryPolicy, Session, StoreError, Timeouts, UpsertOutcome,
};
use ld_dynamodb_tests::faults::{fault_mix, hold_back};
use ld_dynamodb_tests::proxy::{Action, Partitions, Proxy, Request};
use ld_dynamodb_tests::*;

const ATTEMPTS: u32 = 3;
const NO_PROGRESS: Duration = Duration::from_millis(1500);

fn throttled() -> Action {
    Action::Respond(
        400,
        r#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"Rate of requests exceeds the allowed throughput."}"#.into(),
    )
}

/// A table on `backend`, and a store reaching it through a proxy running `script`.
async fn through_proxy(
    backend: &Backend,
    label: &str,
    script: impl FnMut(&Request) -> Action + Send + 'static,
) -> (String, Proxy, Session) {
    let (table, _) = fresh_store(backend, label, None).await;
    let proxy = Proxy::start(&backend.endpoint, script).await;
    let mut config = backend.config(&table, None);
    config = config.with_endpoint(Some(proxy.endpoint.clone()));
    config = config
        .with_retry(Some(RetryPolicy {
            max_attempts: ATTEMPTS,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
        }))
        // Sized for a loaded machine: moto beside two CPU hogs and three other
        // tests took over 300 ms to answer a BatchWriteItem (3 attempts timed
        // out), so a second; the stalls below hold an answer three times that.
        .with_timeouts(Some(Timeouts {
            connect: Some(Duration::from_millis(1000)),
            first_byte: Some(Duration::from_millis(1000)),
            between_bytes: Some(Duration::from_millis(1000)),
            request: None,
        }));
    // Init re-sends throttled items while any is accepted; none for this
    // long fails it.
    config = config.with_init_no_progress(Some(NO_PROGRESS));
    let store = open_config(&config).await;
    (table, proxy, store)
}

fn data(n: usize) -> Vec<Collection> {
    vec![
        collection(
            "segments",
            (0..3)
                .map(|i| item(&format!("s{i}"), 1, json!({})))
                .collect(),
        ),
        collection(
            "features",
            (0..n)
                .map(|i| item(&format!("f{i:03}"), 1, json!({ "on": true })))
                .collect(),
        ),
    ]
}

/// (namespace, key) of every row, read by boto3 directly from the server.
fn rows(backend: &Backend, table: &str) -> Vec<(String, String)> {
    backend
        .scan(table)
        .iter()
        .map(|r| {
            (
                r["namespace"]["S"].as_str().unwrap().to_string(),
                r["key"]["S"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn has_marker(backend: &Backend, table: &str) -> bool {
    rows(backend, table).contains(&("$inited".into(), "$inited".into()))
}

/// After a successful Init of `data(n)`: every item and the marker are there.
fn assert_complete(backend: &Backend, table: &str, n: usize) {
    let rows = rows(backend, table);
    assert_eq!(rows.len(), n + 3 + 1, "all items and the marker");
    assert!(rows.contains(&("$inited".into(), "$inited".into())));
    for i in 0..n {
        assert!(rows.contains(&("features".into(), format!("f{i:03}"))));
    }
}

fn service_code(err: &StoreError) -> (&str, u32) {
    match err {
        StoreError::Service(e) => (e.code.as_str(), e.attempts),
        other => panic!("expected a service error, got {other:?}"),
    }
}

/// A script that applies `fault` to the first `times` requests of `op`, then forwards.
fn first(
    op: &'static str,
    times: usize,
    fault: fn() -> Action,
) -> impl FnMut(&Request) -> Action + Send {
    let mut seen = 0;
    move |r: &Request| {
        if r.op == op && seen < times {
            seen += 1;
            fault()
        } else {
            Action::Forward
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_batches_are_retried_and_init_completes() {
    let backend = Backend::dynalite();
    let (table, proxy, mut store) =
        through_proxy(&backend, "throttle", first("BatchWriteItem", 2, throttled)).await;
    let report = ok!(store.init(&data(60)));
    assert_eq!(report.written, 63);
    assert_complete(&backend, &table, 60);
    assert!(
        proxy.requests() >= 2 + 1 + 3 + 1 + 2,
        "the throttled batches were sent again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_stay_valid_when_moto_requests_are_retried() {
    let backend = Backend::moto();
    let (table, _, mut store) = through_proxy(
        &backend,
        "throttle-moto",
        first("BatchWriteItem", 1, throttled),
    )
    .await;
    ok!(store.init(&data(5)));
    assert_complete(&backend, &table, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_that_never_ends_fails_init_without_the_marker() {
    let backend = Backend::dynalite();
    let (table, _, mut store) = through_proxy(&backend, "throttle-all", |r: &Request| {
        if r.op == "BatchWriteItem" {
            throttled()
        } else {
            Action::Forward
        }
    })
    .await;
    let started = std::time::Instant::now();
    let err = store_err!(store.init(&data(5)));
    let elapsed = started.elapsed();
    assert_eq!(service_code(&err).0, "UnprocessedItems");
    assert!(
        err.to_string().contains("accepted no item for 1500 ms")
            && err
                .to_string()
                .contains("last refusal: ProvisionedThroughputExceededException"),
        "{err}"
    );
    assert!(
        elapsed >= NO_PROGRESS && elapsed < Duration::from_secs(6),
        "gave up after {elapsed:?}"
    );
    assert!(!has_marker(&backend, &table));
    let outcome = store
        .upsert("features", "f", &item("f", 1, json!({})).item)
        .await
        .unwrap();
    assert_eq!(
        outcome,
        UpsertOutcome::Applied,
        "PutItem is not throttled by this script"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_retried_then_reported() {
    let backend = Backend::dynalite();
    let (_, _, mut store) = through_proxy(
        &backend,
        "5xx",
        first("GetItem", 2, || {
            Action::Respond(503, "Service Unavailable".into())
        }),
    )
    .await;
    assert_eq!(
        ok!(store.get("features", "x")),
        None,
        "third attempt succeeds"
    );
    let (table, _, mut store) = through_proxy(&backend, "5xx-all", |r: &Request| match r.op.as_str() {
        "Query" | "PutItem" => Action::Respond(500, r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"boom"}"#.into()),
        _ => Action::Forward,
    })
    .await;
    let err = store_err!(store.get_all("features"));
    assert_eq!(service_code(&err), ("InternalServerError", ATTEMPTS));
    let err = store_err!(store.upsert("features", "f", &item("f", 1, json!({})).item));
    assert_eq!(service_code(&err), ("InternalServerError", ATTEMPTS));
    let err = store_err!(store.init(&data(3)));
    assert_eq!(service_code(&err), ("InternalServerError", ATTEMPTS));
    assert!(
        rows(&backend, &table).is_empty(),
        "Init stopped at its key scan"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connections_are_retried_then_reported() {
    let backend = Backend::dynalite();
    let (table, _, mut store) = through_proxy(
        &backend,
        "drop",
        first("Query", 1, || Action::DropMidResponse),
    )
    .await;
    ok!(store.init(&data(20)));
    assert_complete(&backend, &table, 20);
    let (_, _, mut store) = through_proxy(&backend, "drop-all", |r: &Request| {
        if r.op == "GetItem" {
            Action::DropMidResponse
        } else {
            Action::Forward
        }
    })
    .await;
    match store_err!(store.get("features", "f")) {
        StoreError::Transport(t) => assert_eq!(t.attempts, ATTEMPTS, "{t:?}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_requests_time_out_and_are_retried() {
    let backend = Backend::dynalite();
    let stall = || Action::Stall(Duration::from_millis(3000));
    let (table, _, mut store) =
        through_proxy(&backend, "stall", first("BatchWriteItem", 1, stall)).await;
    ok!(store.init(&data(5)));
    assert_complete(&backend, &table, 5);
    let (_, _, mut store) = through_proxy(&backend, "stall-all", move |r: &Request| {
        if r.op == "GetItem" {
            stall()
        } else {
            Action::Forward
        }
    })
    .await;
    match store_err!(store.get("features", "f")) {
        StoreError::Transport(t) => {
            assert_eq!(t.attempts, ATTEMPTS);
            assert!(t.code.to_lowercase().contains("timeout"), "{t:?}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unprocessed_items_are_sent_again_until_written() {
    let backend = Backend::dynalite();
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let (table, _, mut store) = through_proxy(&backend, "unprocessed", move |r: &Request| {
        // Hold back twice in the segments' batch (its third attempt passes) and
        // once in the first batch of flags.
        if r.op == "BatchWriteItem" && [0, 1, 3].contains(&seen.fetch_add(1, Ordering::SeqCst)) {
            hold_back(r, 2)
        } else {
            Action::Forward
        }
    })
    .await;
    let report = ok!(store.init(&data(40)));
    assert_eq!(report.written, 43);
    assert_complete(&backend, &table, 40);
    assert!(
        calls.load(Ordering::SeqCst) > 4,
        "held-back items were sent again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_that_stay_unprocessed_fail_init_without_the_marker() {
    let backend = Backend::dynalite();
    let (table, _, mut store) = through_proxy(&backend, "unprocessed-all", |r: &Request| {
        if r.op == "BatchWriteItem" {
            hold_back(r, 1)
        } else {
            Action::Forward
        }
    })
    .await;
    let err = store_err!(store.init(&data(30)));
    assert_eq!(service_code(&err).0, "UnprocessedItems");
    assert!(err.to_string().contains("accepted no item"), "{err}");
    assert!(
        !has_marker(&backend, &table),
        "the marker is not written over an incomplete Init"
    );
    let written = rows(&backend, &table).len();
    assert!(
        written < 33,
        "some items were really left unwritten ({written})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_bodies_are_malformed_responses() {
    let backend = Backend::dynalite();
    let cases: [(&str, &str); 5] = [
        ("GetItem", "{not json"),
        (
            "GetItem",
            r#"{"Item":{"namespace":{"S":"features"},"key":{"S":"f"},"version":{"S":"one"},"item":{"S":"{}"}}}"#,
        ),
        ("Query", r#"{"Items":[{"key":{"S":5}}]}"#),
        ("Query", r#"{"Items":"not a list"}"#),
        ("PutItem", "<html>ok</html>"),
    ];
    for (op, body) in cases {
        let (_, _, mut store) = through_proxy(&backend, "broken", move |r: &Request| {
            if r.op == op {
                Action::Respond(200, body.into())
            } else {
                Action::Forward
            }
        })
        .await;
        let err = match op {
            "GetItem" => store.get("features", "f").await.map(|_| ()),
            "Query" => store.get_all("features").await.map(|_| ()),
            _ => store
                .upsert("features", "f", &item("f", 1, json!({})).item)
                .await
                .map(|_| ()),
        }
        .unwrap_err()
        .into_store_error()
        .unwrap();
        assert!(
            matches!(err, StoreError::MalformedResponse(_)),
            "{op} {body}: {err:?}"
        );
    }
    let (table, _, mut store) = through_proxy(&backend, "broken-batch", |r: &Request| {
        if r.op == "BatchWriteItem" {
            Action::Respond(200, r#"{"UnprocessedItems":[1,2]}"#.into())
        } else {
            Action::Forward
        }
    })
    .await;
    let err = store_err!(store.init(&data(3)));
    assert!(matches!(err, StoreError::MalformedResponse(_)), "{err:?}");
    assert!(!has_marker(&backend, &table));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_body_is_a_malformed_response() {
    let backend = Backend::dynalite();
    let huge = format!(
        "{{\"Items\":[],\"pad\":\"{}\"}}",
        "x".repeat(17 * 1024 * 1024)
    );
    let (_, _, mut store) = through_proxy(&backend, "huge", move |r: &Request| {
        if r.op == "Query" {
            Action::Respond(200, huge.clone())
        } else {
            Action::Forward
        }
    })
    .await;
    let err = store_err!(store.get_all("features"));
    assert!(
        matches!(err, StoreError::MalformedResponse(ref m) if m.contains("larger than")),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_errors_are_not_retried() {
    let backend = Backend::dynalite();
    let (_, proxy, mut store) = through_proxy(&backend, "validation", |r: &Request| {
        if r.op == "GetItem" {
            Action::Respond(
                400,
                r#"{"__type":"com.amazon.coral.validate#ValidationException","message":"bad"}"#
                    .into(),
            )
        } else {
            Action::Forward
        }
    })
    .await;
    let before = proxy.requests();
    let err = store_err!(store.get("features", "f"));
    assert_eq!(service_code(&err), ("ValidationException", 1));
    assert_eq!(proxy.requests() - before, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_row_is_skipped_and_logged_not_fatal_to_get_all() {
    let backend = Backend::dynalite();
    let (table, mut writer) = fresh_store(&backend, "badrow", None).await;
    writer
        .init(&[collection("features", vec![item("good", 1, json!({}))])])
        .await
        .unwrap();
    // Rows no official store writes, put there by another client.
    backend.boto(json!([
        ["PutItem", { "TableName": table, "Item": {
            "namespace": { "S": "features" }, "key": { "S": "no-version" }, "item": { "S": "{}" } } }],
        ["PutItem", { "TableName": table, "Item": {
            "namespace": { "S": "features" }, "key": { "S": "not-object" },
            "version": { "N": "2" }, "item": { "S": "[1,2]" } } }],
    ]));
    let mut store = open(&backend, &table, None).await;
    let all = store.get_all("features").await.unwrap();
    let keys: Vec<&str> = all.iter().map(|k| k.key.as_str()).collect();
    assert_eq!(keys, ["good"]);
    let stderr = store.instance().stderr();
    for key in ["no-version", "not-object"] {
        assert!(stderr.contains(key), "{key} is logged: {stderr}");
    }
}

/// Rows of the table in the order the proxy forwarded them: the index of the
/// BatchWriteItem exchange that carried the marker, and the last index.
fn marker_exchange(proxy: &Proxy) -> (usize, usize) {
    let batches: Vec<_> = proxy
        .exchanges()
        .into_iter()
        .filter(|e| e.request.op == "BatchWriteItem")
        .collect();
    let marker = batches
        .iter()
        .position(|e| String::from_utf8_lossy(&e.request.body).contains("$inited"))
        .expect("the marker was sent");
    // The marker's request arrived after every other batch was answered.
    for (i, e) in batches.iter().enumerate() {
        if i != marker {
            assert!(
                e.answered <= batches[marker].arrived,
                "batch {i} overlaps the marker"
            );
        }
    }
    (marker, batches.len() - 1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_through_a_throttling_partition_stores_everything_within_the_window() {
    let backend = Backend::dynalite();
    // 400 write units a second per partition key, half a second of burst.
    let partitions = Partitions::new(400.0, 0.5);
    let (table, _) = fresh_store(&backend, "partition", None).await;
    let proxy = Proxy::start(&backend.endpoint, partitions.script()).await;
    let mut config = backend.config(&table, None);
    config = config.with_endpoint(Some(proxy.endpoint.clone()));
    config = config.with_init_concurrency(Some(4));
    let mut store = open_config(&config).await;
    let n = 1000;
    let started = std::time::Instant::now();
    let report = ok!(store.init(&data(n)));
    let elapsed = started.elapsed();
    assert_eq!(report.written as usize, n + 3);
    assert_complete(&backend, &table, n);
    let (marker, last) = marker_exchange(&proxy);
    assert_eq!(marker, last, "the marker is the last write");
    let in_flight = proxy.most_in_flight("BatchWriteItem");
    assert!(
        in_flight <= 4,
        "{in_flight} BatchWriteItem requests in flight at once"
    );
    let received = partitions.items_received.load(Ordering::SeqCst);
    let amplification = received as f64 / (n + 3 + 1) as f64;
    let throttled = partitions.throttled.load(Ordering::SeqCst);
    let batches = partitions.batches.load(Ordering::SeqCst);
    eprintln!(
        "partition at 400/s: {elapsed:?} (bound 2.0 s), {amplification:.2}x items sent, \
         {throttled} of {batches} requests throttled, {in_flight} in flight at most"
    );
    assert!(amplification <= 1.5, "{amplification}x write amplification");
    // The bound is (1,000 items / 400 per second) - 0.5 s of burst = 2 s.
    assert!(
        elapsed >= Duration::from_millis(1500),
        "faster than the partition allows: {elapsed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_that_accepts_nothing_fails_init_after_the_no_progress_limit() {
    let backend = Backend::dynalite();
    let partitions = Partitions::new(0.0, 0.0);
    let (table, _) = fresh_store(&backend, "partition-none", None).await;
    let proxy = Proxy::start(&backend.endpoint, partitions.script()).await;
    let mut config = backend.config(&table, None);
    config = config.with_endpoint(Some(proxy.endpoint.clone()));
    config = config.with_init_no_progress(Some(NO_PROGRESS));
    let mut store = open_config(&config).await;
    let started = std::time::Instant::now();
    let err = store_err!(store.init(&data(30)));
    let elapsed = started.elapsed();
    assert_eq!(service_code(&err).0, "UnprocessedItems");
    assert!(
        err.to_string().contains("accepted no item for 1500 ms"),
        "{err}"
    );
    assert!(
        elapsed >= NO_PROGRESS && elapsed < Duration::from_secs(6),
        "gave up after {elapsed:?}"
    );
    assert!(!has_marker(&backend, &table));
    assert!(rows(&backend, &table).is_empty());
    // Paced while refused: a few requests, not a storm.
    let batches = partitions.batches.load(Ordering::SeqCst);
    assert!(batches < 60, "{batches} requests");
}

/// 400 flags and 20 segments.
fn mix_data() -> Vec<Collection> {
    vec![
        collection(
            "segments",
            (0..20)
                .map(|i| item(&format!("s{i:02}"), 1, json!({})))
                .collect(),
        ),
        collection(
            "features",
            (0..400)
                .map(|i| item(&format!("f{i:03}"), 1, json!({ "on": true })))
                .collect(),
        ),
    ]
}

/// Init of [`mix_data`] through a proxy running `script`, with the store's
/// default retry policy: the wall time, and the rows stored.
async fn init_through(
    backend: &Backend,
    label: &str,
    script: impl FnMut(&Request) -> Action + Send + 'static,
) -> (Duration, Vec<(String, String)>, usize) {
    let (table, _) = fresh_store(backend, label, None).await;
    let proxy = Proxy::start(&backend.endpoint, script).await;
    let mut config = backend.config(&table, None);
    config = config.with_endpoint(Some(proxy.endpoint.clone()));
    let mut store = open_config(&config).await;
    let started = std::time::Instant::now();
    let report = ok!(store.init(&mix_data()));
    let elapsed = started.elapsed();
    assert_eq!(report.written, 420);
    (elapsed, rows(backend, &table), proxy.requests())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_through_faults_that_do_not_depend_on_the_rate_is_not_slowed_down() {
    // dynalite: the proxy rewrites requests, and moto checks signatures.
    let backend = Backend::dynalite();
    let (clean, _, clean_requests) = init_through(&backend, "mix-clean", |_| Action::Forward).await;
    let received = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(AtomicUsize::new(0));
    let (elapsed, rows, requests) = init_through(
        &backend,
        "mix",
        fault_mix(received.clone(), refused.clone()),
    )
    .await;
    let (received, refused) = (
        received.load(Ordering::SeqCst),
        refused.load(Ordering::SeqCst),
    );
    eprintln!(
        "fault mix: {elapsed:?} and {requests} requests ({clean:?} and {clean_requests} clean); \
         {received} write requests sent for 421, {refused} refused"
    );
    assert_eq!(rows.len(), 421, "400 flags, 20 segments and the marker");
    assert!(rows.contains(&("$inited".into(), "$inited".into())));
    for i in 0..400 {
        assert!(rows.contains(&("features".into(), format!("f{i:03}"))));
    }
    // Each refused write request was sent once more, and no other.
    assert_eq!(received, 421 + refused);
    // Paced by what is accepted, not cut towards one write unit a second
    // (the pacer of 718f52c..effda2a took 305 s and was stopped): the issue's
    // goal of 10 s, on a machine where the clean Init takes 0.06 to 0.16 s.
    assert!(
        elapsed < Duration::from_secs(10),
        "{elapsed:?} against {clean:?} clean"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_through_a_throttling_partition_with_server_errors_stays_near_the_bound() {
    let backend = Backend::dynalite();
    let partitions = Partitions::new(400.0, 0.5);
    let mut partition = partitions.script();
    let mut n = 0;
    let (table, _) = fresh_store(&backend, "partition-5xx", None).await;
    let proxy = Proxy::start(&backend.endpoint, move |r: &Request| {
        n += 1;
        if n % 11 == 0 {
            Action::Respond(500, r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"boom"}"#.into())
        } else {
            partition(r)
        }
    })
    .await;
    let mut config = backend.config(&table, None);
    config = config.with_endpoint(Some(proxy.endpoint.clone()));
    config = config.with_init_concurrency(Some(4));
    let mut store = open_config(&config).await;
    let n = 1000;
    let started = std::time::Instant::now();
    let report = ok!(store.init(&data(n)));
    let elapsed = started.elapsed();
    assert_eq!(report.written as usize, n + 3);
    assert_complete(&backend, &table, n);
    let received = partitions.items_received.load(Ordering::SeqCst);
    let amplification = received as f64 / (n + 3 + 1) as f64;
    eprintln!(
        "partition at 400/s with a 500 every 11th request: {elapsed:?} (bound 2.0 s), \
         {amplification:.2}x items sent"
    );
    // The bound is (1,000 items / 400 per second) - 0.5 s of burst = 2 s.
    // Quiet runs take 2.2 to 2.3 s (the goal is 1.3 times the bound); a run
    // beside other CPU-heavy work took 3.4 s, so the assert leaves room for a
    // busy machine and still fails a pacer that sinks (the old one took
    // minutes here).
    assert!(
        elapsed <= Duration::from_secs(4),
        "{elapsed:?} against the bound of 2 s"
    );
    assert!(amplification <= 1.5, "{amplification}x write amplification");
}
