//! Hostile contexts at the edge: what one anonymous evalx REPORT can cost
//! (the security review's body and its variants) against a normal one, and
//! how a flood of the costliest accepted body slows `GET /sdk/latest-all`.

use std::path::Path;
use std::time::Duration;

use anyhow::{ensure, Result};
use serde_json::{json, Value};

use ld_dynamodb_host::embed::Runtime;

use super::edge::{edge_run, Until};
use super::{dataset, edge_get, edge_load, loaded_table, EdgeRequest, EdgeServer};

const CLIENT_SIDE_ID: &str = "bench-client-side-id";
/// Requests per measured row, one after another on one connection.
const REQUESTS: usize = 300;
/// Connections of the flood.
const FLOOD: usize = 16;

/// 100 ordinary client-side flags and `tests/data/pathological.json` (six
/// client-side flags with `matches` rules, a segment with one, a multi-kind
/// rule).
fn data() -> Result<Value> {
    let mut data = dataset(100, 1000);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let hostile: Value = serde_json::from_str(&std::fs::read_to_string(
        root.join("tests/data/pathological.json"),
    )?)?;
    for kind in ["flags", "segments"] {
        let items = data[kind].as_object_mut().expect("an object");
        for item in items.values_mut() {
            item["clientSideAvailability"] =
                json!({"usingEnvironmentId": true, "usingMobileKey": false});
        }
        items.extend(hostile[kind].as_object().expect("an object").clone());
    }
    Ok(data)
}

/// `n` values, the last one `last`.
fn list(n: usize, last: &str) -> Value {
    let mut values = vec![json!("a"); n - 1];
    values.push(json!(last));
    Value::Array(values)
}

/// The contexts, by name: the normal one first.
fn contexts() -> Vec<(&'static str, Value)> {
    let attributes: serde_json::Map<String, Value> = (0..255)
        .map(|i| (format!("a{i}"), json!(format!("{i}@example.com"))))
        .chain([("key".to_string(), json!("x"))])
        .collect();
    let mut multi: serde_json::Map<String, Value> = (0..15)
        .map(|i| {
            (
                format!("k{i}"),
                json!({"key": "x", "email": "a@example.com"}),
            )
        })
        .collect();
    multi.insert("kind".into(), json!("multi"));
    multi.insert("user".into(), json!({"key": "u", "email": "a@example.com"}));
    vec![
        (
            "normal",
            json!({"kind": "user", "key": "x", "email": "ann@example.com"}),
        ),
        (
            "the review's body: 16,369 values in `email`",
            json!({"kind": "user", "key": "x", "email": list(16_369, "a")}),
        ),
        (
            "64 values in `email` (six `matches` rules)",
            json!({"kind": "user", "key": "x", "email": list(64, "ann@example.com")}),
        ),
        (
            "64 values in `groups` (a segment's `matches` rule)",
            json!({"kind": "user", "key": "x", "groups": list(64, "admin-ops")}),
        ),
        ("255 attributes", Value::Object(attributes)),
        (
            "a 4,096-byte `email`",
            json!({"kind": "user", "key": "x", "email": "b".repeat(4096)}),
        ),
        ("16 kinds", Value::Object(multi)),
    ]
}

fn report_request(context: &Value) -> EdgeRequest {
    EdgeRequest {
        method: http::Method::from_bytes(b"REPORT").expect("a method name"),
        path: format!("/sdk/evalx/{CLIENT_SIDE_ID}/context"),
        headers: vec![("content-type", "application/json".to_string())],
        body: bytes::Bytes::from(context.to_string()),
    }
}

