//! The edge flag server's evaluation routes (`evalx`) under `wasmtime serve`,
//! against moto with SigV4 checking on: LaunchDarkly's JS client SDK in
//! headless Chromium (a page from another origin, GET and REPORT, secure mode,
//! `identify`), the mobile and server routes, each compared with
//! LaunchDarkly's Node server SDK on the same data file; every error code,
//! CORS and revalidation.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::{json, Map, Value};

use ld_dynamodb_tests::{base64url, node_oracle, unique_table, Backend, REGION};

use crate::edge::{cli, header, json_of, root, Host, Served, SDK_KEY};

pub(crate) const CLIENT_SIDE_ID: &str = "env-edge-client-1";
pub(crate) const MOBILE_KEY: &str = "mob-edge-test-key-1";

fn parity_file() -> PathBuf {
    root().join("tests/data/parity.json")
}

fn parity_flags() -> Map<String, Value> {
    let text = std::fs::read_to_string(parity_file()).unwrap();
    let data: Value = serde_json::from_str(&text).unwrap();
    data["flags"].as_object().unwrap().clone()
}

fn contexts() -> Vec<Value> {
    let text = std::fs::read_to_string(root().join("tests/data/parity-contexts.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// A moto table holding `tests/data/parity.json` under the prefix `edge`,
/// loaded by the CLI.
fn parity_table(backend: &Backend) -> String {
    let table = unique_table("evalx");
    cli(backend, &table, &["create-table"], "");
    let data = std::fs::read_to_string(parity_file()).unwrap();
    cli(backend, &table, &["init", "-"], &data);
    table
}

/// Serves `table` with every route family on: the SDK key, the mobile key
/// (both through the environment) and the client-side ID, plus `extra`
/// settings.
fn serve(backend: &Backend, table: &str, endpoint: &str, extra: &[&str]) -> Served {
    serve_on(Host::Wasmtime, backend, table, endpoint, extra)
}

/// [`serve`] on `host`.
pub(crate) fn serve_on(
    host: Host,
    backend: &Backend,
    table: &str,
    endpoint: &str,
    extra: &[&str],
) -> Served {
    let mut command = Command::new(root().join(".tools/bin/wasmtime"));
    command
        .env_clear()
        .env("AWS_ACCESS_KEY_ID", &backend.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &backend.secret_access_key)
        .env("LD_SDK_KEY", SDK_KEY)
        .env("LD_MOBILE_KEY", MOBILE_KEY);
    let mut vars = vec![
        format!("table={table}"),
        "prefix=edge".to_string(),
        format!("region={REGION}"),
        format!("endpoint={endpoint}"),
        format!("client-side-id={CLIENT_SIDE_ID}"),
    ];
    vars.extend(extra.iter().map(|v| v.to_string()));
    Served::spawn_on(host, command, &vars)
}

/// The Node server SDK's answers for `contexts` on the data file: the
/// client-side values, every flag's state with reasons, and the secure-mode
/// hashes (under [`SDK_KEY`], as the server keys them).
struct Oracle {
    client_side: Vec<Value>,
    with_reasons: Vec<Value>,
    hashes: Vec<String>,
}

fn oracle(contexts: &[Value]) -> Oracle {
    let answer = node_oracle(&json!({
        "data_file": parity_file(),
        "contexts": contexts,
        "flags": [],
        "default": null,
        "options": [{"clientSideOnly": true}, {"withReasons": true}],
        "sdk_key": SDK_KEY,
    }));
    let states = answer["states"].as_array().unwrap();
    Oracle {
        client_side: states[0].as_array().unwrap().clone(),
        with_reasons: states[1].as_array().unwrap().clone(),
        hashes: answer["hashes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h.as_str().unwrap().to_string())
            .collect(),
    }
}

/// The flag values of an `allFlagsState` JSON.
fn values(state: &Value) -> Map<String, Value> {
    let mut values = state.as_object().unwrap().clone();
    values.remove("$flagsState");
    values.remove("$valid");
    values
}

/// The base64url of a context's JSON, as the JS SDK sends it.
fn b64(context: &Value) -> String {
    base64url(context.to_string().as_bytes())
}

/// A static server on its own port (so another origin than the edge app)
/// for the test page and the SDK's one-file ESM build; stops with the test
/// process.
pub(crate) fn serve_page() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let page = std::fs::read(root().join("tests/browser/page.html")).unwrap();
    let sdk = std::fs::read(
        root().join(".tools/node/node_modules/@launchdarkly/js-client-sdk/dist/index.js"),
    )
    .expect("scripts/setup.sh --node installs @launchdarkly/js-client-sdk");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut line = String::new();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            // The rest of the head: nothing in it matters here.
            let mut header = String::new();
            while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                header.clear();
            }
            let path = line.split(' ').nth(1).unwrap_or("/");
            let (status, kind, body) = match path {
                "/" | "/index.html" => ("200 OK", "text/html", &page[..]),
                "/sdk.js" => ("200 OK", "text/javascript", &sdk[..]),
                _ => ("404 Not Found", "text/plain", &b""[..]),
            };
            let head = format!(
                "HTTP/1.1 {status}\r\ncontent-type: {kind}\r\ncontent-length: {}\r\n\
                 connection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body);
        }
    });
    format!("http://{addr}")
}

