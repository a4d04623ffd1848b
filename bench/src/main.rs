//! `ld-dynamodb-bench`: measures the component against LaunchDarkly's official
//! Python DynamoDB store on the same local dynalite, directly and through a
//! delay proxy, and writes the results as a Markdown table.
//! Run it with `scripts/bench.sh`, which starts dynalite and passes its pid.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod client_side;
mod component;
mod delay_proxy;
mod edge;
mod edge_load;
mod edge_snapshot;
mod evaluator;
mod events;
mod fault_mix;
mod hostile;
mod measure;
mod pacing;
mod report;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use serde_json::{json, Value};

use ld_dynamodb_host::embed::{Credentials, HostOptions, Runtime, Session, StoreConfig};

use component::component_figures;
use delay_proxy::{delay_proxy, DelayProxy};
use edge::{edge_connection, edge_get, edge_load, edge_send, EdgeRequest, EdgeServer};
use ld_dynamodb_host::{data, CredentialSource, DataStore};
use measure::{median, own_cpu, process_cpu, Sample};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run every measurement and write the report.
    Run {
        /// The dynalite endpoint, such as http://127.0.0.1:8000.
        #[arg(long)]
        endpoint: String,
        /// dynalite's process id (to read its CPU time).
        #[arg(long)]
        server_pid: u32,
        /// Python of the venv with launchdarkly-server-sdk.
        #[arg(long)]
        python: PathBuf,
        /// Runs per measurement (the median is reported).
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Where to write the Markdown report.
        #[arg(long)]
        out: PathBuf,
        /// The command line to print in the report.
        #[arg(long, default_value = "scripts/bench.sh")]
        command: String,
        /// An earlier build of the component to measure beside this one.
        #[arg(long, requires = "baseline_rev")]
        baseline: Option<PathBuf>,
        /// The commit the baseline was built from, named in the report.
        #[arg(long, requires = "baseline")]
        baseline_rev: Option<String>,
        /// The wasmtime CLI, to benchmark the edge flag server under `wasmtime serve`.
        #[arg(long)]
        wasmtime: Option<PathBuf>,
    },
    /// GetAll and 1,000 Gets beside the Python store, both warm, items
    /// delivered at the same level; writes its section of the report.
    Reads {
        #[arg(long)]
        endpoint: String,
        /// dynalite's process id (to read its CPU time).
        #[arg(long)]
        server_pid: u32,
        #[arg(long)]
        python: PathBuf,
        #[arg(long, default_value_t = 5)]
        runs: usize,
        #[arg(long)]
        out: PathBuf,
    },
    /// Init through the partition emulator, beside the Python store; writes
    /// its section of the report.
    Pacing {
        #[arg(long)]
        endpoint: String,
        #[arg(long)]
        server_pid: u32,
        #[arg(long)]
        python: PathBuf,
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// The report to update (its section is replaced or appended).
        #[arg(long)]
        out: PathBuf,
        /// The partition's write units per second, one Init series each.
        #[arg(long, value_delimiter = ',', default_values_t = [200.0, 1000.0, 5000.0])]
        rates: Vec<f64>,
    },
    /// Init through the fault mix of issue 27, beside the Python store;
    /// writes its section of the report.
    FaultMix {
        #[arg(long)]
        endpoint: String,
        /// dynalite's process id (the Python script reads its CPU time).
        #[arg(long)]
        server_pid: u32,
        #[arg(long)]
        python: PathBuf,
        #[arg(long, default_value_t = 3)]
        runs: usize,
        #[arg(long)]
        out: PathBuf,
    },
    /// The flag evaluator beside LaunchDarkly's Node server SDK; writes its
    /// section of the report.
    Evaluator {
        #[arg(long)]
        endpoint: String,
        /// The flag evaluator component.
        #[arg(long)]
        evaluator: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// The edge flag server under 16 to 1,024 connections; writes its
    /// section of the report.
    EdgeLoad {
        #[arg(long)]
        endpoint: String,
        /// The wasmtime CLI.
        #[arg(long)]
        wasmtime: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// Seconds of load per number of connections.
        #[arg(long, env = "LD_BENCH_EDGE_LOAD_SECONDS", default_value_t = 10.0)]
        seconds: f64,
    },
    /// The edge flag server answering from its snapshot (instances reused)
    /// beside a new instance per answer, an outage, and the edge-load
    /// section again; writes both sections of the report.
    EdgeSnapshot {
        #[arg(long)]
        endpoint: String,
        /// The wasmtime CLI.
        #[arg(long)]
        wasmtime: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// Seconds of load per row (shorter for a quick run).
        #[arg(long, env = "LD_BENCH_EDGE_SECONDS", default_value_t = 20.0)]
        seconds: f64,
        /// Seconds of the outage.
        #[arg(long, env = "LD_BENCH_EDGE_OUTAGE_SECONDS", default_value_t = 10.0)]
        outage_seconds: f64,
        /// Seconds of the edge-load section per number of connections.
        #[arg(long, env = "LD_BENCH_EDGE_LOAD_SECONDS", default_value_t = 10.0)]
        load_seconds: f64,
    },
    /// Client-side evaluation (evalx GET and REPORT) of the edge flag server;
    /// writes its section of the report.
    ClientSide {
        #[arg(long)]
        endpoint: String,
        /// The wasmtime CLI.
        #[arg(long)]
        wasmtime: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// evalx answers with the edge app's own analytics events on and off
    /// (the events service 50 ms away); writes its section.
    Events {
        #[arg(long)]
        endpoint: String,
        /// The wasmtime CLI.
        #[arg(long)]
        wasmtime: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Hostile contexts on the evalx REPORT route against a normal one, and
    /// `/sdk/latest-all` beside a flood of them; writes its section.
    Hostile {
        #[arg(long)]
        endpoint: String,
        /// The wasmtime CLI.
        #[arg(long)]
        wasmtime: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Forward TCP to UPSTREAM, delaying each request by DELAY_MS (prints its port).
    DelayProxy {
        #[arg(long)]
        upstream: String,
        #[arg(long)]
        delay_ms: u64,
    },
}

const REGION: &str = "us-east-1";
const SIZES: &[usize] = &[100, 1000, 5000];

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    match Cli::parse().command {
        Cmd::Pacing {
            endpoint,
            server_pid,
            python,
            runs,
            out,
            rates,
        } => {
            let runtime = Runtime::load_or_embedded(None)?;
            let text =
                pacing::report(&runtime, &endpoint, &python, runs, server_pid, &rates).await?;
            println!("{text}");
            report::replace_section(&out, "pacing", &text)
        }
        Cmd::FaultMix {
            endpoint,
            server_pid,
            python,
            runs,
            out,
        } => {
            let runtime = Runtime::load_or_embedded(None)?;
            let text = fault_mix::report(&runtime, &endpoint, &python, runs, server_pid).await?;
            println!("{text}");
            report::replace_section(&out, "fault-mix", &text)
        }
        Cmd::Evaluator {
            endpoint,
            evaluator,
            out,
        } => {
            let runtime = Runtime::load_or_embedded(None)?;
            let text = evaluator::report(&runtime, &evaluator, &endpoint).await?;
            println!("{text}");
            report::replace_section(&out, "evaluator", &text)
        }
        Cmd::EdgeLoad {
            endpoint,
            wasmtime,
            out,
            seconds,
        } => {
            let (text, _) =
                edge_load::report(&wasmtime, &endpoint, Duration::from_secs_f64(seconds)).await?;
            println!("{text}");
            report::replace_section(&out, "edge-load", &text)
        }
        Cmd::EdgeSnapshot {
            endpoint,
            wasmtime,
            out,
            seconds,
            outage_seconds,
            load_seconds,
        } => {
            let (text, load) = edge_snapshot::report(
                &wasmtime,
                &endpoint,
                Duration::from_secs_f64(seconds),
                Duration::from_secs_f64(outage_seconds),
                Duration::from_secs_f64(load_seconds),
            )
            .await?;
            println!("{text}\n{load}");
            report::replace_section(&out, "edge-snapshot", &text)?;
            report::replace_section(&out, "edge-load", &load)
        }
        Cmd::ClientSide {
            endpoint,
            wasmtime,
            out,
        } => {
            let text = client_side::report(&wasmtime, &endpoint).await?;
            println!("{text}");
            report::replace_section(&out, "client-side", &text)
        }
        Cmd::Events {
            endpoint,
            wasmtime,
            out,
        } => {
            let text = events::report(&wasmtime, &endpoint).await?;
            println!("{text}");
            report::replace_section(&out, "events", &text)
        }
        Cmd::Hostile {
            endpoint,
            wasmtime,
            out,
        } => {
            let text = hostile::report(&wasmtime, &endpoint).await?;
            println!("{text}");
            report::replace_section(&out, "hostile", &text)
        }
        Cmd::Reads {
            endpoint,
            server_pid,
            python,
            runs,
            out,
        } => {
            let runtime = Runtime::load_or_embedded(None)?;
            let mut bench = Bench {
                wasmtime: None,
                endpoint,
                server_pid,
                python,
                runs,
                baseline: None,
                next_table: 0,
            };
            let text = bench.reads(&runtime).await?;
            println!("{text}");
            report::replace_section(&out, "reads", &text)
        }
        Cmd::DelayProxy { upstream, delay_ms } => {
            delay_proxy(&upstream, Duration::from_millis(delay_ms)).await
        }
        Cmd::Run {
            endpoint,
            server_pid,
            python,
            runs,
            out,
            command,
            baseline,
            baseline_rev,
            wasmtime,
        } => {
            let bench = Bench {
                wasmtime,
                endpoint,
                server_pid,
                python,
                runs,
                baseline: baseline.zip(baseline_rev),
                next_table: 0,
            };
            let report = bench.run().await?;
            let text = format!("{report}\nCommand: `{command}`\n");
            report::replace_section(&out, "main", &text)?;
            println!("{text}");
            Ok(())
        }
    }
}

/// The configuration of a benchmark table at `endpoint` (fixed credentials:
/// dynalite checks none).
fn store_config(endpoint: &str, table: &str, prefix: Option<&str>) -> StoreConfig {
    let credentials = Credentials {
        access_key_id: "AKIDBENCH".into(),
        secret_access_key: "bench-secret".into(),
        session_token: None,
    };
    StoreConfig::new(table, REGION, credentials)
        .with_prefix(prefix.map(str::to_string))
        .with_endpoint(Some(endpoint.into()))
}

/// Runs a benchmark script that reads `spec` as JSON on stdin and prints
/// JSON; what it printed. `what` names it in errors.
fn run_script(mut command: Command, spec: &Value, what: &str) -> Result<Value> {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("start the {what} benchmark"))?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(spec.to_string().as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("the {what} benchmark failed");
    }
    serde_json::from_slice(&out.stdout)
        .with_context(|| format!("the {what} benchmark printed no JSON"))
}

/// An item's JSON delivered as the read benchmark's level asks: a generic
/// JSON tree, or LaunchDarkly's flag model (the evaluation crate's `Flag`).
fn deliver(json: &str, model: bool) -> Result<()> {
    if model {
        std::hint::black_box(serde_json::from_str::<launchdarkly_server_sdk::Flag>(json)?);
    } else {
        std::hint::black_box(serde_json::from_str::<Value>(json)?);
    }
    Ok(())
}

/// A flag of about `size` bytes of JSON.
fn flag(i: usize, size: usize) -> Value {
    let mut flag = json!({
        "key": format!("flag-{i:05}"), "version": 1, "on": i.is_multiple_of(2), "variations": [true, false],
        "fallthrough": { "variation": 0 }, "offVariation": 1, "salt": format!("salt-{i}"),
        "targets": [{ "values": ["user-1", "user-2"], "variation": 0 }], "prerequisites": [],
        "rules": [{ "id": "r1", "clauses": [{ "attribute": "email", "op": "endsWith", "values": ["@example.com"], "negate": false }], "variation": 1, "trackEvents": false }],
        "trackEvents": false, "deleted": false, "description": "",
    });
    let pad = size.saturating_sub(flag.to_string().len());
    flag["description"] = json!("d".repeat(pad));
    flag
}

/// `/sdk/latest-all` data with `n` flags of about `size` bytes.
fn dataset(n: usize, size: usize) -> Value {
    let flags: serde_json::Map<String, Value> = (0..n)
        .map(|i| (format!("flag-{i:05}"), flag(i, size)))
        .collect();
    json!({ "flags": flags, "segments": {} })
}

struct Bench {
    /// An earlier build and the commit it was built from.
    baseline: Option<(PathBuf, String)>,
    wasmtime: Option<PathBuf>,
    endpoint: String,
    server_pid: u32,
    python: PathBuf,
    runs: usize,
    next_table: usize,
}

/// Where an operation started.
struct Meter {
    requests: u64,
    wall: Instant,
    cpu: f64,
    server: f64,
}

impl Bench {
    fn config(&self, endpoint: &str, table: &str) -> StoreConfig {
        store_config(endpoint, table, None)
    }

    fn table(&mut self) -> String {
        self.next_table += 1;
        format!("bench-{}-{}", std::process::id(), self.next_table)
    }

    async fn open(&self, runtime: &Runtime, endpoint: &str, table: &str) -> Result<Session> {
        let instance = runtime.instance(&HostOptions::default()).await?;
        Ok(instance.open(&self.config(endpoint, table)).await?)
    }

    fn python(&self, spec: Value) -> Result<Vec<Sample>> {
        let mut spec = spec;
        spec["region"] = json!(REGION);
        spec["access_key_id"] = json!("AKIDBENCH");
        spec["secret_access_key"] = json!("bench-secret");
        spec["runs"] = json!(self.runs);
        spec["server_pid"] = json!(self.server_pid);
        let mut command = Command::new(&self.python);
        command.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("python_store.py"));
        let runs: Vec<Value> = serde_json::from_value(run_script(command, &spec, "Python")?)?;
        let field = |r: &Value, name: &str| {
            r[name]
                .as_f64()
                .with_context(|| format!("the Python benchmark gave no number {name:?}: {r}"))
        };
        runs.iter()
            .map(|r| {
                Ok(Sample {
                    wall: field(r, "wall")?,
                    cpu: field(r, "cpu")?,
                    requests: field(r, "requests")?,
                    server_cpu: field(r, "server_cpu")?,
                })
            })
            .collect()
    }

    /// A new table holding `n` flags of 1 KB, written directly, and a store on it.
    async fn filled_table(&mut self, runtime: &Runtime, n: usize) -> Result<(String, Session)> {
        let table = self.table();
        let mut store = self.open(runtime, &self.endpoint, &table).await?;
        store.create_table().await?;
        store
            .init(&data::all_data(&dataset(n, 1000).to_string())?)
            .await?;
        Ok((table, store))
    }

    /// Starts timing one operation of ours.
    fn start(&self, store: &Session) -> Result<Meter> {
        Ok(Meter {
            requests: store.instance().requests_sent(),
            wall: Instant::now(),
            cpu: own_cpu()?,
            server: process_cpu(self.server_pid)?,
        })
    }

    /// The sample of the operation started with [`Bench::start`].
    fn finish(&self, meter: Meter, store: &Session) -> Result<Sample> {
        Ok(Sample {
            wall: meter.wall.elapsed().as_secs_f64(),
            cpu: own_cpu()? - meter.cpu,
            requests: (store.instance().requests_sent() - meter.requests) as f64,
            server_cpu: process_cpu(self.server_pid)? - meter.server,
        })
    }

    fn start_proxy(&self, delay_ms: u64) -> Result<DelayProxy> {
        DelayProxy::start(&self.endpoint, delay_ms)
    }

    async fn run(mut self) -> Result<String> {
        let mut report = String::from(
            "# Benchmarks\n\n\
             Measured by `scripts/bench.sh` in one run on one machine, against one local dynalite, \
             directly and through a proxy that delays every request by 10 ms or 50 ms. \
             \"Ours\" is the component in the `ld-dynamodb` host (wasmtime, keep-alive pool); \
             \"Python\" is LaunchDarkly's official store (`launchdarkly-server-sdk`, caching disabled). \
             Client CPU is each client process's own user+sys time during the operation (dynalite's \
             CPU is shown apart). Every Init starts on a fresh, empty table.\n\n",
        );
        // The component built into this benchmark, as a file to measure.
        let component = std::env::temp_dir().join(format!("ld-bench-{}.wasm", std::process::id()));
        std::fs::write(&component, ld_dynamodb_host::embed::EMBEDDED_COMPONENT)?;
        let now = component_figures(&component, self.runs, false).await?;
        report += "## Component\n\n";
        match &self.baseline {
            Some((path, rev)) => {
                let before = component_figures(path, self.runs, true).await?;
                report += &format!(
                    "Both measured in this run. Before: the component of commit {rev} as \
                     `scripts/bench.sh` builds it (`wasm32-wasip2`, the release profile of that \
                     commit), instantiated with all of WASI linked; now: \
                     `wasm32-unknown-unknown`, LTO, opt-level \"z\", `wasm-opt -Oz`, \
                     proxy-world imports, the project's host (epoch interruption on).\n\n\
                     | what | now | before |\n|---|---|---|\n"
                );
                report += &now.rows(Some(&before));
            }
            None => {
                report += "| what | value |\n|---|---|\n";
                report += &now.rows(None);
            }
        }
        report += "\n";
        let runtime = Arc::new(Runtime::load_with_cache(&component, None)?);

        // Init, direct and through the delay proxy.
        report += "## Init (wall and client CPU: median of runs; requests: HTTP requests sent)\n\n";
        report += "| delay | data | ours wall | Python wall | wall ratio | ours CPU | Python CPU | CPU ratio | ours req | Python req | dynalite CPU (ours / Python) |\n";
        report += "|---|---|---|---|---|---|---|---|---|---|---|\n";
        let mut cases: Vec<(String, Value)> = SIZES
            .iter()
            .map(|&n| (format!("{n} × 1 KB"), dataset(n, 1000)))
            .collect();
        cases.push(("2 × 300 KB".into(), dataset(2, 300_000)));
        let data_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench");
        std::fs::create_dir_all(&data_dir)?;
        for delay in [0u64, 10, 50] {
            let proxy = if delay > 0 {
                Some(self.start_proxy(delay)?)
            } else {
                None
            };
            let endpoint = proxy
                .as_ref()
                .map_or(self.endpoint.clone(), |p| p.endpoint.clone());
            for (label, data_value) in &cases {
                let file = data_dir.join("data.json");
                std::fs::write(&file, data_value.to_string())?;
                let collections = data::all_data(&data_value.to_string())?;
                let mut ours = Vec::new();
                for _ in 0..self.runs {
                    let table = self.table();
                    let mut store = self.open(&runtime, &self.endpoint, &table).await?;
                    store.create_table().await?;
                    let mut store = self.open(&runtime, &endpoint, &table).await?;
                    let meter = self.start(&store)?;
                    store.init(&collections).await?;
                    ours.push(self.finish(meter, &store)?);
                }
                let python =
                    self.python(json!({ "endpoint": endpoint, "op": "init", "data_file": file }))?;
                let (o, p) = (median(&ours), median(&python));
                report += &format!(
                    "| {delay} ms | {label} | {:.3} s | {:.3} s | {:.1}× | {:.3} s | {:.3} s | {:.1}× | {} | {} | {:.2} s / {:.2} s |\n",
                    o.wall, p.wall, p.wall / o.wall, o.cpu, p.cpu, p.cpu / o.cpu, o.requests, p.requests, o.server_cpu, p.server_cpu
                );
                eprintln!(
                    "init {delay} ms {label}: ours {:.3}s python {:.3}s",
                    o.wall, p.wall
                );
            }
        }

        // Peak linear memory during a GetAll of 5,000 flags.
        let (table, _) = self.filled_table(&runtime, 5000).await?;
        let mut fresh = self.open(&runtime, &self.endpoint, &table).await?;
        let before = fresh.instance().peak_memory();
        let items = fresh.get_all("features").await?;
        report += &format!(
            "\n## Memory\n\nPeak linear memory of a fresh instance: {:.1} MiB after open, {:.1} MiB after a GetAll of {} flags of 1 KB ({:.1} MiB of item JSON returned).\n",
            before as f64 / 1048576.0,
            fresh.instance().peak_memory() as f64 / 1048576.0,
            items.len(),
            items.iter().map(|k| k.item.json.len()).sum::<usize>() as f64 / 1048576.0
        );
        report += &self.pooled(&runtime).await?;
        if let Some(wasmtime) = self.wasmtime.clone() {
            report += &self.edge(&runtime, &wasmtime).await?;
        }
        Ok(report)
    }

    /// GetAll and 1,000 Gets of 1,000 flags of 1 KB, direct, each side warm
    /// (one client and one session for every run, after an untimed read), with
    /// the items delivered at the same level on both sides: each item's JSON
    /// parsed into a generic tree (ours `serde_json::Value`; Python the dicts
    /// of its store's core), or into the SDK's flag model (ours LaunchDarkly's
    /// Rust `Flag`; Python its `FeatureFlag`, through the store wrapper).
    async fn reads(&mut self, runtime: &Runtime) -> Result<String> {
        let (table, _) = self.filled_table(runtime, 1000).await?;
        let keys: Vec<String> = (0..1000).map(|i| format!("flag-{i:05}")).collect();
        let mut store = self.open(runtime, &self.endpoint, &table).await?;
        store.get_all("features").await?;
        let load = std::fs::read_to_string("/proc/loadavg")
            .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|_| "unknown".into());
        let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
        let runs = self.runs;
        let mut text = format!(
            "## Reads of 1,000 flags of 1 KB (direct, warm, equal work)\n\n\
             Both sides keep one client (ours: one instance and session; Python: one store and \
             boto3 client) for every run, warmed by one untimed GetAll; each delivers every item \
             parsed, at the level named. Medians of {runs} runs. Client CPU is each client \
             process's own user+sys time. Written by `ld-dynamodb-bench reads` \
             (`scripts/bench.sh`); the machine's load average when it began: {load} on {cores} cores.\n\n\
             | operation | items as | ours wall | Python wall | wall ratio | ours CPU | Python CPU | CPU ratio | ours req | Python req |\n\
             |---|---|---|---|---|---|---|---|---|---|\n",
        );
        for (level, label) in [("json", "parsed JSON"), ("models", "SDK flag models")] {
            let models = level == "models";
            let mut get_all = Vec::new();
            let mut gets = Vec::new();
            for _ in 0..self.runs {
                let meter = self.start(&store)?;
                let items = store.get_all("features").await?;
                let parsed = items
                    .iter()
                    .map(|k| deliver(&k.item.json, models))
                    .collect::<Result<Vec<_>>>()?;
                get_all.push(self.finish(meter, &store)?);
                anyhow::ensure!(parsed.len() == 1000, "GetAll returned {}", parsed.len());
                let meter = self.start(&store)?;
                for key in &keys {
                    let item = store
                        .get("features", key)
                        .await?
                        .with_context(|| format!("{key} is missing"))?;
                    deliver(&item.json, models)?;
                }
                gets.push(self.finish(meter, &store)?);
            }
            let py_all = self.python(json!({
                "endpoint": self.endpoint, "op": "get_all", "table": table, "expect": 1000, "level": level,
            }))?;
            let py_gets = self.python(json!({
                "endpoint": self.endpoint, "op": "gets", "table": table, "keys": keys, "level": level,
            }))?;
            for (operation, ours, python) in [
                ("GetAll", &get_all, &py_all),
                ("1,000 Gets", &gets, &py_gets),
            ] {
                let (o, p) = (median(ours), median(python));
                text += &format!(
                    "| {operation} | {label} | {:.3} s | {:.3} s | {:.1}× | {:.3} s | {:.3} s | {:.1}× | {} | {} |\n",
                    o.wall, p.wall, p.wall / o.wall, o.cpu, p.cpu, p.cpu / o.cpu, o.requests, p.requests
                );
                eprintln!(
                    "reads {operation} {label}: ours {:.3}s CPU {:.3}s, python {:.3}s CPU {:.3}s",
                    o.wall, o.cpu, p.wall, p.cpu
                );
            }
        }
        Ok(text)
    }

    /// 1,000 Gets through the library's pooled `DataStore` from 16 concurrent
    /// tasks, through the 10 ms delay proxy, with 1, 4 and 16 instances.
    async fn pooled(&mut self, runtime: &Arc<Runtime>) -> Result<String> {
        const TASKS: usize = 16;
        const GETS: usize = 1000;
        let (table, _) = self.filled_table(runtime, GETS).await?;
        let proxy = self.start_proxy(10)?;
        let mut report = format!(
            "\n## Pooled store (the library's `DataStore`)\n\n{GETS} Gets of 1 KB flags from \
             {TASKS} concurrent tasks on one thread, each request delayed 10 ms; instances are \
             created on demand up to the limit (median of {} runs).\n\n\
             | instances | wall | Gets per second | instances created |\n|---|---|---|---|\n",
            self.runs
        );
        for instances in [1, 4, 16] {
            let mut walls = Vec::new();
            let mut created = 0;
            for _ in 0..self.runs {
                let config = self.config(&proxy.endpoint, &table);
                let store = DataStore::builder(&table)
                    .region(REGION)
                    .endpoint(&proxy.endpoint)
                    .credentials(CredentialSource::fixed(config.credentials().clone()))
                    .instances(instances)
                    .build(runtime.clone())
                    .await?;
                let started = Instant::now();
                let tasks: Vec<_> = (0..TASKS)
                    .map(|task| {
                        let store = store.clone();
                        tokio::spawn(async move {
                            for i in (task..GETS).step_by(TASKS) {
                                let key = format!("flag-{i:05}");
                                anyhow::ensure!(
                                    store.get("features", &key).await?.is_some(),
                                    "{key} is missing"
                                );
                            }
                            anyhow::Ok(())
                        })
                    })
                    .collect();
                for task in tasks {
                    task.await??;
                }
                walls.push(started.elapsed().as_secs_f64());
                created = store.instances_created();
            }
            walls.sort_by(f64::total_cmp);
            let wall = walls[walls.len() / 2];
            report += &format!(
                "| {instances} | {wall:.3} s | {:.0} | {created} |\n",
                GETS as f64 / wall
            );
            eprintln!("pooled {instances} instances: {wall:.3}s");
        }
        Ok(report)
    }

    /// `GET /sdk/latest-all` of the edge flag server under
    /// `wasmtime serve`, for 100 and 1,000 flags: full answers and 304
    /// revalidations, from 8 keep-alive connections.
    async fn edge(&mut self, runtime: &Runtime, wasmtime: &Path) -> Result<String> {
        const CONNECTIONS: usize = 8;
        let component =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/component/edge-flags.wasm");
        let mut report = format!(
            "\n## Edge flag server (`wasmtime serve`, `GET /sdk/latest-all`)\n\n\
             The edge flag server component (`scripts/edge-build.sh`) under `wasmtime serve` 49 with the \
             options of `scripts/edge-serve-flags.sh` (instances reused), reading this dynalite; \
             {CONNECTIONS} keep-alive connections from this process. Each instance reads the table \
             once per refresh interval (15 s by default) and answers from that snapshot; a 304 \
             revalidation is answered from it too and sends no body. The edge snapshot section \
             sets these beside a new instance per request.\n\n\
             | flags | answer | requests | requests/s | p50 | p99 | body |\n|---|---|---|---|---|---|---|\n"
        );
        for (n, requests) in [(100usize, 400usize), (1000, 200)] {
            let (table, _) = self.filled_table(runtime, n).await?;
            let server = EdgeServer::start(wasmtime, &component, &self.endpoint, &table, &[])?;
            // Warm-up, and the ETag to revalidate with.
            let (_, etag, _) = edge_get(&server.addr, &EdgeRequest::latest_all(None)).await?;
            for (answer, if_none_match, expected) in
                [("200, full", None, 200), ("304", Some(etag.as_str()), 304)]
            {
                let request = EdgeRequest::latest_all(if_none_match);
                let load =
                    edge_load(&server.addr, &request, expected, requests, CONNECTIONS).await?;
                report += &format!(
                    "| {n} | {answer} | {requests} | {:.0} | {:.1} ms | {:.1} ms | {} bytes |\n",
                    load.per_second,
                    load.p50 * 1e3,
                    load.p99 * 1e3,
                    load.body_bytes
                );
                println!("edge {n} flags {answer}: {:.0} requests/s", load.per_second);
            }
        }
        report += "\nThe Relay Proxy's published performance figures (LaunchDarkly's \"Testing Relay \
                   Proxy performance\" page) give CPU, memory, bandwidth and median/p90 latency per \
                   number of simulated SDK connections on an AWS m4.xlarge, not requests per second of \
                   `/sdk/latest-all` for a given number of flags: there are no figures to set beside these.\n";
        Ok(report)
    }
}

/// A new table `table` on `endpoint` holding `data` (`/sdk/latest-all` JSON),
/// written through the component.
async fn loaded_table(runtime: &Runtime, endpoint: &str, table: &str, data: &Value) -> Result<()> {
    let config = store_config(endpoint, table, None);
    let mut store = runtime
        .instance(&HostOptions::default())
        .await?
        .open(&config)
        .await?;
    store.create_table().await?;
    store.init(&data::all_data(&data.to_string())?).await?;
    Ok(())
}