/// The report section.
pub async fn report(wasmtime: &Path, dynalite: &str) -> Result<String> {
    let runtime = Runtime::load_or_embedded(None)?;
    let component =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/component/edge-flags.wasm");
    let table = format!("hostile-{}", std::process::id());
    loaded_table(&runtime, dynalite, &table, &data()?).await?;
    let settings = [format!("client-side-id={CLIENT_SIDE_ID}")];
    let server = EdgeServer::start(wasmtime, &component, dynalite, &table, &settings)?;
    let mut text = format!(
        "## Hostile contexts at the edge (`REPORT /sdk/evalx/{{id}}/context`)\n\n\
         The composed edge flag server under `wasmtime serve` (the options of \
         `scripts/edge-serve-flags.sh`, answering from its snapshot), reading this dynalite: 100 \
         ordinary client-side flags and `tests/data/pathological.json` (six client-side flags \
         whose rules test `email matches ^[a-z0-9._%+-]+@example\\.com$`, a segment with a \
         `matches` rule on `groups`, a multi-kind rule). Each row: {REQUESTS} REPORTs of that \
         context one after another on one keep-alive connection; the cost is the p50 against \
         the normal context's. Contexts over a limit of `context_limits.rs` are refused (400), \
         bodies over 16 KiB too (413).\n\n\
         | context | body | answer | p50 | p99 | × normal |\n|---|---|---|---|---|---|\n"
    );
    let mut normal = None;
    let mut costliest = (0.0, report_request(&contexts()[0].1));
    for (name, context) in contexts() {
        let request = report_request(&context);
        // Warm-up: the first answer reads the table.
        let (status, _, _) = edge_get(&server.addr, &request).await?;
        let load = edge_load(&server.addr, &request, status, REQUESTS, 1).await?;
        let base = *normal.get_or_insert(load.p50);
        let ratio = load.p50 / base;
        if status == 200 && ratio > costliest.0 {
            costliest = (ratio, request.clone());
        }
        text += &format!(
            "| {name} | {} bytes | {status} | {:.2} ms | {:.2} ms | {ratio:.2} |\n",
            request.body.len(),
            load.p50 * 1e3,
            load.p99 * 1e3,
        );
        println!("hostile {name}: {status}, {ratio:.2}x normal");
    }

    // `GET /sdk/latest-all` alone, then beside a flood of normal contexts
    // (the baseline: any load slows it on 2 cores), then of the costliest
    // accepted one.
    let latest_all = EdgeRequest::latest_all(None);
    let idle = edge_load(&server.addr, &latest_all, 200, REQUESTS, 1).await?;
    text += &format!(
        "\n`GET /sdk/latest-all` ({} bytes) alone: p50 {:.2} ms, p99 {:.2} ms. Beside {FLOOD} \
         connections sending REPORTs:\n\n\
         | flood | flood answers/s | latest-all p50 | p99 | × idle p50 |\n|---|---|---|---|---|\n",
        idle.body_bytes,
        idle.p50 * 1e3,
        idle.p99 * 1e3,
    );
    let mut slowdown = 0.0;
    for (name, flood_request) in [
        ("normal context", report_request(&contexts()[0].1)),
        ("costliest accepted context", costliest.1),
    ] {
        let addr = server.addr.clone();
        let flood = tokio::spawn(async move {
            edge_run(
                &addr,
                &flood_request,
                Until::Elapsed(Duration::from_secs(8)),
                FLOOD,
            )
            .await
        });
        tokio::time::sleep(Duration::from_millis(500)).await;
        let flooded = edge_load(&server.addr, &latest_all, 200, REQUESTS, 1).await?;
        let flood = flood.await??;
        ensure!(
            flood.statuses.keys().all(|s| *s == 200),
            "the flood was answered {:?}",
            flood.statuses
        );
        slowdown = flooded.p50 / idle.p50;
        text += &format!(
            "| {name} | {:.0} | {:.2} ms | {:.2} ms | {slowdown:.2} |\n",
            flood.per_second,
            flooded.p50 * 1e3,
            flooded.p99 * 1e3,
        );
    }
    println!("hostile flood: latest-all p50 {slowdown:.2}x idle");
    Ok(text)
}