/// Runs the page in headless Chromium (Debian's, installed by
/// `scripts/setup.sh --browser`) and returns what it wrote into `#result`.
pub(crate) fn run_page(page: &str, run: &Value) -> Value {
    let profile = std::env::temp_dir().join(format!("ld-evalx-chromium-{}", unique_table("p")));
    let fragment: String = run
        .to_string()
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let mut child = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=60000",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("{page}/#{fragment}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chromium is installed by scripts/setup.sh --browser");
    let mut stderr = child.stderr.take().unwrap();
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let mut dom = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut dom)
        .unwrap();
    child.wait().unwrap();
    let console = errors.join().unwrap();
    let _ = std::fs::remove_dir_all(&profile);
    let start = dom.find("<pre id=\"result\">").map(|i| i + 17);
    let end = dom.find("</pre>");
    let (Some(start), Some(end)) = (start, end) else {
        panic!("no result in the page: {dom}\n{console}");
    };
    let text = dom[start..end]
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}\n{console}"))
}

#[test]
fn the_js_client_sdk_in_chromium_gets_the_node_sdks_values_by_get_and_report() {
    let backend = Backend::moto();
    let table = parity_table(&backend);
    let contexts = contexts();
    let expected = oracle(&contexts);
    let client_side = parity_flags()
        .values()
        .filter(|f| f["clientSideAvailability"]["usingEnvironmentId"] == json!(true))
        .count();
    let page = serve_page();
    // GET without secure mode; REPORT with it, each context's hash given to
    // the SDK (`?h=`).
    for (report, secure) in [(false, false), (true, true)] {
        let extra: &[&str] = if secure { &["secure-mode=true"] } else { &[] };
        let served = serve(&backend, &table, &backend.endpoint, extra);
        let mut run = json!({
            "clientSideId": CLIENT_SIDE_ID,
            "baseUri": served.url(),
            "useReport": report,
            "contexts": contexts,
        });
        if secure {
            run["hashes"] = json!(expected.hashes);
        }
        let result = run_page(&page, &run);
        assert!(result.get("error").is_none(), "{result}\n{}", served.log());
        assert_ne!(result["origin"].as_str(), Some(served.url().as_str()));
        let evaluations = result["evaluations"].as_array().unwrap();
        assert_eq!(evaluations.len(), contexts.len());
        for (i, evaluation) in evaluations.iter().enumerate() {
            let status = evaluation["status"].as_str().unwrap();
            assert!(
                status == "complete" || status == "completed",
                "report={report}, context {i}: {status}\n{}",
                served.log()
            );
            let flags = evaluation["flags"].as_object().unwrap();
            assert_eq!(flags.len(), client_side, "report={report}, context {i}");
            assert_eq!(
                flags,
                &values(&expected.client_side[i]),
                "report={report}, context {i}: {}",
                contexts[i]
            );
        }
        // One evaluation request per context, of the method asked for.
        let evalx: Vec<&str> = result["fetched"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p.as_str())
            .filter(|p| p.starts_with("/sdk/evalx/"))
            .collect();
        let report_path = format!("/sdk/evalx/{CLIENT_SIDE_ID}/context");
        assert_eq!(evalx.len(), contexts.len(), "{evalx:?}");
        assert!(
            evalx.iter().all(|p| (*p == report_path) == report),
            "report={report}: {evalx:?}"
        );
    }
}

