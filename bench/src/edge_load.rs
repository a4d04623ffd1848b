//! The edge flag server under load: bursts of 16 to 1,024 concurrent
//! connections, one request each, on `GET /sdk/latest-all`, served as the
//! README serves it.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;

use ld_dynamodb_host::embed::Runtime;

use super::{dataset, edge_connection, edge_send, loaded_table, EdgeRequest, EdgeServer};

/// Concurrent connections and requests of each burst.
const BURSTS: [(usize, usize); 4] = [(16, 1_000), (64, 2_000), (256, 2_000), (1_024, 5_000)];

/// One burst's answers.
struct Burst {
    statuses: BTreeMap<String, usize>,
    per_second: f64,
    p50: f64,
    p99: f64,
}

/// `requests` GETs from `concurrency` workers, each on a new connection.
async fn burst(addr: &str, concurrency: usize, requests: usize) -> Burst {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (addr, next) = (addr.to_string(), next.clone());
            let request = EdgeRequest::latest_all(None);
            tokio::spawn(async move {
                let mut seen = Vec::new();
                while next.fetch_add(1, Ordering::Relaxed) < requests {
                    let t = Instant::now();
                    let status = match edge_connection(&addr).await {
                        Ok(mut sender) => match edge_send(&mut sender, &addr, &request).await {
                            Ok((status, _, _)) => status.to_string(),
                            Err(_) => "connection error".to_string(),
                        },
                        Err(_) => "connection refused".to_string(),
                    };
                    seen.push((status, t.elapsed().as_secs_f64()));
                }
                seen
            })
        })
        .collect();
    let mut statuses = BTreeMap::new();
    let mut latencies = Vec::with_capacity(requests);
    for worker in workers {
        for (status, latency) in worker.await.unwrap_or_default() {
            *statuses.entry(status).or_insert(0) += 1;
            latencies.push(latency);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    Burst {
        statuses,
        per_second: requests as f64 / elapsed,
        p50: at(0.5),
        p99: at(0.99),
    }
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
/// over those at 64.
pub async fn report(wasmtime: &Path, dynalite: &str) -> Result<(String, f64)> {
    let runtime = Runtime::load_or_embedded(None)?;
    let table = format!("edge-load-{}", std::process::id());
    loaded_table(&runtime, dynalite, &table, &dataset(100, 1000)).await?;
    let component =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/component/edge-flags.wasm");
    let server = EdgeServer::start(wasmtime, &component, dynalite, &table, &[])?;
    let mut text = String::from(
        "## The edge flag server under load\n\n\
         `GET /sdk/latest-all` of 100 flags, one connection per request, from this process, under \
         `wasmtime serve` with the options of `scripts/edge-serve-flags.sh`, reading this \
         dynalite. Peak memory is wasmtime's resident set (VmHWM) after each burst. Accept-queue \
         overflows are the machine's `ListenOverflows` during the burst: connections the kernel \
         dropped because `wasmtime serve` had not accepted the earlier ones yet; the client's SYN \
         is retried after 1, 3, 7 and 15 s, which is what a p99 of seconds is made of.\n\n\
         | concurrent | requests | answers | requests/s | p50 | p99 | p99 ÷ p50 | accept-queue overflows | wasmtime peak memory |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    let mut per_second = BTreeMap::new();
    for (concurrency, requests) in BURSTS {
        let overflows = listen_overflows()?;
        let b = burst(&server.addr, concurrency, requests).await;
        per_second.insert(concurrency, b.per_second);
        let overflows = listen_overflows()? - overflows;
        let answers: Vec<String> = b
            .statuses
            .iter()
            .map(|(s, n)| format!("{n} × {s}"))
            .collect();
        text.push_str(&format!(
            "| {concurrency} | {requests} | {} | {:.0} | {:.0} ms | {:.0} ms | {:.1} | {overflows} | {:.0} MiB |\n",
            answers.join(", "),
            b.per_second,
            b.p50 * 1e3,
            b.p99 * 1e3,
            b.p99 / b.p50,
            peak_memory_mib(server.child.id())?
        ));
    }
    let ratio = per_second[&1_024] / per_second[&64];
    text.push_str(&format!(
        "\nRequests per second at 1,024 connections ÷ those at 64: {ratio:.2}.\n"
    ));
    Ok((text, ratio))
}
