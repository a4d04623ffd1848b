//! The edge flag server's snapshot (issue 26): answers from the table as the
//! instance last read it, with `wasmtime serve` reusing instances (the options
//! of `scripts/edge-serve-flags.sh`), beside the same options without
//! `--max-instance-reuse-count` (a new instance, and so a whole-table read,
//! per answer). DynamoDB is dynalite behind the delay proxy (5 ms per round
//! trip) and a counting proxy of the tests' crate that asks DynamoDB for its
//! `ConsumedCapacity` on every read, and can answer 500 for an outage.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{json, Value};

use ld_dynamodb_host::embed::Runtime;
use ld_dynamodb_tests::base64url;
use ld_dynamodb_tests::proxy::{Action, Proxy, Request};

use super::client_side::CONTEXT;
use super::delay_proxy::DelayProxy;
use super::edge::{edge_run, EdgeLoad, Until};
use super::edge_load::peak_memory_mib;
use super::{dataset, edge_get, loaded_table, EdgeRequest, EdgeServer};

/// Keep-alive clients of every run.
const CONNECTIONS: usize = 16;
/// Added to every DynamoDB round trip by the delay proxy.
const DELAY_MS: u64 = 5;
/// Bytes of JSON per flag.
const FLAG_BYTES: usize = 1200;
/// Load before an outage: the instances the clients use hold a snapshot,
/// which passes the app's refresh interval (15 s) during a 10 s outage.
const BEFORE_OUTAGE: Duration = Duration::from_secs(10);
/// What the counting proxy answers during an outage.
const OUTAGE_ANSWER: &str = r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"The benchmark's outage"}"#;

/// What the counting proxy has seen.
#[derive(Default)]
struct Counts {
    requests: AtomicUsize,
    /// Reads (Query, GetItem, Scan, BatchGetItem) and those of them consistent.
    reads: AtomicUsize,
    consistent: AtomicUsize,
    /// Queries of the `$inited` marker: one per snapshot read.
    snapshots: AtomicUsize,
    /// `ConsumedCapacity.CapacityUnits` summed, in thousandths.
    milli_units: AtomicU64,
    /// While set, every request is answered 500 without reaching DynamoDB.
    outage: AtomicBool,
}

/// The counts at one moment, or between two.
#[derive(Clone, Copy)]
struct Tally {
    requests: usize,
    reads: usize,
    consistent: usize,
    snapshots: usize,
    units: f64,
}

impl Counts {
    fn tally(&self) -> Tally {
        Tally {
            requests: self.requests.load(Ordering::SeqCst),
            reads: self.reads.load(Ordering::SeqCst),
            consistent: self.consistent.load(Ordering::SeqCst),
            snapshots: self.snapshots.load(Ordering::SeqCst),
            units: self.milli_units.load(Ordering::SeqCst) as f64 / 1000.0,
        }
    }
}

impl Tally {
    fn since(self, before: Tally) -> Tally {
        Tally {
            requests: self.requests - before.requests,
            reads: self.reads - before.reads,
            consistent: self.consistent - before.consistent,
            snapshots: self.snapshots - before.snapshots,
            units: self.units - before.units,
        }
    }
}

/// `ConsumedCapacity.CapacityUnits` of a DynamoDB answer (0 without one).
/// dynalite writes it after the items, so the end of the answer is searched
/// first.
fn capacity_units(answer: &[u8]) -> f64 {
    const KEY: &[u8] = b"\"ConsumedCapacity\"";
    let tail = &answer[answer.len().saturating_sub(4096)..];
    let (from, at) = match tail.windows(KEY.len()).rposition(|w| w == KEY) {
        Some(at) => (tail, at),
        None => match answer.windows(KEY.len()).rposition(|w| w == KEY) {
            Some(at) => (answer, at),
            None => return 0.0,
        },
    };
    let rest = &from[at + KEY.len()..];
    let Some(colon) = rest.iter().position(|b| *b == b':') else {
        return 0.0;
    };
    serde_json::Deserializer::from_slice(&rest[colon + 1..])
        .into_iter::<Value>()
        .next()
        .and_then(|v| v.ok())
        .and_then(|v| v["CapacityUnits"].as_f64())
        .unwrap_or(0.0)
}