/// The evalx entry the Node SDK's state implies for a flag, as Relay sends it.
fn expected_entry(state: &Value, key: &str) -> Value {
    let mut entry = json!({"value": state[key], "variation": null});
    for (k, v) in state["$flagsState"][key].as_object().unwrap() {
        entry[k] = v.clone();
    }
    entry
}

#[test]
fn mobile_and_server_routes_equal_the_node_sdk_with_reasons() {
    mobile_and_server_routes_equal_the_node_sdk_with_reasons_on(Host::Wasmtime);
}

#[test]
fn mobile_and_server_routes_equal_the_node_sdk_with_reasons_under_jco_serve() {
    mobile_and_server_routes_equal_the_node_sdk_with_reasons_on(Host::Jco);
}

fn mobile_and_server_routes_equal_the_node_sdk_with_reasons_on(host: Host) {
    let backend = Backend::moto();
    let table = parity_table(&backend);
    let served = serve_on(host, &backend, &table, &backend.endpoint, &[]);
    let contexts = contexts();
    let expected = oracle(&contexts);
    let flags = parity_flags();
    let mobile_key = format!("api_key {MOBILE_KEY}");
    for (i, context) in contexts.iter().enumerate() {
        let state = &expected.with_reasons[i];
        let all: Map<String, Value> = flags
            .keys()
            .map(|k| (k.clone(), expected_entry(state, k)))
            .collect();
        let mobile: Map<String, Value> = all
            .iter()
            .filter(|(k, _)| flags[*k]["clientSideAvailability"]["usingMobileKey"] == json!(true))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let encoded = b64(context);
        let body = context.to_string();
        let json_type = ("content-type", "application/json");
        for (what, answer, want) in [
            (
                "mobile GET",
                served.get(
                    &format!("/msdk/evalx/contexts/{encoded}?withReasons=true"),
                    &[("authorization", &mobile_key)],
                ),
                &mobile,
            ),
            (
                "mobile REPORT",
                served.send(
                    "REPORT",
                    "/msdk/evalx/user?withReasons=true",
                    &[("authorization", &mobile_key), json_type],
                    body.as_bytes(),
                ),
                &mobile,
            ),
            (
                "server GET",
                served.get(
                    &format!("/sdk/evalx/users/{encoded}?withReasons=true"),
                    &[("authorization", SDK_KEY)],
                ),
                &all,
            ),
            (
                "server REPORT",
                served.send(
                    "REPORT",
                    "/sdk/evalx/context?withReasons=true",
                    &[("authorization", SDK_KEY), json_type],
                    body.as_bytes(),
                ),
                &all,
            ),
        ] {
            assert_eq!(
                answer.0,
                200,
                "{what}: {}",
                String::from_utf8_lossy(&answer.2)
            );
            assert_eq!(
                json_of(&answer.2).as_object().unwrap(),
                want,
                "{what}, context {i}: {context}"
            );
        }
    }
    // Without `withReasons`, a reason is sent only for flags in an experiment.
    let (status, _, body) = served.get(
        &format!("/sdk/evalx/contexts/{}", b64(&contexts[0])),
        &[("authorization", SDK_KEY)],
    );
    assert_eq!(status, 200);
    for (key, entry) in json_of(&body).as_object().unwrap() {
        assert_eq!(
            entry.get("reason").is_some(),
            entry.get("trackReason") == Some(&json!(true)),
            "{key}: {entry}"
        );
    }
}

