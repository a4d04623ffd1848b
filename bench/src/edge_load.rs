//! The edge flag server under load: 16 to 1,024 concurrent connections, one
//! request each, on `GET /sdk/latest-all`, served as docs/edge.md serves it.
//! Each level runs for a fixed window; its throughput is the answers that
//! completed within the window, divided by the window, so that one connection
//! still waiting out a SYN retry at the end (1, 3, 7 s) does not stretch the
//! denominator of all the others.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;

use ld_dynamodb_host::embed::Runtime;

use super::measure::{own_cpu, process_cpu};
use super::{dataset, edge_connection, edge_send, loaded_table, EdgeRequest, EdgeServer};

/// Concurrent connections of each level.
const LEVELS: [usize; 4] = [16, 64, 256, 1_024];
/// The pause between two levels, for the last level's connections to close.
const PAUSE: Duration = Duration::from_secs(1);

/// One level's answers.
struct Burst {
    statuses: BTreeMap<String, usize>,
    per_second: f64,
    p50: f64,
    p99: f64,
    /// Requests sent but not answered when the window closed.
    unfinished: usize,
    /// CPU seconds of this process (the load generator) and of wasmtime
    /// during the window, each ÷ the window: cores busy.
    client_cores: f64,
    server_cores: f64,
}

/// `concurrency` workers, each sending GETs one after another on a new
/// connection each, for `window`; what was answered within it.
async fn burst(addr: &str, concurrency: usize, window: Duration, server: u32) -> Result<Burst> {
    let answered = Arc::new(Mutex::new(Vec::new()));
    let (client, wasmtime) = (own_cpu()?, process_cpu(server)?);
    let started = Instant::now();
    let deadline = started + window;
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (addr, answered) = (addr.to_string(), answered.clone());
            let request = EdgeRequest::latest_all(None);
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let status = match edge_connection(&addr).await {
                        Ok(mut sender) => match edge_send(&mut sender, &addr, &request).await {
                            Ok((status, _, _)) => status.to_string(),
                            Err(_) => "connection error".to_string(),
                        },
                        Err(_) => "connection refused".to_string(),
                    };
                    if Instant::now() <= deadline {
                        let latency = t.elapsed().as_secs_f64();
                        answered
                            .lock()
                            .expect("not poisoned")
                            .push((status, latency));
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep_until(deadline.into()).await;
    let (client, wasmtime) = (own_cpu()? - client, process_cpu(server)? - wasmtime);
    let elapsed = started.elapsed().as_secs_f64();
    // A worker still running has a request out (or is about to stop).
    let unfinished = workers.iter().filter(|w| !w.is_finished()).count();
    for worker in &workers {
        worker.abort();
    }
    let answered = std::mem::take(&mut *answered.lock().expect("not poisoned"));
    anyhow::ensure!(
        !answered.is_empty(),
        "no answers at {concurrency} connections"
    );
    let mut statuses = BTreeMap::new();
    let mut latencies = Vec::with_capacity(answered.len());
    for (status, latency) in answered {
        *statuses.entry(status).or_insert(0) += 1;
        latencies.push(latency);
    }
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    Ok(Burst {
        statuses,
        per_second: latencies.len() as f64 / window.as_secs_f64(),
        p50: at(0.5),
        p99: at(0.99),
        unfinished,
        client_cores: client / elapsed,
        server_cores: wasmtime / elapsed,
    })
}

/// The peak resident memory of a process, from /proc (VmHWM), in MiB.
pub(crate) fn peak_memory_mib(pid: u32) -> Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmHWM for process {pid}"))?;
    Ok(kib / 1024.0)
}

/// The machine's count of connections dropped from full accept queues
/// (`TcpExt ListenOverflows` of /proc/net/netstat).
fn listen_overflows() -> Result<u64> {
    let text = std::fs::read_to_string("/proc/net/netstat")?;
    let rows: Vec<&str> = text.lines().filter(|l| l.starts_with("TcpExt:")).collect();
    let (names, values) = match rows.as_slice() {
        [names, values] => (names, values),
        _ => anyhow::bail!("/proc/net/netstat has no TcpExt rows"),
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(name, _)| *name == "ListenOverflows")
        .and_then(|(_, value)| value.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no ListenOverflows in /proc/net/netstat"))
}

/// The report section, and the requests per second at 1,024 connections
/// over those at 64, each level running for `window`.
pub async fn report(wasmtime: &Path, dynalite: &str, window: Duration) -> Result<(String, f64)> {
    let runtime = Runtime::load_or_embedded(None)?;
    let table = format!("edge-load-{}", std::process::id());
    loaded_table(&runtime, dynalite, &table, &dataset(100, 1000)).await?;
    let component =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/component/edge-flags.wasm");
    let server = EdgeServer::start(wasmtime, &component, dynalite, &table, &[])?;
    let mut text = format!(
        "## The edge flag server under load\n\n\
         `GET /sdk/latest-all` of 100 flags, one connection per request, from this process (one \
         thread), under `wasmtime serve` with the options of `scripts/edge-serve-flags.sh`, \
         reading this dynalite. Each level runs for {:.0} s, one level after the other on the same \
         server; requests/s counts the answers that completed within the window, and p50 and \
         p99 are theirs; requests still unanswered when the window closed are counted apart. \
         Accept-queue overflows are the machine's `ListenOverflows` during the window: \
         connections the kernel dropped because `wasmtime serve` (listen backlog 100, fixed in \
         wasmtime 49) had not accepted the earlier ones yet; the client's SYN is retried after \
         1, 3, 7 and 15 s, which is what a p99 of seconds is made of. Cores busy: CPU seconds of \
         the load generator and of wasmtime during the window ÷ the window (the machine has {}). \
         Peak memory is wasmtime's resident set (VmHWM) after each level.\n\n\
         | concurrent | answers | requests/s | p50 | p99 | p99 ÷ p50 | unanswered at the close | accept-queue overflows | cores busy: load generator / wasmtime | wasmtime peak memory |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
        window.as_secs_f64(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let mut per_second = BTreeMap::new();
    for concurrency in LEVELS {
        let overflows = listen_overflows()?;
        let b = burst(&server.addr, concurrency, window, server.child.id()).await?;
        let overflows = listen_overflows()? - overflows;
        per_second.insert(concurrency, b.per_second);
        let answers: Vec<String> = b
            .statuses
            .iter()
            .map(|(s, n)| format!("{n} × {s}"))
            .collect();
        text.push_str(&format!(
            "| {concurrency} | {} | {:.0} | {:.0} ms | {:.0} ms | {:.1} | {} | {overflows} | {:.2} / {:.2} | {:.0} MiB |\n",
            answers.join(", "),
            b.per_second,
            b.p50 * 1e3,
            b.p99 * 1e3,
            b.p99 / b.p50,
            b.unfinished,
            b.client_cores,
            b.server_cores,
            peak_memory_mib(server.child.id())?
        ));
        eprintln!(
            "edge-load {concurrency} connections: {:.0} requests/s",
            b.per_second
        );
        tokio::time::sleep(PAUSE).await;
    }
    let ratio = per_second[&1_024] / per_second[&64];
    text.push_str(&format!(
        "\nRequests per second at 1,024 connections ÷ those at 64: {ratio:.2}.\n"
    ));
    Ok((text, ratio))
}
