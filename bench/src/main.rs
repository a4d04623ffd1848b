//! `ld-dynamodb-bench`: measures the component against LaunchDarkly's official
//! Python DynamoDB store on the same local dynalite, directly and through a
//! delay proxy, and writes the results as a Markdown table.
//! Run it with `scripts/bench.sh`, which starts dynalite and passes its pid.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod client_side;
mod edge_load;
mod evaluator;
mod pacing;
mod report;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wasmtime::component::Component;

use ld_dynamodb_host::embed::{
    full_wasi_instance_pre, new_engine, new_store, Credentials, HostOptions, Runtime, Session,
    StoreConfig,
};
use ld_dynamodb_host::error::describe;
use ld_dynamodb_host::{data, CredentialSource, DataStore};

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
    /// The flag evaluator beside LaunchDarkly's Node server SDK; writes its
    /// section of the report.
    Evaluator {
        #[arg(long)]
        endpoint: String,
        /// The composed evaluator.
        #[arg(long)]
        evaluator: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// The edge flag server under bursts of 16 to 1,024 connections; writes
    /// its section of the report.
    EdgeLoad {
        #[arg(long)]
        endpoint: String,
        /// The wasmtime CLI.
        #[arg(long)]
        wasmtime: PathBuf,
        #[arg(long)]
        out: PathBuf,
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
        } => {
            let text = edge_load::report(&wasmtime, &endpoint).await?;
            println!("{text}");
            report::replace_section(&out, "edge-load", &text)
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
    StoreConfig {
        table: table.into(),
        prefix: prefix.map(str::to_string),
        region: REGION.into(),
        endpoint: Some(endpoint.into()),
        credentials: Credentials {
            access_key_id: "AKIDBENCH".into(),
            secret_access_key: "bench-secret".into(),
            session_token: None,
        },
        retry: None,
        timeouts: None,
        init_concurrency: None,
        init_no_progress_ms: None,
    }
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

/// One measured run.
#[derive(Clone, Copy, Default)]
struct Sample {
    wall: f64,
    cpu: f64,
    requests: f64,
    server_cpu: f64,
}

fn median(samples: &[Sample]) -> Sample {
    let pick = |f: fn(&Sample) -> f64| {
        let mut v: Vec<f64> = samples.iter().map(f).collect();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    Sample {
        wall: pick(|s| s.wall),
        cpu: pick(|s| s.cpu),
        requests: pick(|s| s.requests),
        server_cpu: pick(|s| s.server_cpu),
    }
}

/// This process's user+sys CPU seconds.
fn own_cpu() -> Result<f64> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given; it was zeroed before.
    let usage = unsafe {
        if libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) != 0 {
            bail!("getrusage failed: {}", std::io::Error::last_os_error());
        }
        usage.assume_init()
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Ok(secs(usage.ru_utime) + secs(usage.ru_stime))
}

/// Another process's user+sys CPU seconds, from /proc; an error when they
/// cannot be read (a zero would make ratios infinite).
fn process_cpu(pid: u32) -> Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .with_context(|| format!("{path} has no command name"))?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| -> Result<f64> {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .with_context(|| format!("{path} has no CPU time in field {}", i + 3))
    };
    // utime and stime are fields 14 and 15 of the line (11 and 12 after the name).
    // SAFETY: sysconf only reads a constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz <= 0 {
        bail!("sysconf(_SC_CLK_TCK) failed");
    }
    Ok((ticks(11)? + ticks(12)?) / hz as f64)
}

/// A store result as an error line.
fn check<T>(result: Result<T, ld_dynamodb_host::embed::StoreError>) -> Result<T> {
    result.map_err(|e| anyhow::anyhow!(describe(&e)))
}

