//! Analytics events (issue 28) against a local events service
//! (`support/events_receiver.py`, a real process): the flag evaluator's
//! events equal those of LaunchDarkly's Node server SDK for the same calls
//! (each posting to its own receiver), the delivery rules (one retry with the
//! same payload ID, nothing after a refused key, a dead service costs no
//! answer), the edge app answering before it sends, and its Relay-compatible
//! event routes.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use ld_dynamodb_host::embed::HostOptions;
use ld_dynamodb_host::evaluator::{Evaluator, EvaluatorRuntime, EventSettings};
use ld_dynamodb_host::{data, Error};
use ld_dynamodb_tests::{
    base64url, evaluator_component, fresh_store, node_oracle, project_root, unique_table, Backend,
};

use crate::edge::{cli, Host, Served, SDK_KEY};
use crate::evalx::{run_page, serve_on, serve_page, CLIENT_SIDE_ID, MOBILE_KEY};
const PREFIX: Option<&str> = Some("events");

/// The events receiver, a Python process on its own port; killed on drop.
struct Receiver {
    child: Child,
    port: u16,
}

impl Receiver {
    /// Answers every POST with `status` after `delay_ms`.
    fn start(status: u16, delay_ms: u64) -> Receiver {
        let python = std::env::var("LD_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
        let mut child = Command::new(python)
            .arg(project_root().join("tests/support/events_receiver.py"))
            .args(["--status", &status.to_string()])
            .args(["--delay-ms", &delay_ms.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("port ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("the receiver did not start: {line:?}"));
        Receiver { child, port }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every request it recorded, in order of arrival.
    fn requests(&self) -> Vec<Value> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(
            stream,
            "GET /_requests HTTP/1.1\r\nhost: r\r\nconnection: close\r\n\r\n"
        )
        .unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).unwrap();
        let at = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        serde_json::from_slice(&raw[at..]).unwrap()
    }

    /// The requests once there are at least `n` (within 20 s).
    fn wait_for(&self, n: usize) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let requests = self.requests();
            if requests.len() >= n || start.elapsed() > Duration::from_secs(20) {
                return requests;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nothing listens on (a receiver that is down).
fn dead_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

fn read(name: &str) -> Value {
    let text = std::fs::read_to_string(project_root().join("tests/data").join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The calls of the parity test: identify some contexts, evaluate every
/// flag (and an unknown one) for each context, some twice, then `track`
/// with and without data and metric values.
fn steps(data: &Value, contexts: &[Value]) -> Vec<Value> {
    let mut flags: Vec<String> = data["flags"].as_object().unwrap().keys().cloned().collect();
    flags.push("no-such-flag".into());
    let mut steps = Vec::new();
    for (i, context) in contexts.iter().enumerate() {
        if i % 2 == 1 {
            steps.push(json!({"op": "identify", "context": context}));
        }
        for (j, flag) in flags.iter().enumerate() {
            let default = if j % 3 == 0 {
                json!("dflt")
            } else {
                json!(null)
            };
            steps.push(
                json!({"op": "evaluate", "flag": flag, "context": context, "default": default}),
            );
            if (i + j) % 4 == 0 {
                steps.push(
                    json!({"op": "evaluate", "flag": flag, "context": context, "default": default}),
                );
            }
        }
        steps.push(json!({"op": "track", "key": "purchase", "context": context,
                          "data": {"sku": format!("s-{i}"), "n": i}, "metric_value": 12.5}));
        steps.push(json!({"op": "track", "key": "view", "context": context}));
        steps.push(json!({"op": "track", "key": "clicks", "context": context, "metric_value": 3}));
    }
    steps
}

/// The analytics events posted to `/bulk`, every payload's in order.
fn posted_events(requests: &[Value]) -> Vec<Value> {
    requests
        .iter()
        .filter(|r| r["path"] == "/bulk")
        .flat_map(|r| r["json"].as_array().cloned().unwrap_or_default())
        .collect()
}

/// The events without their dates, and the summaries merged into one, with
/// counters and context kinds sorted: what must equal between two SDKs.
fn comparable(events: &[Value]) -> (Vec<Value>, Map<String, Value>) {
    let mut others = Vec::new();
    let mut features = Map::new();
    for event in events {
        let mut event = event.clone();
        let fields = event.as_object_mut().unwrap();
        fields.remove("creationDate");
        if fields["kind"] != "summary" {
            others.push(event);
            continue;
        }
        for (key, flag) in fields["features"].as_object().unwrap() {
            let entry = features.entry(key.clone()).or_insert_with(
                || json!({"default": flag["default"], "counters": [], "contextKinds": []}),
            );
            for counter in flag["counters"].as_array().unwrap() {
                entry["counters"]
                    .as_array_mut()
                    .unwrap()
                    .push(counter.clone());
            }
            for kind in flag["contextKinds"].as_array().unwrap() {
                let kinds = entry["contextKinds"].as_array_mut().unwrap();
                if !kinds.contains(kind) {
                    kinds.push(kind.clone());
                }
            }
        }
    }
    for flag in features.values_mut() {
        for list in ["counters", "contextKinds"] {
            flag[list]
                .as_array_mut()
                .unwrap()
                .sort_by_key(|v| v.to_string());
        }
    }
    (others, features)
}

/// Node's events for `steps` over `data_file`, posted to a receiver.
fn node_events(data_file: &str, steps: &[Value], privacy: &Value) -> (Vec<Value>, Vec<Value>) {
    let receiver = Receiver::start(202, 0);
    let answer = node_oracle(&json!({
        "data_file": project_root().join("tests/data").join(data_file),
        "sdk_key": SDK_KEY,
        "events": {
            "uri": receiver.url(),
            "all_attributes_private": privacy["all"],
            "private_attributes": privacy["private"],
        },
        "steps": steps,
    }));
    let requests = receiver.requests();
    for r in &requests {
        assert_eq!(r["headers"]["authorization"], SDK_KEY);
    }
    (
        posted_events(&requests),
        answer["details"].as_array().unwrap().clone(),
    )
}

/// A flag evaluator over `data_file` loaded into a fresh table.
async fn evaluator(backend: &Backend, data_file: &str) -> Evaluator {
    let (table, mut store) = fresh_store(backend, "events", PREFIX).await;
    let text = std::fs::read_to_string(project_root().join("tests/data").join(data_file)).unwrap();
    store.init(&data::all_data(&text).unwrap()).await.unwrap();
    let runtime = EvaluatorRuntime::load(&evaluator_component()).unwrap();
    runtime
        .open(&HostOptions::default(), &backend.config(&table, PREFIX))
        .await
        .expect("valid config")
}

fn event_settings(base_uri: &str, privacy: &Value) -> EventSettings {
    EventSettings {
        sdk_key: SDK_KEY.into(),
        base_uri: Some(base_uri.into()),
        all_attributes_private: privacy["all"].as_bool().unwrap(),
        private_attributes: privacy["private"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap().to_string())
            .collect(),
        capacity: None,
        context_keys_capacity: None,
        context_keys_flush_interval_ms: None,
        retry_delay_ms: None,
        timeout_ms: None,
    }
}

/// Runs `steps` on the evaluator: the details of the evaluations.
async fn run_steps(evaluator: &mut Evaluator, steps: &[Value]) -> Vec<Value> {
    let mut details = Vec::new();
    for step in steps {
        let context = step["context"].to_string();
        match step["op"].as_str().unwrap() {
            "evaluate" => {
                let flag = step["flag"].as_str().unwrap();
                let default = step["default"].to_string();
                let e = evaluator.evaluate(flag, &context, &default).await.unwrap();
                let value: Value = serde_json::from_str(&e.value_json).unwrap();
                let reason: Value = serde_json::from_str(&e.reason_json).unwrap();
                let mut detail = json!({"value": value, "reason": reason});
                if let Some(index) = e.variation_index {
                    detail["variationIndex"] = json!(index);
                }
                details.push(detail);
            }
            "track" => {
                let data = step.get("data").map(Value::to_string);
                let metric = step.get("metric_value").and_then(Value::as_f64);
                evaluator
                    .track(
                        step["key"].as_str().unwrap(),
                        &context,
                        data.as_deref(),
                        metric,
                    )
                    .await
                    .unwrap();
            }
            "identify" => evaluator.identify(&context).await.unwrap(),
            other => panic!("{other}"),
        }
    }
    details
}

/// Parity on one data set and privacy setting.
async fn parity(data_file: &str, contexts_file: &str, privacy: Value) {
    let data = read(data_file);
    let contexts: Vec<Value> = read(contexts_file).as_array().unwrap().clone();
    let steps = steps(&data, &contexts);
    let (expected, node_details) = node_events(data_file, &steps, &privacy);

    let backend = Backend::moto();
    let mut evaluator = evaluator(&backend, data_file).await;
    let receiver = Receiver::start(202, 0);
    evaluator
        .configure_events(Some(event_settings(&receiver.url(), &privacy)))
        .await
        .unwrap();
    let details = run_steps(&mut evaluator, &steps).await;
    let report = evaluator.flush().await.unwrap();
    assert!(report.delivered && report.attempts == 1, "{report:?}");
    // The same evaluations first (else the events cannot be equal).
    for (ours, node) in details.iter().zip(&node_details) {
        assert_eq!(ours["value"], node["value"]);
        assert_eq!(ours["reason"], node["reason"]);
    }
    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request["path"], "/bulk");
    assert_eq!(request["headers"]["authorization"], SDK_KEY);
    assert_eq!(request["headers"]["x-launchdarkly-event-schema"], "4");
    assert_eq!(request["headers"]["content-type"], "application/json");
    let id = request["headers"]["x-launchdarkly-payload-id"]
        .as_str()
        .unwrap();
    assert_eq!((id.len(), &id[14..15]), (36, "4"), "{id}");
    let actual = posted_events(&requests);
    assert_eq!(report.events as usize, actual.len());

    let (ours, our_summary) = comparable(&actual);
    let (node, node_summary) = comparable(&expected);
    let kinds = |events: &[Value]| -> Vec<String> {
        events
            .iter()
            .map(|e| e["kind"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(kinds(&ours), kinds(&node), "event kinds in order");
    for (i, (a, b)) in ours.iter().zip(&node).enumerate() {
        assert_eq!(a, b, "event {i}");
    }
    assert_eq!(our_summary, node_summary);
    // What the data set exercises, so the comparison is not empty.
    for kind in ["index", "feature", "custom", "identify"] {
        assert!(kinds(&ours).iter().any(|k| k == kind), "no {kind} event");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_equal_the_node_sdks_for_tracked_rules_experiments_debug_and_privacy() {
    parity(
        "events.json",
        "events-contexts.json",
        json!({"all": false, "private": ["email", "/address/street"]}),
    )
    .await;
    let node = node_events("events.json", &[], &json!({"all": false, "private": []}));
    assert!(node.0.is_empty(), "nothing to send: nothing sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_equal_the_node_sdks_on_the_parity_data_with_all_attributes_private() {
    parity(
        "parity.json",
        "parity-contexts.json",
        json!({"all": true, "private": []}),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_service_gets_one_retry_with_the_same_payload_id_and_a_refused_key_stops_sending()
{
    let backend = Backend::moto();
    let mut evaluator = evaluator(&backend, "events.json").await;
    let privacy = json!({"all": false, "private": []});
    let user = r#"{"kind":"user","key":"u-1"}"#;
    let before = evaluator.evaluate("tracked", user, "false").await.unwrap();

    // Down: the evaluation answers the same; two attempts, then the payload is dropped.
    let mut settings = event_settings(&dead_url(), &privacy);
    settings.retry_delay_ms = Some(100);
    evaluator.configure_events(Some(settings)).await.unwrap();
    let during = evaluator.evaluate("tracked", user, "false").await.unwrap();
    assert_eq!(before, during);
    let report = evaluator.flush().await.unwrap();
    assert_eq!(
        (report.attempts, report.delivered, report.status),
        (2, false, None)
    );
    assert!(report.error.is_some() && !report.stopped);

    // 500: one retry, with the same payload ID and body.
    let receiver = Receiver::start(500, 0);
    let mut settings = event_settings(&receiver.url(), &privacy);
    settings.retry_delay_ms = Some(100);
    evaluator
        .configure_events(Some(settings.clone()))
        .await
        .unwrap();
    evaluator.evaluate("tracked", user, "false").await.unwrap();
    let report = evaluator.flush().await.unwrap();
    assert_eq!((report.attempts, report.status), (2, Some(500)));
    let requests = receiver.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[0]["headers"]["x-launchdarkly-payload-id"],
        requests[1]["headers"]["x-launchdarkly-payload-id"]
    );
    assert_eq!(requests[0]["body_base64"], requests[1]["body_base64"]);
    // Another payload, another ID.
    evaluator.evaluate("tracked", user, "false").await.unwrap();
    evaluator.flush().await.unwrap();
    let requests = receiver.wait_for(4);
    assert_eq!(requests.len(), 4);
    assert_ne!(
        requests[1]["headers"]["x-launchdarkly-payload-id"],
        requests[2]["headers"]["x-launchdarkly-payload-id"]
    );

    // 401: no retry, and nothing queued or sent after.
    let refusing = Receiver::start(401, 0);
    settings.base_uri = Some(refusing.url());
    evaluator.configure_events(Some(settings)).await.unwrap();
    evaluator.identify(user).await.unwrap();
    let report = evaluator.flush().await.unwrap();
    assert_eq!((report.attempts, report.stopped), (1, true));
    let after = evaluator.evaluate("tracked", user, "false").await.unwrap();
    assert_eq!(before, after);
    evaluator.track("t", user, None, None).await.unwrap();
    let report = evaluator.flush().await.unwrap();
    assert_eq!(
        (report.attempts, report.events, report.stopped),
        (0, 0, true)
    );
    assert_eq!(refusing.requests().len(), 1);

    // Bad settings are errors, not traps.
    let mut bad = event_settings("ftp://x", &privacy);
    assert!(evaluator
        .configure_events(Some(bad.clone()))
        .await
        .is_err_and(|e| matches!(e, Error::Events(_))));
    bad.base_uri = None;
    bad.sdk_key = "two words".into();
    assert!(evaluator
        .configure_events(Some(bad))
        .await
        .is_err_and(|e| matches!(e, Error::Events(_))));
}

/// The edge app over `events.json`, its events and event routes going to
/// `events_uri`, served with every route family on (the evalx tests' keys).
fn serve_edge(backend: &Backend, events_uri: &str, extra: &[&str]) -> Served {
    let table = unique_table("events");
    cli(backend, &table, &["create-table"], "");
    let data = std::fs::read_to_string(project_root().join("tests/data/events.json")).unwrap();
    cli(backend, &table, &["init", "-"], &data);
    let mut vars = vec![
        "events=true".to_string(),
        format!("events-uri={events_uri}"),
    ];
    vars.extend(extra.iter().map(|v| v.to_string()));
    let vars: Vec<&str> = vars.iter().map(String::as_str).collect();
    serve_on(Host::Wasmtime, backend, &table, &backend.endpoint, &vars)
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn evalx_path(key: &str) -> String {
    let context = json!({"kind": "user", "key": key, "email": "e@example.com"});
    format!(
        "/sdk/evalx/{CLIENT_SIDE_ID}/contexts/{}",
        base64url(context.to_string().as_bytes())
    )
}

#[test]
fn the_edge_answers_before_it_sends_its_events() {
    let backend = Backend::moto();
    // The service takes 2 s to answer: an answer that waited on it would be
    // at least that late.
    let receiver = Receiver::start(202, 2_000);
    let served = serve_edge(&backend, &receiver.url(), &[]);
    let (status, _, body) = served.get(&evalx_path("timing-1"), &[]);
    let answered = now();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let requests = receiver.wait_for(1);
    assert_eq!(
        requests.len(),
        1,
        "the app sent its events: {}",
        served.log()
    );
    let post = &requests[0];
    assert!(
        answered < post["answered"].as_f64().unwrap(),
        "the answer came at {answered}, the service answered the events at {}",
        post["answered"]
    );
    assert_eq!(post["path"], "/bulk");
    assert_eq!(post["headers"]["authorization"], SDK_KEY);
    let events = post["json"].as_array().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["kind"], "index");
    assert_eq!(events[0]["context"]["key"], "timing-1");
}

#[test]
fn a_dead_or_failing_service_costs_no_answer_and_one_retry_at_most() {
    let backend = Backend::moto();
    let quiet = serve_edge(&backend, &dead_url(), &["events=false"]);
    let (status, _, expected) = quiet.get(&evalx_path("f-0"), &[]);
    assert_eq!(status, 200);
    // Down.
    let down = serve_edge(&backend, &dead_url(), &[]);
    let (status, _, body) = down.get(&evalx_path("f-0"), &[]);
    assert_eq!((status, &body), (200, &expected));
    assert!(
        down.logged("events not delivered after 2 attempts"),
        "{}",
        down.log()
    );
    // 500, then 401: each payload posted twice after a 500, once after a
    // 401. Each instance logs a payload it could not deliver once its flush
    // is over (retry included), so the POSTs the log accounts for are final.
    for (status, attempts) in [(500, 2), (401, 1)] {
        let receiver = Receiver::start(status, 0);
        let served = serve_edge(&backend, &receiver.url(), &[]);
        for i in 0..3 {
            let (code, _, body) = served.get(&evalx_path(&format!("f-{i}")), &[]);
            assert_eq!(code, 200);
            if i == 0 {
                assert_eq!(body, expected);
            }
        }
        let needle = format!("not delivered after {attempts} attempts");
        let start = Instant::now();
        let requests = loop {
            let requests = receiver.requests();
            let logged = served.log().matches(&needle).count();
            // After a 500 every answer's instance sends; after a 401 one that
            // was refused before sends nothing more.
            let all_sent = if status == 500 {
                logged == 3
            } else {
                logged >= 1
            };
            if all_sent && logged * attempts == requests.len() {
                break requests;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "{} POSTs, {logged} logged: {}",
                requests.len(),
                served.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut per_id: std::collections::HashMap<String, usize> = Default::default();
        for r in &requests {
            *per_id
                .entry(
                    r["headers"]["x-launchdarkly-payload-id"]
                        .as_str()
                        .unwrap()
                        .into(),
                )
                .or_default() += 1;
        }
        assert!(per_id.values().all(|n| *n == attempts), "{per_id:?}");
    }
}

/// A payload as an SDK posts it.
fn payload() -> Vec<u8> {
    json!([{"kind": "identify", "creationDate": 1, "context": {"kind": "user", "key": "k"}}])
        .to_string()
        .into_bytes()
}

#[test]
fn event_routes_forward_each_familys_payload_unchanged() {
    let backend = Backend::moto();
    let receiver = Receiver::start(202, 0);
    let served = serve_edge(
        &backend,
        &format!("{}/base", receiver.url()),
        &["events=false"],
    );
    let body = payload();
    let common = [
        ("content-type", "application/json"),
        ("x-launchdarkly-event-schema", "4"),
        (
            "x-launchdarkly-payload-id",
            "6d3f0c4e-1111-4222-8333-944445555666",
        ),
        ("user-agent", "TestSDK/1.0"),
        ("cookie", "not-forwarded"),
    ];
    let with_scheme = format!("api_key {MOBILE_KEY}");
    let auth = |key: &'static str| {
        let mut headers = common.to_vec();
        headers.push(("authorization", key));
        headers
    };
    let mut mobile_with_scheme = common.to_vec();
    mobile_with_scheme.push(("authorization", &with_scheme));
    let bulk = format!("/events/bulk/{CLIENT_SIDE_ID}");
    let diagnostic = format!("/events/diagnostic/{CLIENT_SIDE_ID}");
    let gif = format!("/a/{CLIENT_SIDE_ID}.gif?d=e30");
    let routes: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("/bulk", auth(SDK_KEY)),
        ("/diagnostic", auth(SDK_KEY)),
        ("/mobile", auth(MOBILE_KEY)),
        ("/mobile/events", mobile_with_scheme),
        ("/mobile/events/bulk", auth(MOBILE_KEY)),
        ("/mobile/events/diagnostic", auth(MOBILE_KEY)),
        (&bulk, common.to_vec()),
        (&diagnostic, common.to_vec()),
    ];
    for (path, headers) in &routes {
        let (status, _, answer) = served.send("POST", path, headers, &body);
        assert_eq!(status, 202, "{path}: {}", String::from_utf8_lossy(&answer));
    }
    let (status, headers, _) = served.request("GET", &gif, &[("origin", "https://app.example")]);
    assert_eq!(status, 202);
    assert_eq!(
        crate::edge::header(&headers, "access-control-allow-origin"),
        Some("https://app.example")
    );
    let requests = receiver.wait_for(routes.len() + 1);
    assert_eq!(requests.len(), routes.len() + 1);
    for (request, (path, headers)) in requests.iter().zip(&routes) {
        assert_eq!(request["path"], format!("/base{path}"));
        assert_eq!(request["method"], "POST");
        assert_eq!(request["body_base64"], base64_std(&body));
        for (name, value) in headers {
            let forwarded = request["headers"].get(*name);
            if *name == "cookie" {
                assert!(forwarded.is_none(), "{path}: cookie forwarded");
            } else {
                assert_eq!(forwarded, Some(&json!(value)), "{path}: {name}");
            }
        }
    }
    assert_eq!(requests[routes.len()]["path"], format!("/base{gif}"));
    assert_eq!(requests[routes.len()]["method"], "GET");

    // Each family's credential, CORS for browsers, the body limit.
    let refused = [
        ("/bulk", vec![("authorization", MOBILE_KEY)], 401),
        ("/mobile/events/bulk", vec![("authorization", SDK_KEY)], 401),
        ("/events/bulk/other-env", vec![], 404),
    ];
    for (path, headers, status) in refused {
        assert_eq!(
            served.send("POST", path, &headers, &body).0,
            status,
            "{path}"
        );
    }
    let (status, headers, _) = served.request(
        "OPTIONS",
        &bulk,
        &[
            ("origin", "https://app.example"),
            (
                "access-control-request-headers",
                "content-type,x-launchdarkly-payload-id",
            ),
        ],
    );
    assert_eq!(status, 200);
    assert_eq!(
        crate::edge::header(&headers, "access-control-allow-methods"),
        Some("POST, OPTIONS")
    );
    let big = vec![b' '; 4 * 1024 * 1024 + 1];
    assert_eq!(
        served
            .send("POST", "/bulk", &[("authorization", SDK_KEY)], &big)
            .0,
        413
    );
    assert_eq!(receiver.requests().len(), routes.len() + 1);
}

#[test]
fn event_routes_answer_503_when_the_service_fails_and_pass_its_refusals_on() {
    let backend = Backend::moto();
    let down = serve_edge(&backend, &dead_url(), &["events=false"]);
    let headers = [
        ("authorization", SDK_KEY),
        ("content-type", "application/json"),
    ];
    assert_eq!(down.send("POST", "/bulk", &headers, &payload()).0, 503);
    // A bad events setting is a bad configuration: 503, and the log says why.
    let misconfigured = serve_edge(&backend, "ftp://events.example", &[]);
    assert_eq!(
        misconfigured.send("POST", "/bulk", &headers, &payload()).0,
        503
    );
    assert!(misconfigured.logged("events-uri=\"ftp://events.example\" must start with http"));
    for (status, expected) in [(500, 503), (401, 401), (400, 400)] {
        let receiver = Receiver::start(status, 0);
        let served = serve_edge(&backend, &receiver.url(), &["events=false"]);
        let bulk = format!("/events/bulk/{CLIENT_SIDE_ID}");
        let answer = served.send("POST", &bulk, &[], &payload());
        assert_eq!(answer.0, expected, "service {status}");
        // Forwarded once: the SDK retries, not the edge.
        assert_eq!(receiver.wait_for(1).len(), 1);
    }
}

#[test]
fn the_js_client_sdks_events_reach_the_service_through_the_edge_in_chromium() {
    let backend = Backend::moto();
    let receiver = Receiver::start(202, 0);
    // The app's own events off: whatever arrives, the browser sent.
    let served = serve_edge(&backend, &receiver.url(), &["events=false"]);
    let contexts = [
        json!({"kind": "user", "key": "browser-1", "email": "b@example.com"}),
        json!({"kind": "org", "key": "browser-org", "plan": "pro"}),
    ];
    // The page comes from another origin: every POST is preflighted.
    let result = run_page(
        &serve_page(),
        &json!({"clientSideId": CLIENT_SIDE_ID, "baseUri": served.url(), "useReport": false,
                "contexts": contexts, "eventsUri": served.url()}),
    );
    assert!(result.get("error").is_none(), "{result}");
    let requests = receiver.wait_for(1);
    assert!(!requests.is_empty(), "no events arrived: {}", served.log());
    let mut events = Vec::new();
    let bulk = format!("/events/bulk/{CLIENT_SIDE_ID}");
    let diagnostic = format!("/events/diagnostic/{CLIENT_SIDE_ID}");
    // Its diagnostic events come through too.
    assert!(requests.iter().any(|r| r["path"] == diagnostic));
    for request in requests.iter().filter(|r| r["path"] != diagnostic) {
        assert_eq!(request["path"], bulk);
        assert_eq!(request["headers"]["x-launchdarkly-event-schema"], "4");
        assert!(request["headers"]["x-launchdarkly-payload-id"].is_string());
        assert!(request["headers"]["x-launchdarkly-user-agent"]
            .as_str()
            .is_some_and(|ua| ua.starts_with("JSClient/")));
        events.extend(request["json"].as_array().cloned().unwrap_or_default());
    }
    let identified: Vec<&str> = events
        .iter()
        .filter(|e| e["kind"] == "identify")
        .map(|e| e["context"]["key"].as_str().unwrap())
        .collect();
    assert_eq!(identified, ["browser-1", "browser-org"]);
    // The page called `variation` for every flag: the SDK counted them, and
    // `tracked` (trackEvents) gave feature events.
    let counted: Vec<&str> = events
        .iter()
        .filter(|e| e["kind"] == "summary")
        .flat_map(|e| e["features"].as_object().unwrap().keys())
        .map(String::as_str)
        .collect();
    for key in ["plain", "tracked", "rule-tracked"] {
        assert!(counted.contains(&key), "{key} not counted: {events:?}");
    }
    assert!(events
        .iter()
        .any(|e| e["kind"] == "feature" && e["key"] == "tracked"));
}

/// Standard base64 (the receiver's encoding of bodies).
fn base64_std(bytes: &[u8]) -> String {
    let url = base64url(bytes).replace('-', "+").replace('_', "/");
    let pad = (4 - url.len() % 4) % 4;
    format!("{url}{}", "=".repeat(pad))
}