#[test]
fn errors_cors_secure_mode_and_revalidation_under_wasmtime_serve() {
    errors_cors_secure_mode_and_revalidation_on(Host::Wasmtime);
}

#[test]
fn errors_cors_secure_mode_and_revalidation_under_jco_serve() {
    errors_cors_secure_mode_and_revalidation_on(Host::Jco);
}

fn errors_cors_secure_mode_and_revalidation_on(host: Host) {
    let backend = Backend::moto();
    let table = parity_table(&backend);
    let served = serve_on(
        host,
        &backend,
        &table,
        &backend.endpoint,
        &["secure-mode=true"],
    );
    let contexts = contexts();
    let expected = oracle(&contexts[..1]);
    let context = b64(&contexts[0]);
    let js = format!("/sdk/evalx/{CLIENT_SIDE_ID}/contexts/{context}");
    let origin = ("origin", "http://app.example:8080");

    // Secure mode: the right hash, a wrong one, none.
    let good = format!("{js}?h={}", expected.hashes[0]);
    let (status, headers, body) = served.get(&good, &[origin]);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        header(&headers, "access-control-allow-origin"),
        Some("http://app.example:8080")
    );
    let tag = header(&headers, "etag").expect("an ETag").to_string();
    let wrong = format!("{js}?h={}", "0".repeat(64));
    assert_eq!(served.get(&wrong, &[origin]).0, 400);
    assert_eq!(served.get(&js, &[origin]).0, 400);

    // Revalidation.
    let (status, headers, body) = served.get(&good, &[("if-none-match", &tag)]);
    assert_eq!((status, body.len()), (304, 0));
    assert_eq!(header(&headers, "access-control-allow-origin"), Some("*"));

    // The preflight the SDK sends before a REPORT from another origin.
    let (status, headers, _) = served.request(
        "OPTIONS",
        &format!("/sdk/evalx/{CLIENT_SIDE_ID}/context"),
        &[
            origin,
            ("access-control-request-method", "REPORT"),
            (
                "access-control-request-headers",
                "content-type,x-launchdarkly-user-agent",
            ),
        ],
    );
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "access-control-max-age"), Some("300"));
    assert_eq!(
        header(&headers, "access-control-allow-methods"),
        Some("REPORT, OPTIONS")
    );
    let allowed = header(&headers, "access-control-allow-headers")
        .unwrap()
        .to_ascii_lowercase();
    assert!(allowed.contains("content-type") && allowed.contains("x-launchdarkly-user-agent"));

    // 400: a context without a key, or one that is not base64url JSON.
    let no_key = b64(&json!({"kind": "user", "name": "nobody"}));
    let (status, _, body) = served.get(
        &format!("/sdk/evalx/contexts/{no_key}"),
        &[("authorization", SDK_KEY)],
    );
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    let (status, _, _) = served.get("/sdk/evalx/contexts/%25%25", &[("authorization", SDK_KEY)]);
    assert_eq!(status, 400);
    // 404: an unknown client-side ID, with CORS so a page sees it.
    let (status, headers, _) = served.get(&format!("/sdk/evalx/env-other/contexts/{context}"), &[]);
    assert_eq!(status, 404);
    assert_eq!(header(&headers, "access-control-allow-origin"), Some("*"));
    // 401: a wrong mobile key, an SDK key on the mobile route, a wrong SDK key.
    let mobile = format!("/msdk/evalx/contexts/{context}");
    assert_eq!(
        served
            .get(&mobile, &[("authorization", "api_key mob-wrong")])
            .0,
        401
    );
    assert_eq!(served.get(&mobile, &[("authorization", SDK_KEY)]).0, 401);
    let server = format!("/sdk/evalx/contexts/{context}");
    assert_eq!(served.get(&server, &[("authorization", MOBILE_KEY)]).0, 401);
    assert_eq!(served.get(&server, &[]).0, 401);
    // 405 and 415.
    let report = format!("/sdk/evalx/{CLIENT_SIDE_ID}/context");
    let (status, headers, _) = served.request("POST", &report, &[]);
    assert_eq!(
        (status, header(&headers, "allow")),
        (405, Some("REPORT, OPTIONS"))
    );
    let body = contexts[0].to_string();
    let (status, _, _) = served.send(
        "REPORT",
        &report,
        &[("content-type", "text/plain")],
        body.as_bytes(),
    );
    assert_eq!(status, 415);
    drop(served);

    // 503: a table without data, and a DynamoDB that does not answer; the
    // body never carries the cause, the log does.
    let empty = unique_table("evalx-empty");
    cli(&backend, &empty, &["create-table"], "");
    let served = serve(&backend, &empty, &backend.endpoint, &[]);
    let (status, _, body) = served.get(&server, &[("authorization", SDK_KEY)]);
    assert_eq!(status, 503, "{}", String::from_utf8_lossy(&body));
    assert!(served.logged("not initialized"), "{}", served.log());
    drop(served);
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let served = serve(&backend, &table, &dead, &[]);
    let (status, _, body) = served.get(&server, &[("authorization", SDK_KEY)]);
    assert_eq!(status, 503);
    let text = String::from_utf8_lossy(&body);
    assert!(!text.contains(&dead) && !text.contains(&table), "{text}");
    assert!(served.logged("the data store failed"), "{}", served.log());
    // In the store crate's words (its `StoreError` text: "(1 attempt)",
    // "(3 attempts)"); the app's own text had no count.
    assert!(
        served.logged("transport error: ")
            && (served.log().contains(" attempt)") || served.log().contains(" attempts)")),
        "{}",
        served.log()
    );
    assert!(!served.log().contains(&backend.secret_access_key));
}

