//! Init through a partition emulator: a token bucket of a partition's write
//! capacity per partition key, 1 s of burst and 10 ms round trips, in front of
//! dynalite (the tests' `Partitions` proxy). This store beside LaunchDarkly's
//! official Python store on the same emulator.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::{json, Value};

use ld_dynamodb_host::data;
use ld_dynamodb_host::embed::{HostOptions, Runtime, StoreConfig};
use ld_dynamodb_tests::proxy::{Partitions, Proxy};

/// Items of one Init.
const ITEMS: usize = 6_000;
const BURST_SECONDS: f64 = 1.0;
const RTT: Duration = Duration::from_millis(10);

/// One Init's figures.
struct Run {
    wall: f64,
    sent: usize,
    batches: usize,
    throttled: usize,
    stored: usize,
    marker: bool,
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

/// `ITEMS` flags of about 900 bytes (one write unit each).
fn dataset() -> Value {
    let flags: serde_json::Map<String, Value> = (0..ITEMS)
        .map(|i| {
            let key = format!("flag-{i:05}");
            let flag = json!({"key": key, "version": 1, "on": true, "salt": "s",
                "variations": [true, false], "fallthrough": {"variation": 0}, "offVariation": 1,
                "targets": [], "rules": [], "prerequisites": [], "trackEvents": false,
                "description": "x".repeat(700)});
            (key, flag)
        })
        .collect();
    json!({ "flags": flags, "segments": {} })
}

fn config(endpoint: &str, table: &str) -> StoreConfig {
    super::store_config(endpoint, table, None)
}

/// One Init of the component through a fresh emulator at `rate`.
async fn component_run(runtime: &Runtime, dynalite: &str, rate: f64, table: &str) -> Result<Run> {
    let direct = runtime.instance(&HostOptions::default()).await?;
    let mut direct = direct.open(&config(dynalite, table)).await?;
    direct.create_table().await?;
    let partitions = Partitions::with_rtt(rate, BURST_SECONDS, RTT);
    let proxy = Proxy::start(dynalite, partitions.script()).await;
    let instance = runtime.instance(&HostOptions::default()).await?;
    let mut store = instance.open(&config(&proxy.endpoint, table)).await?;
    let collections = data::all_data(&dataset().to_string())?;
    let started = Instant::now();
    store.init(&collections).await?;
    let wall = started.elapsed().as_secs_f64();
    let stored = direct.get_all("features").await?.len();
    let marker = direct.is_initialized().await?;
    Ok(Run {
        wall,
        sent: partitions.items_received.load(Ordering::SeqCst),
        batches: partitions.batches.load(Ordering::SeqCst),
        throttled: partitions.throttled.load(Ordering::SeqCst),
        stored,
        marker,
    })
}

/// Runs of LaunchDarkly's Python store, each through a fresh emulator at
/// `rate` (as each of the component's runs): its buckets are keyed by
/// partition key, so a shared one would start a run with the last run's
/// burst spent.
async fn python_runs(
    python: &Path,
    dynalite: &str,
    rate: f64,
    runs: usize,
    server_pid: u32,
) -> Result<Vec<Run>> {
    let file = std::env::temp_dir().join(format!("ld-pacing-{}.json", std::process::id()));
    std::fs::write(&file, dataset().to_string())?;
    let mut out = Vec::new();
    for _ in 0..runs {
        let partitions = Partitions::with_rtt(rate, BURST_SECONDS, RTT);
        let proxy = Proxy::start(dynalite, partitions.script()).await;
        let spec = json!({"endpoint": proxy.endpoint, "region": super::REGION, "access_key_id": "AKIDBENCH",
            "secret_access_key": "bench-secret", "op": "init", "runs": 1, "data_file": file,
            "report": true, "server_pid": server_pid, "admin_endpoint": dynalite});
        let before = (
            partitions.items_received.load(Ordering::SeqCst),
            partitions.batches.load(Ordering::SeqCst),
            partitions.throttled.load(Ordering::SeqCst),
        );
        let mut command = std::process::Command::new(python);
        command.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("python_store.py"));
        let spec = spec.clone();
        // Blocking, off this thread: the emulator's proxy runs on it.
        let result = tokio::task::spawn_blocking(move || {
            super::run_script(command, &spec, "Python store's Init")
        })
        .await??;
        let result: Vec<Value> = serde_json::from_value(result)?;
        let r = &result[0];
        let number = |name: &str| {
            r[name]
                .as_f64()
                .ok_or_else(|| anyhow::anyhow!("no {name} in {r}"))
        };
        out.push(Run {
            wall: number("wall")?,
            sent: partitions.items_received.load(Ordering::SeqCst) - before.0,
            batches: partitions.batches.load(Ordering::SeqCst) - before.1,
            throttled: partitions.throttled.load(Ordering::SeqCst) - before.2,
            stored: number("stored")? as usize,
            marker: r["marker"]
                .as_bool()
                .ok_or_else(|| anyhow::anyhow!("no marker in {r}"))?,
        });
    }
    Ok(out)
}