/// A flag of about `size` bytes of JSON.
fn flag(i: usize, size: usize) -> Value {
    let mut flag = json!({
        "key": format!("flag-{i:05}"), "version": 1, "on": i.is_multiple_of(2), "variations": [true, false],
        "fallthrough": { "variation": 0 }, "offVariation": 1, "salt": format!("salt-{i}"),
        "targets": [{ "values": ["user-1", "user-2"], "variation": 0 }], "prerequisites": [],
        "rules": [{ "id": "r1", "clauses": [{ "attribute": "email", "op": "endsWith", "values": ["@example.com"], "negate": false }], "variation": 1 }],
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

/// A running delay proxy child process.
struct DelayProxy {
    child: std::process::Child,
    endpoint: String,
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
        check(instance.open(&self.config(endpoint, table)).await?)
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
        check(store.create_table().await?)?;
        check(
            store
                .init(&data::all_data(&dataset(n, 1000).to_string())?)
                .await?,
        )?;
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
        let mut child = Command::new(std::env::current_exe()?)
            .args([
                "delay-proxy",
                "--upstream",
                self.endpoint.trim_start_matches("http://"),
                "--delay-ms",
                &delay_ms.to_string(),
            ])
            .stdout(Stdio::piped())
            .spawn()?;
        let mut port = String::new();
        let mut stdout = child.stdout.take().unwrap();
        let mut byte = [0u8; 1];
        while std::io::Read::read(&mut stdout, &mut byte)? == 1 && byte[0] != b'\n' {
            port.push(byte[0] as char);
        }
        Ok(DelayProxy {
            child,
            endpoint: format!("http://127.0.0.1:{}", port.trim()),
        })
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
                    check(store.create_table().await?)?;
                    let mut store = self.open(&runtime, &endpoint, &table).await?;
                    let meter = self.start(&store)?;
                    check(store.init(&collections).await?)?;
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

        // Reads, direct.
        let (table, mut store) = self.filled_table(&runtime, 1000).await?;
        let keys: Vec<String> = (0..1000).map(|i| format!("flag-{i:05}")).collect();
        let mut get_all = Vec::new();
        let mut gets = Vec::new();
        for _ in 0..self.runs {
            let meter = self.start(&store)?;
            let items = check(store.get_all("features").await?)?;
            get_all.push(self.finish(meter, &store)?);
            anyhow::ensure!(items.len() == 1000, "GetAll returned {}", items.len());
            let meter = self.start(&store)?;
            for key in &keys {
                anyhow::ensure!(
                    check(store.get("features", key).await?)?.is_some(),
                    "{key} is missing"
                );
            }
            gets.push(self.finish(meter, &store)?);
        }
        let py_all = self.python(
            json!({ "endpoint": self.endpoint, "op": "get_all", "table": table, "expect": 1000 }),
        )?;
        let py_gets = self.python(
            json!({ "endpoint": self.endpoint, "op": "gets", "table": table, "keys": keys }),
        )?;
        report += "\n## Reads of 1,000 flags of 1 KB (direct)\n\n";
        report += "| operation | ours wall | Python wall | wall ratio | ours CPU | Python CPU | CPU ratio | ours req | Python req |\n|---|---|---|---|---|---|---|---|---|\n";
        for (label, ours, python) in [
            ("GetAll", &get_all, &py_all),
            ("1,000 Gets", &gets, &py_gets),
        ] {
            let (o, p) = (median(ours), median(python));
            report +=
                &format!(
                "| {label} | {:.3} s | {:.3} s | {:.1}× | {:.3} s | {:.3} s | {:.1}× | {} | {} |\n",
                o.wall, p.wall, p.wall / o.wall, o.cpu, p.cpu, p.cpu / o.cpu, o.requests, p.requests
            );
        }

        // Peak linear memory during a GetAll of 5,000 flags.
        let (table, _) = self.filled_table(&runtime, 5000).await?;
        let mut fresh = self.open(&runtime, &self.endpoint, &table).await?;
        let before = fresh.instance().peak_memory();
        let items = check(fresh.get_all("features").await?)?;
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
                    .credentials(CredentialSource::fixed(config.credentials))
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

    /// `GET /sdk/latest-all` of the composed edge flag server under
    /// `wasmtime serve`, for 100 and 1,000 flags: full answers and 304
    /// revalidations, from 8 keep-alive connections.
    async fn edge(&mut self, runtime: &Runtime, wasmtime: &Path) -> Result<String> {
        const CONNECTIONS: usize = 8;
        let component =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/component/edge-flags.wasm");
        let mut report = format!(
            "\n## Edge flag server (`wasmtime serve`, `GET /sdk/latest-all`)\n\n\
             The composed component (`scripts/edge-build.sh`) under `wasmtime serve` 49 (a new \
             instance per request, as `wasmtime serve` does by default), reading this dynalite; \
             {CONNECTIONS} keep-alive connections from this process; each request opens the store, \
             checks the marker and reads both kinds (3 DynamoDB requests). A 304 revalidation \
             does the same reads and sends no body.\n\n\
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
    let mut store = check(
        runtime
            .instance(&HostOptions::default())
            .await?
            .open(&config)
            .await?,
    )?;
    check(store.create_table().await?)?;
    check(store.init(&data::all_data(&data.to_string())?).await?)?;
    Ok(())
}

/// `wasmtime serve` running the edge flag server; killed on drop.
struct EdgeServer {
    child: std::process::Child,
    addr: String,
}

impl EdgeServer {
    /// Served as the README serves it (`scripts/edge-serve-flags.sh`), with
    /// `auth=none`, the secrets in the environment, and `settings` as more
    /// `wasi:config` variables (`name=value`).
    fn start(
        wasmtime: &Path,
        component: &Path,
        endpoint: &str,
        table: &str,
        settings: &[String],
    ) -> Result<EdgeServer> {
        use std::io::BufRead;
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let flags = Command::new(root.join("scripts/edge-serve-flags.sh")).output()?;
        if !flags.status.success() {
            bail!("scripts/edge-serve-flags.sh failed");
        }
        let flags = String::from_utf8(flags.stdout)?;
        let mut child = Command::new(wasmtime)
            .args(["serve", "--addr", "127.0.0.1:0"])
            .args(flags.lines())
            .env("AWS_ACCESS_KEY_ID", "AKIDBENCH")
            .env("AWS_SECRET_ACCESS_KEY", "bench-secret")
            .args(["-S", &format!("config-var=table={table}")])
            .args(["-S", &format!("config-var=region={REGION}")])
            .args(["-S", &format!("config-var=endpoint={endpoint}")])
            .args(["-S", "config-var=auth=none"])
            .args(
                settings
                    .iter()
                    .flat_map(|s| ["-S".to_string(), format!("config-var={s}")]),
            )
            .arg(component)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("start wasmtime serve")?;
        let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        while stderr.read_line(&mut line)? > 0 {
            if let Some(rest) = line.trim().strip_prefix("Serving HTTP on http://") {
                let addr = rest.trim_end_matches('/').to_string();
                std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
                return Ok(EdgeServer { child, addr });
            }
            line.clear();
        }
        bail!("wasmtime serve did not start")
    }
}

impl Drop for EdgeServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Latencies of a load run.
struct EdgeLoad {
    per_second: f64,
    p50: f64,
    p99: f64,
    body_bytes: usize,
}

/// One request to the edge server.
#[derive(Clone)]
struct EdgeRequest {
    method: http::Method,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: bytes::Bytes,
}

impl EdgeRequest {
    /// `GET /sdk/latest-all`, revalidating `if_none_match` when given.
    fn latest_all(if_none_match: Option<&str>) -> EdgeRequest {
        EdgeRequest {
            method: http::Method::GET,
            path: "/sdk/latest-all".into(),
            headers: if_none_match
                .map(|tag| ("if-none-match", tag.to_string()))
                .into_iter()
                .collect(),
            body: bytes::Bytes::new(),
        }
    }
}

type EdgeSender = hyper::client::conn::http1::SendRequest<http_body_util::Full<bytes::Bytes>>;

/// One keep-alive connection to the edge server.
async fn edge_connection(addr: &str) -> Result<EdgeSender> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) =
        hyper::client::conn::http1::handshake(wasmtime_wasi_http::io::TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

/// Sends one request; (status, ETag, body length).
async fn edge_send(
    sender: &mut EdgeSender,
    addr: &str,
    edge_request: &EdgeRequest,
) -> Result<(u16, String, usize)> {
    use http_body_util::BodyExt;
    let mut request = http::Request::builder()
        .method(edge_request.method.clone())
        .uri(&edge_request.path)
        .header("host", addr);
    for (name, value) in &edge_request.headers {
        request = request.header(*name, value);
    }
    sender.ready().await?;
    let response = sender
        .send_request(request.body(http_body_util::Full::new(edge_request.body.clone()))?)
        .await?;
    let status = response.status().as_u16();
    let etag = response
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, etag, body.len()))
}

async fn edge_get(addr: &str, request: &EdgeRequest) -> Result<(u16, String, usize)> {
    let mut sender = edge_connection(addr).await?;
    edge_send(&mut sender, addr, request).await
}

/// `requests` of `request` over `connections` keep-alive connections, each
/// answered `expected`.
async fn edge_load(
    addr: &str,
    request: &EdgeRequest,
    expected: u16,
    requests: usize,
    connections: usize,
) -> Result<EdgeLoad> {
    let started = Instant::now();
    let mut workers = Vec::new();
    for worker in 0..connections {
        let addr = addr.to_string();
        let request = request.clone();
        let count = requests / connections + usize::from(worker < requests % connections);
        workers.push(tokio::spawn(async move {
            let mut sender = edge_connection(&addr).await?;
            let mut latencies = Vec::with_capacity(count);
            let mut body = 0;
            for _ in 0..count {
                let t = Instant::now();
                let (status, _, len) = edge_send(&mut sender, &addr, &request).await?;
                if status != expected {
                    bail!("the edge server answered {status}, not {expected}");
                }
                latencies.push(t.elapsed().as_secs_f64());
                body = len;
            }
            Ok::<_, anyhow::Error>((latencies, body))
        }));
    }
    let mut latencies = Vec::with_capacity(requests);
    let mut body_bytes = 0;
    for worker in workers {
        let (mut l, body) = worker.await??;
        latencies.append(&mut l);
        body_bytes = body;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    Ok(EdgeLoad {
        per_second: requests as f64 / elapsed,
        p50: at(0.50),
        p99: at(0.99),
        body_bytes,
    })
}

/// Forwards bytes both ways; each request (the first client bytes after a
/// response) waits `delay` before it reaches the server.
async fn delay_proxy(upstream: &str, delay: Duration) -> Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    println!("{}", listener.local_addr()?.port());
    std::io::stdout().flush()?;
    loop {
        let (client, _) = listener.accept().await?;
        let upstream = upstream.to_string();
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(&upstream).await else {
                return;
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let (mut client_read, mut client_write) = client.into_split();
            let (mut server_read, mut server_write) = server.into_split();
            let new_request = Arc::new(AtomicBool::new(true));
            let flag = new_request.clone();
            let up = async move {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = match client_read.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if new_request.swap(false, Ordering::SeqCst) {
                        tokio::time::sleep(delay).await;
                    }
                    if server_write.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                let _ = server_write.shutdown().await;
            };
            let down = async move {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = match server_read.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    flag.store(true, Ordering::SeqCst);
                    if client_write.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                let _ = client_write.shutdown().await;
            };
            tokio::join!(up, down);
        });
    }
}

/// Size, compile, load and instantiate times of one component.
struct ComponentFigures {
    size: usize,
    gzip: usize,
    compile: f64,
    load: f64,
    instantiate: f64,
}

impl ComponentFigures {
    /// Table rows, with a second column when `before` is given.
    fn rows(&self, before: Option<&ComponentFigures>) -> String {
        let row = |what: &str, f: &dyn Fn(&ComponentFigures) -> String| match before {
            Some(b) => format!("| {what} | {} | {} |\n", f(self), f(b)),
            None => format!("| {what} | {} |\n", f(self)),
        };
        [
            row("size", &|c| {
                format!("{} bytes ({} gzipped)", c.size, c.gzip)
            }),
            row("compile with Cranelift", &|c| {
                format!("{:.1} ms", c.compile * 1e3)
            }),
            row("load the precompiled artifact", &|c| {
                format!("{:.2} ms", c.load * 1e3)
            }),
            row("instantiate (from `InstancePre`)", &|c| {
                format!("{:.1} µs", c.instantiate * 1e6)
            }),
        ]
        .concat()
    }
}

/// Measures a component: medians of `runs` compiles, of loads of the
/// precompiled artifact, and of 20 instantiations. `full_wasi` links all of
/// wasmtime-wasi (for builds that import more than the proxy world).
async fn component_figures(path: &Path, runs: usize, full_wasi: bool) -> Result<ComponentFigures> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let gz = Command::new("sh")
        .arg("-c")
        .arg(format!("gzip -9c {} | wc -c", path.display()))
        .output()?;
    let gzip: usize = String::from_utf8_lossy(&gz.stdout)
        .trim()
        .parse()
        .with_context(|| format!("gzip gave no size for {}", path.display()))?;
    let engine = new_engine()?;
    let mut compile = Vec::new();
    let mut component = None;
    for _ in 0..runs {
        let t = Instant::now();
        component = Some(Component::new(&engine, &bytes).map_err(|e| anyhow::anyhow!("{e}"))?);
        compile.push(Sample {
            wall: t.elapsed().as_secs_f64(),
            ..Sample::default()
        });
    }
    let serialized = component
        .unwrap()
        .serialize()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut load = Vec::new();
    let mut loaded = None;
    for _ in 0..runs.max(5) {
        let t = Instant::now();
        // SAFETY: produced just above by the same engine.
        loaded = Some(
            unsafe { Component::deserialize(&engine, &serialized) }
                .map_err(|e| anyhow::anyhow!("{e}"))?,
        );
        load.push(Sample {
            wall: t.elapsed().as_secs_f64(),
            ..Sample::default()
        });
    }
    let loaded = loaded.unwrap();
    let mut instantiate = Vec::new();
    if full_wasi {
        let pre = full_wasi_instance_pre(&engine, &loaded)?;
        for _ in 0..20 {
            let mut store = new_store(&engine, &HostOptions::default());
            let t = Instant::now();
            let _instance = pre.instantiate_async(&mut store).await?;
            instantiate.push(Sample {
                wall: t.elapsed().as_secs_f64(),
                ..Sample::default()
            });
        }
    } else {
        let runtime = Runtime::from_compiled(engine, loaded)?;
        for _ in 0..20 {
            let t = Instant::now();
            let _instance = runtime.instance(&HostOptions::default()).await?;
            instantiate.push(Sample {
                wall: t.elapsed().as_secs_f64(),
                ..Sample::default()
            });
        }
    }
    Ok(ComponentFigures {
        size: bytes.len(),
        gzip,
        compile: median(&compile).wall,
        load: median(&load).wall,
        instantiate: median(&instantiate).wall,
    })
}
