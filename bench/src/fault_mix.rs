//! Init through the fault mix of issue 27 (every 7th request a
//! ThrottlingException, every 11th a 500, 3 in 5 batches of more than 2
//! items answered with half their items unprocessed: the tests' script,
//! `ld_dynamodb_tests::faults::fault_mix`) in front of dynalite, for this
//! component through the host library and for LaunchDarkly's Python store;
//! the same Init without faults beside it.

use std::path::Path;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use serde_json::{json, Value};

use ld_dynamodb_host::data;
use ld_dynamodb_host::embed::{HostOptions, Runtime};
use ld_dynamodb_tests::faults::fault_mix;
use ld_dynamodb_tests::proxy::{Action, Proxy};

const FLAGS: usize = 400;
const SEGMENTS: usize = 20;

/// One Init's figures.
struct Run {
    wall: f64,
    /// Requests that reached the fault proxy.
    requests: usize,
    /// Flag and segment rows in the table afterwards.
    stored: usize,
    marker: bool,
    /// How the Init failed, if it did.
    error: Option<String>,
}

/// `FLAGS` flags of about 1 KB and `SEGMENTS` segments, as `/sdk/latest-all`.
fn dataset() -> Value {
    let mut data = super::dataset(FLAGS, 1000);
    data["segments"] = (0..SEGMENTS)
        .map(|i| {
            let key = format!("segment-{i:02}");
            let segment = json!({"key": key, "version": 1, "included": ["user-1"],
                "excluded": [], "rules": [], "salt": format!("salt-{i}"), "deleted": false});
            (key, segment)
        })
        .collect::<serde_json::Map<String, Value>>()
        .into();
    data
}

/// A proxy in front of `dynalite`: the fault mix, or every request forwarded.
async fn proxy(dynalite: &str, faults: bool) -> Proxy {
    if faults {
        let counts = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        Proxy::start(dynalite, fault_mix(counts.0, counts.1)).await
    } else {
        Proxy::start(dynalite, |_: &_| Action::Forward).await
    }
}

/// One Init of the component (the host library, its default retry policy
/// and call deadline) through a fresh proxy.
async fn component_run(
    runtime: &Runtime,
    dynalite: &str,
    faults: bool,
    table: &str,
) -> Result<Run> {
    let direct = runtime.instance(&HostOptions::default()).await?;
    let mut direct = direct
        .open(&super::store_config(dynalite, table, None))
        .await?;
    direct.create_table().await?;
    let proxy = proxy(dynalite, faults).await;
    let instance = runtime.instance(&HostOptions::default()).await?;
    let config = super::store_config(&proxy.endpoint, table, None);
    let mut store = instance.open(&config).await?;
    let collections = data::all_data(&dataset().to_string())?;
    let started = Instant::now();
    let result = store.init(&collections).await;
    let wall = started.elapsed().as_secs_f64();
    let stored = direct.get_all("features").await?.len() + direct.get_all("segments").await?.len();
    Ok(Run {
        wall,
        requests: proxy.requests(),
        stored,
        marker: direct.is_initialized().await?,
        error: result.err().map(|e| e.to_string()),
    })
}

/// One Init of LaunchDarkly's Python store through a fresh proxy; its table
/// is made, read and deleted directly, not through the proxy.
async fn python_run(
    python: &Path,
    dynalite: &str,
    faults: bool,
    file: &Path,
    server_pid: u32,
) -> Result<Run> {
    let proxy = proxy(dynalite, faults).await;
    let spec = json!({"endpoint": proxy.endpoint, "admin_endpoint": dynalite,
        "region": super::REGION, "access_key_id": "AKIDBENCH", "secret_access_key": "bench-secret",
        "op": "init", "runs": 1, "data_file": file, "report": true, "server_pid": server_pid});
    let mut command = std::process::Command::new(python);
    command.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("python_store.py"));
    // Blocking, off this thread: the proxy runs on it.
    let result = tokio::task::spawn_blocking(move || {
        super::run_script(command, &spec, "Python store's Init")
    })
    .await??;
    let r = &result[0];
    Ok(Run {
        wall: r["wall"]
            .as_f64()
            .ok_or_else(|| anyhow::anyhow!("no wall in {r}"))?,
        requests: proxy.requests(),
        stored: r["stored"]
            .as_u64()
            .ok_or_else(|| anyhow::anyhow!("no stored in {r}"))? as usize,
        marker: r["marker"]
            .as_bool()
            .ok_or_else(|| anyhow::anyhow!("no marker in {r}"))?,
        error: r["error"].as_str().map(str::to_string),
    })
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The report section: `runs` Inits of each store, with and without faults.
pub async fn report(
    runtime: &Runtime,
    dynalite: &str,
    python: &Path,
    runs: usize,
    server_pid: u32,
) -> Result<String> {
    let items = FLAGS + SEGMENTS;
    let mut text = format!(
        "## Init through the fault mix\n\n\
         {FLAGS} flags of about 1 KB and {SEGMENTS} segments through a proxy in front of \
         dynalite that answers every 7th request with a `ThrottlingException`, every 11th with a \
         500, and 3 in 5 `BatchWriteItem` requests of more than 2 items with half their items in \
         `UnprocessedItems` (the tests' schedule, `tests/support/faults.rs`; counted from the \
         first request of each Init, so every run meets the same faults). This component \
         through the host library (its default retries and call deadline); LaunchDarkly's \
         Python store (`launchdarkly-server-sdk`, boto3's default retries), its table made and \
         read around the Init directly. Requests: those that reached the proxy. Median wall and \
         requests of {runs} runs; stored: flag and segment rows afterwards, the fewest of the \
         runs.\n\n\
         | faults | store | wall | requests | stored | marker written | Init returned an error |\n\
         |---|---|---|---|---|---|---|\n"
    );
    let file = std::env::temp_dir().join(format!("ld-fault-mix-{}.json", std::process::id()));
    std::fs::write(&file, dataset().to_string())?;
    for faults in [true, false] {
        let mut ours = Vec::new();
        let mut theirs = Vec::new();
        for run in 0..runs {
            let table = format!("fault-mix-{}-{faults}-{run}", std::process::id());
            ours.push(component_run(runtime, dynalite, faults, &table).await?);
            theirs.push(python_run(python, dynalite, faults, &file, server_pid).await?);
        }
        for (name, runs) in [
            ("this component", &ours),
            ("LaunchDarkly's Python store", &theirs),
        ] {
            let wall = median(runs.iter().map(|r| r.wall).collect());
            let requests = median(runs.iter().map(|r| r.requests as f64).collect());
            let stored = runs.iter().map(|r| r.stored).min().unwrap_or(0);
            let markers = runs.iter().filter(|r| r.marker).count();
            let failed: Vec<&str> = runs.iter().filter_map(|r| r.error.as_deref()).collect();
            let failed = match failed.first() {
                None => "none".to_string(),
                Some(first) => format!("{} of {}: {first}", failed.len(), runs.len()),
            };
            text.push_str(&format!(
                "| {} | {name} | {wall:.2} s | {requests:.0} | {stored} of {items} | {markers} of {} runs | {failed} |\n",
                if faults { "the mix" } else { "none" },
                runs.len()
            ));
            eprintln!(
                "fault mix {faults} {name}: {wall:.2} s, {requests} requests, {stored} stored"
            );
        }
    }
    Ok(text)
}