/// The report section: medians of `runs` Inits at each rate.
pub async fn report(
    runtime: &Runtime,
    dynalite: &str,
    python: &Path,
    runs: usize,
    server_pid: u32,
    rates: &[f64],
) -> Result<String> {
    let mut text = format!(
        "## Init through one partition\n\n\
         {ITEMS} flags of about 900 bytes (one write unit each) through a partition emulator in \
         front of dynalite (`tests/support/proxy.rs`, `Partitions`): a token bucket per \
         partition key, {BURST_SECONDS} s of burst, {} ms added to every round trip; what does not \
         fit comes back as `UnprocessedItems`, a request with nothing accepted gets \
         `ProvisionedThroughputExceededException`. Every run of either store starts on a fresh \
         emulator (full buckets) and a fresh table. Median of {runs} runs. The physical bound is \
         items ÷ rate − burst.\n\n\
         | rate (WCU/s) | store | wall | bound | wall ÷ bound | item writes sent ÷ items | requests throttled | stored | marker |\n\
         |---|---|---|---|---|---|---|---|---|\n",
        RTT.as_millis()
    );
    for &rate in rates {
        let bound = ITEMS as f64 / rate - BURST_SECONDS;
        let mut ours = Vec::new();
        for run in 0..runs {
            let table = format!("pacing-{}-{}-{run}", std::process::id(), rate as u64);
            ours.push(component_run(runtime, dynalite, rate, &table).await?);
        }
        let theirs = python_runs(python, dynalite, rate, runs, server_pid).await?;
        for (name, runs) in [
            ("this component", &ours),
            ("LaunchDarkly's Python store", &theirs),
        ] {
            let wall = median(runs.iter().map(|r| r.wall).collect());
            let sent = median(runs.iter().map(|r| r.sent as f64).collect());
            let throttled = median(
                runs.iter()
                    .map(|r| r.throttled as f64 / r.batches.max(1) as f64)
                    .collect(),
            );
            let stored = median(runs.iter().map(|r| r.stored as f64).collect());
            let markers = runs.iter().filter(|r| r.marker).count();
            text.push_str(&format!(
                "| {rate} | {name} | {wall:.2} s | {bound:.2} s | {:.2} | {:.2} | {:.1}% | {stored:.0} of {ITEMS} | {markers} of {} runs |\n",
                wall / bound.max(1e-9),
                sent / ITEMS as f64,
                throttled * 100.0,
                runs.len()
            ));
        }
    }
    text.push_str("\nNothing is lost by this component; the Python store stores only what fits and writes its marker anyway. Where nothing is throttled (5,000 WCU/s), the wall is bound by the request window, not the partition: init-concurrency 8 with 10 ms round trips needs at least 0.3 s for 240 requests, and dynalite adds its own time.\n");
    Ok(text)
}