/// `tests/data/pathological.json`: client-side flags whose rules and
/// segment test `matches` clauses, as a security review attacked them.
fn pathological_file() -> PathBuf {
    root().join("tests/data/pathological.json")
}

#[test]
fn pathological_contexts_are_refused_or_answered_as_the_node_sdk_does() {
    let backend = Backend::moto();
    let table = unique_table("evalx-hostile");
    cli(&backend, &table, &["create-table"], "");
    let data = std::fs::read_to_string(pathological_file()).unwrap();
    cli(&backend, &table, &["init", "-"], &data);
    let served = serve(&backend, &table, &backend.endpoint, &[]);
    let report = |context: &Value| {
        served.send(
            "REPORT",
            &format!("/sdk/evalx/{CLIENT_SIDE_ID}/context"),
            &[("content-type", "application/json")],
            context.to_string().as_bytes(),
        )
    };
    let emails = |n: usize, last: &str| {
        let mut list = vec![json!("a"); n - 1];
        list.push(json!(last));
        Value::Array(list)
    };

    // Over a limit: 400, naming it.
    let refused = [
        // The review's body (16,369 strings in one attribute) is over the
        // body limit: below.
        (
            json!({"kind": "user", "key": "x", "email": emails(65, "a")}),
            "65 values",
        ),
        (
            json!({"kind": "user", "key": "x", "email": "a".repeat(4097)}),
            "4097 bytes",
        ),
        (
            Value::Object(
                (0..300)
                    .map(|i| (format!("a{i}"), json!(i)))
                    .chain([("key".to_string(), json!("x"))])
                    .collect(),
            ),
            "301 attributes",
        ),
        (
            Value::Object(
                (0..17)
                    .map(|i| (format!("k{i}"), json!({"key": "x"})))
                    .chain([("kind".to_string(), json!("multi"))])
                    .collect(),
            ),
            "17 kinds",
        ),
    ];
    for (context, named) in &refused {
        let (status, _, body) = report(context);
        let text = String::from_utf8_lossy(&body);
        assert_eq!(status, 400, "{text}");
        assert!(text.contains(named) && text.contains("at most"), "{text}");
    }
    // A context the evaluator refuses: its words, once.
    let (status, _, body) = report(&json!({"kind": "user"}));
    let error = json_of(&body)["error"].as_str().unwrap().to_string();
    assert_eq!(status, 400, "{error}");
    assert!(
        error.starts_with("invalid context: ") && error.matches("invalid context").count() == 1,
        "{error}"
    );
    let review = json!({"kind": "user", "key": "x", "email": emails(16_369, "a")});
    let (status, _, body) = report(&review);
    assert_eq!(status, 413, "{}", String::from_utf8_lossy(&body));
    let in_path = format!(
        "/sdk/evalx/{CLIENT_SIDE_ID}/contexts/{}",
        b64(&json!({"kind": "user", "key": "x", "email": "e".repeat(20_000)}))
    );
    assert_eq!(served.get(&in_path, &[]).0, 413);

    // Within the limits: the Node SDK's answers, `matches` clauses reached
    // through rules, a negated rule, a segment and a multi-kind context.
    let answered = vec![
        json!({"kind": "user", "key": "x", "email": emails(64, "ann@example.com")}),
        json!({"kind": "user", "key": "x", "email": emails(64, "a")}),
        json!({"kind": "user", "key": "x", "email": "b".repeat(4096)}),
        json!({"kind": "user", "key": "x", "groups": emails(64, "admin-ops")}),
        json!({"kind": "user", "key": "x", "email": null, "groups": ["staff"]}),
        Value::Object(
            (0..255)
                .map(|i| (format!("a{i}"), json!(format!("{i}@example.com"))))
                .chain([("key".to_string(), json!("x"))])
                .collect(),
        ),
        json!({"kind": "multi", "user": {"key": "u", "email": "bob@example.com"},
               "org": {"key": "o", "address": {"city": "Paris"}}}),
    ];
    let expected = node_oracle(&json!({
        "data_file": pathological_file(),
        "contexts": answered,
        "flags": [],
        "default": null,
        "options": [{"clientSideOnly": true}],
    }));
    let states = expected["states"][0].as_array().unwrap();
    let mut served_values = std::collections::BTreeSet::new();
    for (context, state) in answered.iter().zip(states) {
        let (status, _, body) = report(context);
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let got: Map<String, Value> = json_of(&body)
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v["value"].clone()))
            .collect();
        assert_eq!(got, values(state), "{context}");
        served_values.extend(got.into_iter().map(|(k, v)| format!("{k}={v}")));
    }
    // Each flag answered both ways somewhere: every rule was reached.
    assert_eq!(served_values.len(), 2 * 8, "{served_values:?}");
}

