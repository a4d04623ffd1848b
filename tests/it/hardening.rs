//! What an embedding host relies on: Init keeps dependency order under random
//! latency, AWS's echoed signing material never reaches an error or a log, a
//! chatty instance never traps, and the component and the host each bound what
//! a request or a call may take.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use ld_dynamodb_host::embed::{
    Credentials, HostOptions, RetryPolicy, StoreConfig, StoreError, Timeouts, TransportKind,
    UpsertOutcome,
};
use ld_dynamodb_host::error::Stopped;
use ld_dynamodb_host::Error;
use ld_dynamodb_tests::proxy::{aws_signature_echo, Action, Gate, Proxy};
use ld_dynamodb_tests::*;

/// A small deterministic generator (xorshift), so a failure can be replayed.
struct Random(u64);

impl Random {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn with_prerequisites(prerequisites: &[String]) -> Value {
    let list: Vec<Value> = prerequisites
        .iter()
        .map(|p| json!({ "key": p, "variation": 0 }))
        .collect();
    json!({ "prerequisites": list })
}

fn nested_segment(refs: &[String]) -> Value {
    json!({ "rules": [{ "clauses": [{ "attribute": "", "op": "segmentMatch", "values": refs }] }] })
}

#[tokio::test]
async fn init_never_sends_a_dependent_before_its_dependency_is_answered() {
    let backend = Backend::dynalite();
    let (table, _) = fresh_store(&backend, "order", None).await;
    let mut delays = Random(0x5eed_1234);
    let proxy = Proxy::start(&backend.endpoint, move |_| {
        Action::Stall(Duration::from_millis(delays.below(40)))
    })
    .await;
    let mut config = backend.config(&table, None);
    config = config.with_endpoint(Some(proxy.endpoint.clone()));
    let mut store = open_config(&config).await;

    // Flags in an order where dependents often come first: 80 flags, each of
    // the last 60 with one to three prerequisites among the others; segments
    // that match other segments.
    let mut pick = Random(0xfeed_5678);
    let mut dependencies: HashMap<String, Vec<String>> = HashMap::new();
    let mut flags = Vec::new();
    for i in (0..80).rev() {
        let key = format!("flag-{i:02}");
        let prerequisites: Vec<String> = if i >= 20 {
            (0..1 + pick.below(3))
                .map(|_| format!("flag-{:02}", pick.below(i)))
                .collect()
        } else {
            Vec::new()
        };
        flags.push(item(&key, 1, with_prerequisites(&prerequisites)));
        dependencies.insert(key, prerequisites);
    }
    let mut segments = Vec::new();
    for i in (0..30).rev() {
        let key = format!("seg-{i:02}");
        let refs: Vec<String> = if i >= 10 {
            vec![format!("seg-{:02}", pick.below(i))]
        } else {
            Vec::new()
        };
        segments.push(item(&key, 1, nested_segment(&refs)));
        dependencies.insert(key, refs);
    }
    let report = store
        .init(&[
            collection("segments", segments),
            collection("features", flags),
        ])
        .await
        .unwrap();
    assert_eq!(report.written, 110);

    // When each key's write request was answered, and when each request carrying it arrived.
    let mut answered: HashMap<String, Instant> = HashMap::new();
    let mut arrivals: Vec<(String, Instant)> = Vec::new();
    for exchange in proxy.exchanges() {
        if exchange.request.op != "BatchWriteItem" {
            continue;
        }
        let body = exchange.request.json();
        for write in body["RequestItems"][&table].as_array().unwrap() {
            if let Some(key) = write["PutRequest"]["Item"]["key"]["S"].as_str() {
                answered.insert(key.to_string(), exchange.answered);
                arrivals.push((key.to_string(), exchange.arrived));
            }
        }
    }
    let mut checked = 0;
    for (key, arrived) in &arrivals {
        // (The marker has no entry.)
        for dependency in dependencies.get(key).into_iter().flatten() {
            let done = answered[dependency];
            assert!(
                *arrived >= done,
                "{key} was sent {:?} before {dependency} was answered",
                done - *arrived
            );
            checked += 1;
        }
    }
    assert!(
        checked > 60,
        "the data has dependencies to check ({checked})"
    );
    let all = store.get_all("features").await.unwrap();
    assert_eq!(all.len(), 80);
}

const TOKEN: &str = "FwoGZXIvYXdzEXAMPLE-session-token-0123456789";

#[tokio::test]
async fn echoed_canonical_requests_lose_the_token_signature_and_scope() {
    let backend = Backend::dynalite();
    let proxy = Proxy::start(&backend.endpoint, aws_signature_echo).await;
    let mut config = backend.config("echo-table", None);
    config = config.with_endpoint(Some(proxy.endpoint.clone()));
    let credentials = Credentials {
        session_token: Some(TOKEN.into()),
        ..config.credentials().clone()
    };
    config = config.with_credentials(credentials);
    let mut store = open_config(&config).await;
    let err = store_err!(store.get("features", "f"));
    let exchanges = proxy.exchanges();
    let sent = &exchanges[0].request;
    let signature = sent
        .headers
        .iter()
        .find(|(k, _)| k == "authorization")
        .and_then(|(_, v)| v.split("Signature=").nth(1))
        .unwrap()
        .to_string();
    assert!(
        sent.headers
            .iter()
            .any(|(k, v)| k == "x-amz-security-token" && v == TOKEN),
        "the token was sent, so the echo carries it"
    );
    let StoreError::Service(service) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(service.code, "InvalidSignatureException");
    assert!(service
        .message
        .contains("The request signature we calculated"));
    let shown = format!("{err} {err:?} {}", store.instance().stderr());
    for secret in [
        TOKEN,
        signature.as_str(),
        "aws4_request",
        &config.credentials().secret_access_key,
    ] {
        assert!(!shown.contains(secret), "{secret:?} leaked: {shown}");
    }
}

#[tokio::test]
async fn megabytes_of_log_lines_never_trap_the_instance() {
    let backend = Backend::dynalite();
    let (_, mut store) = fresh_store(&backend, "chatty", None).await;
    // Each oversized upsert logs a line holding its 300 KB key: 2 MB in all.
    for i in 0..7 {
        let key = format!("{i}{}", "k".repeat(300_000));
        let outcome = store
            .upsert("features", &key, &item(&key, 1, json!({})).item)
            .await
            .expect("no error");
        assert_eq!(outcome, UpsertOutcome::TooLarge);
    }
    assert_eq!(store.get("features", "f").await.unwrap(), None);
    let stderr = store.instance().stderr();
    assert!(stderr.len() <= 1 << 20, "the host keeps a bounded tail");
    assert!(stderr
        .trim_end()
        .ends_with("was too large to store in DynamoDB and was dropped"));
    assert!(
        stderr.contains(&format!("6{}", "k".repeat(1000))),
        "the latest line is kept"
    );
}

/// A config for `endpoint` with `attempts` attempts, 1 ms of backoff, and
/// only the component's own per-request deadline (`request_ms`).
fn deadline_config(
    backend: &Backend,
    table: &str,
    endpoint: &str,
    attempts: u32,
    request_ms: u32,
) -> StoreConfig {
    let mut config = backend.config(table, None);
    config = config.with_endpoint(Some(endpoint.to_string()));
    config
        .with_retry(Some(RetryPolicy {
            max_attempts: attempts,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(1),
        }))
        .with_timeouts(Some(Timeouts {
            request: Some(Duration::from_millis(request_ms.into())),
            ..Timeouts::default()
        }))
}

#[tokio::test]
async fn the_component_enforces_its_own_deadline_when_the_host_sets_none() {
    let backend = Backend::dynalite();
    // The proxy holds each request a minute: only the component's deadline
    // (200 ms) can end the call, however late the scheduler runs it.
    let proxy = Proxy::start(&backend.endpoint, |_| {
        Action::Stall(Duration::from_secs(60))
    })
    .await;
    let config = deadline_config(&backend, "deadline-table", &proxy.endpoint, 2, 200);
    let mut store = open_config(&config).await;
    let started = Instant::now();
    let err = store_err!(store.get("features", "f"));
    let elapsed = started.elapsed();
    match &err {
        StoreError::Transport(t) => {
            assert_eq!(t.kind(), TransportKind::HttpResponseTimeout);
            assert_eq!(t.attempts, 2);
            assert!(
                t.detail.as_deref().unwrap_or_default().contains("200 ms"),
                "{t:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    // Two attempts of 200 ms: the bound leaves a busy machine 75 times that,
    // and is still half the proxy's hold.
    assert!(
        elapsed < Duration::from_secs(30),
        "gave up after {elapsed:?}"
    );
}

#[tokio::test]
async fn the_host_caps_memory_and_interrupts_long_calls() {
    let backend = Backend::dynalite();
    let (table, _) = fresh_store(&backend, "limits", None).await;
    let config: StoreConfig = backend.config(&table, None);

    // 8 MiB of linear memory cannot take 6 MB of items.
    let options = HostOptions::default()
        .capture_stderr(true)
        .memory_limit(8 << 20);
    let instance = runtime().instance(&options).await.unwrap();
    let mut store = instance.open(&config).await.unwrap();
    let big: Vec<_> = (0..3000)
        .map(|i| item(&format!("f{i}"), 1, json!({ "pad": "x".repeat(2000) })))
        .collect();
    let trapped = store.init(&[collection("features", big)]).await;
    let trap = trapped.expect_err("the call traps instead of growing past the cap");
    match trap.stopped() {
        Some(Stopped::MemoryLimit { operation, limit }) => {
            assert_eq!((operation.as_str(), *limit), ("init", 8 << 20))
        }
        _ => panic!("the memory cap's trap, not {trap:?}"),
    }
    assert!(store.instance().peak_memory() <= 8 << 20);

    // A call that takes longer than the call timeout is interrupted: the
    // proxy holds the request for a minute, so no delay in scheduling the
    // 100 ms deadline lets the answer come first.
    let proxy = Proxy::start(&backend.endpoint, |_| {
        Action::Stall(Duration::from_secs(60))
    })
    .await;
    let mut slow = config.clone();
    slow = slow.with_endpoint(Some(proxy.endpoint.clone()));
    let options = HostOptions::default()
        .capture_stderr(true)
        .call_timeout(Duration::from_millis(100));
    let instance = runtime().instance(&options).await.unwrap();
    let mut store = instance.open(&slow).await.unwrap();
    let interrupted = store.get("features", "f").await;
    let trap = interrupted.expect_err("the call is interrupted");
    assert!(
        matches!(trap.stopped(), Some(Stopped::Deadline { operation, .. }) if operation == "get"),
        "the call deadline's trap, not {trap:?}"
    );
}

#[tokio::test]
async fn init_starts_the_next_batch_as_soon_as_one_is_answered_within_the_limit() {
    let backend = Backend::dynalite();
    let (table, _) = fresh_store(&backend, "window", None).await;
    // The first batch is held until the last of the other 9 item batches
    // has arrived; the others are answered at once. An Init that waited for
    // the first batch before sending more would leave the gate shut (it gives
    // up after 30 s, and the count below fails).
    let gate = Gate::new(10);
    let held = std::sync::Arc::new(std::sync::Mutex::new(None));
    let first = held.clone();
    let proxy = Proxy::start(&backend.endpoint, move |request| {
        if request.op != "BatchWriteItem" {
            return Action::Forward;
        }
        let mut first = first.lock().unwrap();
        if first.is_none() {
            *first = Some(request.body.clone());
            gate.hold()
        } else {
            gate.pass()
        }
    })
    .await;
    let mut config = backend.config(&table, None);
    config = config.with_endpoint(Some(proxy.endpoint.clone()));
    config = config.with_init_concurrency(Some(2));
    let mut store = open_config(&config).await;
    let flags: Vec<_> = (0..250)
        .map(|i| item(&format!("f{i:03}"), 1, json!({})))
        .collect();
    let report = store.init(&[collection("features", flags)]).await.unwrap();
    assert_eq!(report.written, 250);

    let writes: Vec<_> = proxy
        .exchanges()
        .into_iter()
        .filter(|e| e.request.op == "BatchWriteItem")
        .collect();
    assert_eq!(writes.len(), 11, "10 batches of 25 and the marker");
    let held = held.lock().unwrap().clone().unwrap();
    let slow = writes.iter().find(|e| e.request.body == held).unwrap();
    let meanwhile = writes
        .iter()
        .filter(|e| e.arrived > slow.arrived && e.arrived < slow.answered)
        .count();
    assert_eq!(
        meanwhile, 9,
        "the other 9 item batches went through the free slot while the first one waited"
    );
    // Never more than 2 in flight.
    for e in &writes {
        let overlapping = writes
            .iter()
            .filter(|o| o.arrived <= e.arrived && o.answered > e.arrived)
            .count();
        assert!(overlapping <= 2, "{overlapping} batches in flight");
    }
}

/// A server that answers Query with no items and, on a BatchWriteItem, stops
/// reading: once the kernel's buffers are full, writing the body blocks.
fn server_that_stops_reading_batches() -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut stream = stream;
                loop {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        if stream.read(&mut byte).unwrap_or(0) == 0 {
                            return;
                        }
                        head.push(byte[0]);
                    }
                    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
                    if head.contains("batchwriteitem") {
                        std::thread::sleep(Duration::from_secs(30));
                        return;
                    }
                    let length: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    let mut body = vec![0u8; length];
                    if stream.read_exact(&mut body).is_err() {
                        return;
                    }
                    let answer = r#"{"Items":[],"Count":0}"#;
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\n\r\n{answer}",
                        answer.len()
                    );
                    if stream.write_all(response.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    endpoint
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_stops_reading_the_body_cannot_hold_a_call_past_its_deadline() {
    let backend = Backend::dynalite();
    let config = deadline_config(
        &backend,
        "body-deadline",
        &server_that_stops_reading_batches(),
        1,
        500,
    );
    let mut store = open_config(&config).await;
    // One BatchWriteItem of about 9 MB: 24 items of 380 KB.
    let pad = "p".repeat(380_000);
    let items: Vec<_> = (0..24)
        .map(|i| item(&format!("big{i:02}"), 1, json!({ "pad": pad })))
        .collect();
    let started = Instant::now();
    let outcome = tokio::time::timeout(
        Duration::from_secs(20),
        store.init(&[collection("features", items)]),
    )
    .await
    .expect("the call returned: the body write has a deadline");
    match outcome {
        Err(Error::Store(StoreError::Transport(t))) => {
            assert_eq!(t.kind(), TransportKind::HttpResponseTimeout, "{t:?}");
            assert!(
                t.detail
                    .as_deref()
                    .unwrap_or_default()
                    .contains("request body"),
                "{t:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    // The 500 ms deadline ended it; the bound is generous for a busy machine
    // (the outcome's code and detail already say which deadline it was).
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
}
