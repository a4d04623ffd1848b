//! Client-side evaluation at the edge: the JS client SDK's evalx requests
//! (`GET /sdk/evalx/{id}/contexts/{context}` and `REPORT .../context`) to the
//! edge flag server under `wasmtime serve`, for 100 and 1,000 flags, and the
//! DynamoDB requests each answer makes, counted at a proxy.

use std::path::Path;

use anyhow::Result;
use serde_json::{json, Value};

use ld_dynamodb_host::embed::Runtime;
use ld_dynamodb_tests::base64url;
use ld_dynamodb_tests::proxy::{Action, Proxy};

use super::{dataset, edge_get, edge_load, loaded_table, EdgeRequest, EdgeServer};

const CLIENT_SIDE_ID: &str = "bench-client-side-id";
const CONNECTIONS: usize = 8;
/// The context of every request: a user with a few attributes.
pub(crate) const CONTEXT: &str =
    r#"{"kind":"user","key":"user-1234","country":"fr","email":"a@example.com"}"#;

/// `dataset(n, 1000)` with every flag available to client-side IDs.
fn client_side_dataset(n: usize) -> Value {
    let mut data = dataset(n, 1000);
    for flag in data["flags"]
        .as_object_mut()
        .into_iter()
        .flat_map(|f| f.values_mut())
    {
        flag["clientSideAvailability"] =
            json!({"usingEnvironmentId": true, "usingMobileKey": false});
    }
    data
}

/// The two requests the JS client SDK sends, as it sends them.
fn requests() -> [(&'static str, EdgeRequest); 2] {
    let origin = ("origin", "https://app.example.com".to_string());
    [
        (
            "GET",
            EdgeRequest {
                method: http::Method::GET,
                path: format!(
                    "/sdk/evalx/{CLIENT_SIDE_ID}/contexts/{}",
                    base64url(CONTEXT.as_bytes())
                ),
                headers: vec![origin.clone()],
                body: bytes::Bytes::new(),
            },
        ),
        (
            "REPORT",
            EdgeRequest {
                method: http::Method::from_bytes(b"REPORT").expect("a method name"),
                path: format!("/sdk/evalx/{CLIENT_SIDE_ID}/context"),
                headers: vec![origin, ("content-type", "application/json".to_string())],
                body: bytes::Bytes::from_static(CONTEXT.as_bytes()),
            },
        ),
    ]
}

/// The report section.
pub async fn report(wasmtime: &Path, dynalite: &str) -> Result<String> {
    let runtime = Runtime::load_or_embedded(None)?;
    let component =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/component/edge-flags.wasm");
    let settings = [format!("client-side-id={CLIENT_SIDE_ID}")];
    let mut text = format!(
        "## Client-side evaluation at the edge (`evalx`)\n\n\
         The JS client SDK's requests to the composed edge flag server under `wasmtime serve` (the \
         options of `scripts/edge-serve-flags.sh`: instances reused, each answering from its \
         snapshot of the table, read once per refresh interval), reading this dynalite: `GET /sdk/evalx/{{id}}/contexts/{{base64url context}}` and `REPORT \
         /sdk/evalx/{{id}}/context` with the context as the body, every flag available to \
         client-side IDs, from {CONNECTIONS} keep-alive connections of this process. Each answer \
         evaluates every flag with LaunchDarkly's evaluation engine inside the flag evaluator. \
         DynamoDB requests per answer are counted at a proxy in front of dynalite, over 20 \
         answers of one connection to a server started for the count (GET first: its first \
         answer reads the table).\n\n\
         | flags | request | requests | requests/s | p50 | p99 | body | DynamoDB requests per answer |\n\
         |---|---|---|---|---|---|---|---|\n"
    );
    for (n, count) in [(100usize, 400usize), (1000, 100)] {
        let table = format!("evalx-{n}-{}", std::process::id());
        loaded_table(&runtime, dynalite, &table, &client_side_dataset(n)).await?;
        let server = EdgeServer::start(wasmtime, &component, dynalite, &table, &settings)?;
        let proxy = Proxy::start(dynalite, |_| Action::Forward).await;
        let counted = EdgeServer::start(wasmtime, &component, &proxy.endpoint, &table, &settings)?;
        for (name, request) in requests() {
            // Warm-up, and a check that the answer holds every flag.
            let (status, _, _) = edge_get(&server.addr, &request).await?;
            anyhow::ensure!(status == 200, "{name} answered {status}");
            let load = edge_load(&server.addr, &request, 200, count, CONNECTIONS).await?;
            let before = proxy.exchanges().len();
            for _ in 0..20 {
                edge_get(&counted.addr, &request).await?;
            }
            let per_answer = (proxy.exchanges().len() - before) as f64 / 20.0;
            text += &format!(
                "| {n} | {name} | {count} | {:.0} | {:.1} ms | {:.1} ms | {} bytes | {per_answer} |\n",
                load.per_second,
                load.p50 * 1e3,
                load.p99 * 1e3,
                load.body_bytes
            );
            println!("evalx {n} flags {name}: {:.0} requests/s", load.per_second);
        }
    }
    text += "\nThe Relay Proxy publishes no requests-per-second figures for its evalx routes (its \
             performance page gives CPU, memory and latency per number of SDK connections on an \
             AWS m4.xlarge): there are no figures to set beside these.\n";
    Ok(text)
}