/// What the counting proxy does with one request: counts it; in an outage
/// answers 500 after the round trip's delay; asks DynamoDB for the read's
/// `ConsumedCapacity` and adds it up.
fn script(counts: Arc<Counts>) -> impl FnMut(&Request) -> Action + Send + 'static {
    move |request: &Request| {
        counts.requests.fetch_add(1, Ordering::SeqCst);
        if counts.outage.load(Ordering::SeqCst) {
            return Action::Delayed(
                Duration::from_millis(DELAY_MS),
                Box::new(Action::Respond(500, OUTAGE_ANSWER.to_string())),
            );
        }
        if !matches!(
            request.op.as_str(),
            "Query" | "GetItem" | "Scan" | "BatchGetItem"
        ) {
            return Action::Forward;
        }
        let Ok(mut body) = serde_json::from_slice::<Value>(&request.body) else {
            return Action::Forward;
        };
        counts.reads.fetch_add(1, Ordering::SeqCst);
        if body["ConsistentRead"] == json!(true) {
            counts.consistent.fetch_add(1, Ordering::SeqCst);
        }
        // The marker's namespace, `$inited`, as the Query's key condition.
        let marker = request.body.windows(9).any(|w| w == b"\"$inited\"");
        if request.op == "Query" && marker {
            counts.snapshots.fetch_add(1, Ordering::SeqCst);
        }
        body["ReturnConsumedCapacity"] = json!("TOTAL");
        let counts = counts.clone();
        Action::Rewrite(
            body.to_string().into_bytes(),
            Box::new(move |answer| {
                let milli = (capacity_units(&answer) * 1000.0).round() as u64;
                counts.milli_units.fetch_add(milli, Ordering::SeqCst);
                answer
            }),
        )
    }
}

/// Starts the counting proxy in front of `upstream` on a thread of its own
/// (its runtime lives as long as this process); its endpoint.
fn counting_proxy(upstream: &str, counts: Arc<Counts>) -> Result<String> {
    let upstream = upstream.to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for the counting proxy");
        runtime.block_on(async move {
            let proxy = Proxy::start(&upstream, script(counts)).await;
            let _ = tx.send(proxy.endpoint.clone());
            std::future::pending::<()>().await
        })
    });
    rx.recv_timeout(Duration::from_secs(10))
        .context("the counting proxy did not start")
}

/// One measured run.
struct Row {
    load: EdgeLoad,
    dynamodb: Tally,
    peak_mib: f64,
}

impl Row {
    fn per_100(&self, what: f64) -> f64 {
        100.0 * what / self.load.answers().max(1) as f64
    }

    fn ok_share(&self) -> f64 {
        self.load.statuses.get(&200).copied().unwrap_or(0) as f64
            / self.load.answers().max(1) as f64
    }
}

fn statuses(load: &EdgeLoad) -> String {
    load.statuses
        .iter()
        .map(|(s, n)| format!("{n} × {s}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn reuse_label(reuse: bool) -> &'static str {
    if reuse {
        "with reuse"
    } else {
        "without"
    }
}

/// The measurements, for one table.
struct Bench<'a> {
    wasmtime: &'a Path,
    component: &'a Path,
    endpoint: &'a str,
    counts: &'a Counts,
}

impl Bench<'_> {
    /// A server on `table`; one answer of `request` (checked to be 200).
    async fn serve(&self, table: &str, request: &EdgeRequest, reuse: bool) -> Result<EdgeServer> {
        let server = EdgeServer::start_with(
            self.wasmtime,
            self.component,
            self.endpoint,
            table,
            &[],
            reuse,
        )?;
        let (status, _, _) = edge_get(&server.addr, request).await?;
        anyhow::ensure!(status == 200, "{} answered {status}", request.path);
        Ok(server)
    }

    /// `request` from the clients for `time`, on a new server.
    async fn run(
        &self,
        table: &str,
        request: &EdgeRequest,
        reuse: bool,
        time: Duration,
    ) -> Result<Row> {
        let server = self.serve(table, request, reuse).await?;
        let before = self.counts.tally();
        let load = edge_run(&server.addr, request, Until::Elapsed(time), CONNECTIONS).await?;
        let dynamodb = self.counts.tally().since(before);
        Ok(Row {
            load,
            dynamodb,
            peak_mib: peak_memory_mib(server.child.id())?,
        })
    }

    /// `request` from the clients for [`BEFORE_OUTAGE`], then for `outage`
    /// with every DynamoDB request answered 500, on a new server.
    async fn outage(
        &self,
        table: &str,
        request: &EdgeRequest,
        reuse: bool,
        outage: Duration,
    ) -> Result<Row> {
        let server = self.serve(table, request, reuse).await?;
        edge_run(
            &server.addr,
            request,
            Until::Elapsed(BEFORE_OUTAGE),
            CONNECTIONS,
        )
        .await?;
        let before = self.counts.tally();
        self.counts.outage.store(true, Ordering::SeqCst);
        let load = edge_run(&server.addr, request, Until::Elapsed(outage), CONNECTIONS).await;
        self.counts.outage.store(false, Ordering::SeqCst);
        let dynamodb = self.counts.tally().since(before);
        Ok(Row {
            load: load?,
            dynamodb,
            peak_mib: peak_memory_mib(server.child.id())?,
        })
    }
}

