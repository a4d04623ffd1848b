//! The edge app's own analytics events: evalx REPORT answers (100 flags, a
//! new context each request, so every answer queues an index event) with
//! `events=false` and with `events=true`, the events service 50 ms away (the
//! project's events receiver, `tests/support/events_receiver.py`, behind
//! this benchmark's delay proxy). The app sends after it has answered.

use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use ld_dynamodb_host::embed::Runtime;

use super::{
    dataset, edge_connection, edge_send, loaded_table, DelayProxy, EdgeRequest, EdgeServer,
};

const CLIENT_SIDE_ID: &str = "bench-events-id";
const CONNECTIONS: usize = 8;
const REQUESTS: usize = 800;
/// How far the events service is.
const DELAY_MS: u64 = 50;

/// The events receiver, killed on drop.
struct Receiver(std::process::Child, String);

impl Receiver {
    fn start() -> Result<Receiver> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let python = std::env::var("LD_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
        let mut child = Command::new(python)
            .arg(root.join("tests/support/events_receiver.py"))
            .stdout(Stdio::piped())
            .spawn()
            .context("start the events receiver")?;
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line)?;
        let Some(port) = line.trim().strip_prefix("port ") else {
            bail!("the events receiver did not start: {line:?}");
        };
        Ok(Receiver(child, format!("http://127.0.0.1:{port}")))
    }

    /// How many payloads it was posted.
    fn payloads(&self) -> Result<usize> {
        use std::io::{Read, Write};
        let addr = self.1.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(addr)?;
        write!(
            stream,
            "GET /_requests HTTP/1.1\r\nhost: r\r\nconnection: close\r\n\r\n"
        )?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw)?;
        let at = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .context("the receiver's answer has no body")?;
        let requests: Value = serde_json::from_slice(&raw[at + 4..])?;
        Ok(requests.as_array().map_or(0, Vec::len))
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One measured run: answers per second, p50 and p99 in seconds.
struct Run {
    per_second: f64,
    p50: f64,
    p99: f64,
}

/// REPORT answers, each for a context not seen before, over keep-alive
/// connections (each sends its next request once it has the last answer).
async fn run(addr: &str, label: &str) -> Result<Run> {
    let started = Instant::now();
    let mut workers = Vec::new();
    for worker in 0..CONNECTIONS {
        let addr = addr.to_string();
        let label = label.to_string();
        workers.push(tokio::spawn(async move {
            let mut sender = edge_connection(&addr).await?;
            let mut latencies = Vec::new();
            for i in 0..REQUESTS / CONNECTIONS {
                let context = json!({"kind": "user", "key": format!("{label}-{worker}-{i}"),
                                     "email": "a@example.com", "country": "fr"});
                let request = EdgeRequest {
                    method: http::Method::from_bytes(b"REPORT")?,
                    path: format!("/sdk/evalx/{CLIENT_SIDE_ID}/context"),
                    headers: vec![("content-type", "application/json".to_string())],
                    body: bytes::Bytes::from(context.to_string()),
                };
                let t = Instant::now();
                let (status, _, _) = edge_send(&mut sender, &addr, &request).await?;
                latencies.push(t.elapsed().as_secs_f64());
                if status != 200 {
                    bail!("evalx answered {status}");
                }
            }
            Ok::<_, anyhow::Error>(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.append(&mut worker.await??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    Ok(Run {
        per_second: latencies.len() as f64 / elapsed,
        p50: at(0.5),
        p99: at(0.99),
    })
}

/// The report section.
pub async fn report(wasmtime: &Path, dynalite: &str) -> Result<String> {
    let runtime = Runtime::load_or_embedded(None)?;
    let component =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/component/edge-flags.wasm");
    let mut data = dataset(100, 1000);
    for flag in data["flags"]
        .as_object_mut()
        .into_iter()
        .flat_map(|f| f.values_mut())
    {
        flag["clientSideAvailability"] = json!({"usingEnvironmentId": true});
    }
    let table = format!("events-bench-{}", std::process::id());
    loaded_table(&runtime, dynalite, &table, &data).await?;
    // The app's own events need the SDK key; wasmtime passes it on by name.
    std::env::set_var("LD_SDK_KEY", "sdk-bench-events");
    let mut text = format!(
        "## Analytics events at the edge\n\n\
         evalx REPORT answers of the edge flag server (100 flags, {REQUESTS} answers over \
         {CONNECTIONS} keep-alive connections, the options of `scripts/edge-serve-flags.sh`), \
         every request for a context not seen before, so that with events on every answer \
         queues an index event, sent to an events service {DELAY_MS} ms away \
         (`tests/support/events_receiver.py` behind the delay proxy) after an answer: by an \
         instance at most once every 5 s with the default `events-flush-interval-ms`, after \
         every answer with 0 (a flush holds its instance until the service answers). \
         Three runs of each, alternating; the median run by answers per second.\n\n\
         | setting | answers/s | p50 | p99 | payloads posted |\n|---|---|---|---|---|\n"
    );
    // Off; on with the default interval (an instance sends at most one
    // payload every 5 s); on and sending after every answer.
    let mut rows: Vec<(&str, Vec<Run>, usize)> = vec![
        ("events=false", Vec::new(), 0),
        ("events=true", Vec::new(), 0),
        ("events-flush-interval-ms=0", Vec::new(), 0),
    ];
    for round in 0..3 {
        for (setting, runs, posted) in rows.iter_mut() {
            // A receiver of its own: only this server's payloads are counted.
            let receiver = Receiver::start()?;
            let proxy = DelayProxy::start(&receiver.1, DELAY_MS)?;
            let settings = [
                format!("client-side-id={CLIENT_SIDE_ID}"),
                setting.to_string(),
                format!("events-uri={}", proxy.endpoint),
            ];
            let server = EdgeServer::start(wasmtime, &component, dynalite, &table, &settings)?;
            // Warm-up: the instances read the table.
            run(&server.addr, &format!("warm-{setting}-{round}")).await?;
            runs.push(run(&server.addr, &format!("run-{setting}-{round}")).await?);
            drop(server);
            // Payloads still on their way through the proxy arrive: counted
            // once the count holds for a second.
            let mut count = receiver.payloads()?;
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                let now = receiver.payloads()?;
                if now == count {
                    break;
                }
                count = now;
            }
            *posted += count;
        }
    }
    let mut p50s = Vec::new();
    for (setting, runs, posted) in rows.iter_mut() {
        runs.sort_by(|a, b| a.per_second.total_cmp(&b.per_second));
        let median = &runs[1];
        p50s.push(median.p50);
        text += &format!(
            "| `{setting}` | {:.0} | {:.2} ms | {:.2} ms | {} for {} answers |\n",
            median.per_second,
            median.p50 * 1e3,
            median.p99 * 1e3,
            *posted,
            3 * 2 * REQUESTS,
        );
        println!(
            "{setting}: {:.0} answers/s, p50 {:.2} ms",
            median.per_second,
            median.p50 * 1e3
        );
    }
    text += &format!(
        "\np50 ÷ events off: {:.2} with the default interval, {:.2} sending after every answer.\n",
        p50s[1] / p50s[0],
        p50s[2] / p50s[0]
    );
    Ok(text)
}