/// Past `request-budget-ms` an evaluation answer is stopped: 503, and the log
/// says why (the wasmtime timeout of the serve options, a last resort, would
/// stop the instance and answer 500). A budget of 0 is over before the first
/// flag; the polling routes, which evaluate nothing, still answer.
#[test]
fn an_answer_past_its_time_budget_is_a_503_that_the_log_explains() {
    let backend = Backend::moto();
    let table = parity_table(&backend);
    let context = contexts()[0].to_string();
    let report = format!("/sdk/evalx/{CLIENT_SIDE_ID}/context");
    let json = [("content-type", "application/json")];
    let served = serve(
        &backend,
        &table,
        &backend.endpoint,
        &["request-budget-ms=0"],
    );
    let (status, _, body) = served.send("REPORT", &report, &json, context.as_bytes());
    assert_eq!(status, 503, "{}", String::from_utf8_lossy(&body));
    assert!(!String::from_utf8_lossy(&body).contains("budget"));
    assert!(
        served.logged("stopped after its time budget of 0 ms (request-budget-ms)"),
        "{}",
        served.log()
    );
    let (status, _, _) = served.get("/sdk/latest-all", &[("authorization", SDK_KEY)]);
    assert_eq!(status, 200);
    drop(served);
    let served = serve(&backend, &table, &backend.endpoint, &[]);
    let (status, _, _) = served.send("REPORT", &report, &json, context.as_bytes());
    assert_eq!(status, 200, "the default budget, 2 s, is ample");
}