/// The report section, and the edge-load section run again (with the ratio
/// of requests per second at 1,024 connections to those at 64).
pub async fn report(
    wasmtime: &Path,
    dynalite: &str,
    time: Duration,
    outage: Duration,
    load_window: Duration,
) -> Result<(String, String)> {
    let runtime = Runtime::load_or_embedded(None)?;
    let component =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/component/edge-flags.wasm");
    let delay = DelayProxy::start(dynalite, DELAY_MS)?;
    let counts = Arc::new(Counts::default());
    let endpoint = counting_proxy(&delay.endpoint, counts.clone())?;
    let bench = Bench {
        wasmtime,
        component: &component,
        endpoint: &endpoint,
        counts: &counts,
    };
    let routes = [
        ("`/sdk/latest-all`", EdgeRequest::latest_all(None)),
        (
            "`/sdk/evalx/contexts/{ctx}`",
            EdgeRequest {
                method: http::Method::GET,
                path: format!("/sdk/evalx/contexts/{}", base64url(CONTEXT.as_bytes())),
                headers: Vec::new(),
                body: bytes::Bytes::new(),
            },
        ),
    ];
    let seconds = time.as_secs_f64();
    let mut text = format!(
        "## The edge snapshot: answers from memory (`wasmtime serve` reusing instances)\n\n\
         The edge flag server (`target/component/edge-flags.wasm`) under `wasmtime serve` with the \
         options of `scripts/edge-serve-flags.sh` (instance reuse, the app's default settings: a \
         snapshot of the table per instance, read again every 15 s), beside the same options \
         without `--max-instance-reuse-count` (\"without\": `wasmtime serve`'s default of one \
         request per instance, so every answer opens the store and reads the whole table, as \
         before issue 26). `auth=none`; flags of about {FLAG_BYTES} bytes of JSON; {CONNECTIONS} \
         keep-alive clients of this process for {seconds:.0} s per row, each on a server started \
         for it. DynamoDB is this dynalite behind the benchmark's delay proxy ({DELAY_MS} ms per \
         round trip) and a counting proxy; the counting proxy adds \
         `\"ReturnConsumedCapacity\":\"TOTAL\"` to every read it forwards and sums the \
         `ConsumedCapacity.CapacityUnits` that dynalite answers (the component does not ask for \
         it). A snapshot read is one Query of the `$inited` marker (with those of both kinds). \
         Peak memory is wasmtime's resident set (VmHWM) at the end of the row.\n\n\
         | flags | route | instances | answers | answers/s | p50 | p99 | DynamoDB requests per 100 answers | read units per 100 answers | snapshot reads | read units per snapshot read | consistent reads | wasmtime peak memory |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    );
    let mut ratios = String::from(
        "\nWith reuse ÷ without, same run:\n\n\
         | flags | route | answers/s | p50 | p99 | DynamoDB requests per 100 answers | read units per 100 answers | peak memory |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    let mut outage_table = None;
    for n in [100usize, 1000] {
        let table = format!("edge-snapshot-{n}-{}", std::process::id());
        loaded_table(&runtime, dynalite, &table, &dataset(n, FLAG_BYTES)).await?;
        for (route, request) in &routes {
            let mut rows = Vec::new();
            for reuse in [true, false] {
                let row = bench.run(&table, request, reuse, time).await?;
                let d = &row.dynamodb;
                text += &format!(
                    "| {n} | {route} | {} | {} | {:.0} | {:.1} ms | {:.1} ms | {:.2} | {:.1} | {} | {:.1} | {} of {} | {:.0} MiB |\n",
                    reuse_label(reuse),
                    statuses(&row.load),
                    row.load.per_second,
                    row.load.p50 * 1e3,
                    row.load.p99 * 1e3,
                    row.per_100(d.requests as f64),
                    row.per_100(d.units),
                    d.snapshots,
                    d.units / d.snapshots.max(1) as f64,
                    d.consistent,
                    d.reads,
                    row.peak_mib,
                );
                println!(
                    "edge snapshot {n} flags {route} {}: {:.0} answers/s, {:.2} DynamoDB requests per 100",
                    reuse_label(reuse),
                    row.load.per_second,
                    row.per_100(d.requests as f64)
                );
                rows.push(row);
            }
            let (with, without) = (&rows[0], &rows[1]);
            // Two significant digits at least: 0.09 of 300 is 0.0003×, not 0.00×.
            let ratio = |a: f64, b: f64| {
                let r = a / b;
                if b > 0.0 && r > 0.0 {
                    let digits = (1.0 - r.log10().floor()).clamp(2.0, 6.0) as usize;
                    format!("{r:.digits$}×")
                } else {
                    "–".to_string()
                }
            };
            ratios += &format!(
                "| {n} | {route} | {} | {} | {} | {} | {} | {} |\n",
                ratio(with.load.per_second, without.load.per_second),
                ratio(with.load.p50, without.load.p50),
                ratio(with.load.p99, without.load.p99),
                ratio(
                    with.per_100(with.dynamodb.requests as f64),
                    without.per_100(without.dynamodb.requests as f64)
                ),
                ratio(
                    with.per_100(with.dynamodb.units),
                    without.per_100(without.dynamodb.units)
                ),
                ratio(with.peak_mib, without.peak_mib),
            );
        }
        if n == 1000 {
            // Whether the snapshots read as the clients began pass the app's
            // refresh interval (15 s) before the outage ends.
            let refreshes = if BEFORE_OUTAGE + outage > Duration::from_secs(16) {
                " The snapshots read as the clients began pass the refresh interval (15 s) \
                 during the outage, so each instance tries a read, fails and serves its last \
                 snapshot."
            } else {
                ""
            };
            let mut section = format!(
                "\nAn outage: {n} flags; the clients for {:.0} s, then for {:.0} s with the \
                 counting proxy answering every DynamoDB request 500 (after the {DELAY_MS} ms \
                 round trip) without forwarding it; the answers of those {:.0} s.{refreshes}\n\n\
                 | route | instances | answers | 200 share | answers/s | p99 | DynamoDB requests during the outage | wasmtime peak memory |\n\
                 |---|---|---|---|---|---|---|---|\n",
                BEFORE_OUTAGE.as_secs_f64(),
                outage.as_secs_f64(),
                outage.as_secs_f64(),
            );
            for (route, request) in &routes {
                for reuse in [true, false] {
                    let row = bench.outage(&table, request, reuse, outage).await?;
                    section += &format!(
                        "| {route} | {} | {} | {:.2} % | {:.0} | {:.1} ms | {} | {:.0} MiB |\n",
                        reuse_label(reuse),
                        statuses(&row.load),
                        row.ok_share() * 100.0,
                        row.load.per_second,
                        row.load.p99 * 1e3,
                        row.dynamodb.requests,
                        row.peak_mib,
                    );
                    println!(
                        "edge snapshot outage {route} {}: {:.2} % answered 200",
                        reuse_label(reuse),
                        row.ok_share() * 100.0
                    );
                }
            }
            outage_table = Some(section);
        }
    }
    text += &ratios;
    text += &outage_table.unwrap_or_default();
    drop(delay);
    let (load_text, load_ratio) = super::edge_load::report(wasmtime, dynalite, load_window).await?;
    text += &format!(
        "\nUnder load (the next section, run again in this run with the same serve options): \
         requests per second at 1,024 connections ÷ those at 64: {load_ratio:.2}.\n"
    );
    Ok((text, load_text))
}
