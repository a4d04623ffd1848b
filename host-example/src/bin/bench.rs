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

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wasmtime::component::Component;

use ld_dynamodb_host::data;
use ld_dynamodb_host::embed::{
    default_component_path, describe, new_engine, Credentials, HostOptions, Runtime, Session,
    StoreConfig,
};

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
        } => {
            let bench = Bench {
                endpoint,
                server_pid,
                python,
                runs,
                next_table: 0,
            };
            let report = bench.run().await?;
            let text = format!("{report}\nCommand: `{command}`\n");
            std::fs::write(&out, &text)?;
            println!("{text}");
            Ok(())
        }
    }
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
fn own_cpu() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// Another process's user+sys CPU seconds, from /proc.
fn process_cpu(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line (11 and 12 after the name).
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (ticks(11) + ticks(12)) / hz
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
        StoreConfig {
            table: table.into(),
            prefix: None,
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
        }
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
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/python_store.py");
        let mut child = Command::new(&self.python)
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("start python")?;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(spec.to_string().as_bytes())?;
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!("the Python benchmark failed");
        }
        let runs: Vec<Value> = serde_json::from_slice(&out.stdout)?;
        Ok(runs
            .iter()
            .map(|r| Sample {
                wall: r["wall"].as_f64().unwrap_or(0.0),
                cpu: r["cpu"].as_f64().unwrap_or(0.0),
                requests: r["requests"].as_f64().unwrap_or(0.0),
                server_cpu: r["server_cpu"].as_f64().unwrap_or(0.0),
            })
            .collect())
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
    fn start(&self, store: &Session) -> Meter {
        Meter {
            requests: store.instance().requests_sent(),
            wall: Instant::now(),
            cpu: own_cpu(),
            server: process_cpu(self.server_pid),
        }
    }

    /// The sample of the operation started with [`Bench::start`].
    fn finish(&self, meter: Meter, store: &Session) -> Sample {
        Sample {
            wall: meter.wall.elapsed().as_secs_f64(),
            cpu: own_cpu() - meter.cpu,
            requests: (store.instance().requests_sent() - meter.requests) as f64,
            server_cpu: process_cpu(self.server_pid) - meter.server,
        }
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
        let path = default_component_path()?;
        let bytes = std::fs::read(&path).context("build the component first")?;
        let gz = Command::new("sh")
            .arg("-c")
            .arg(format!("gzip -9c {} | wc -c", path.display()))
            .output()?;
        let gzip: usize = String::from_utf8_lossy(&gz.stdout)
            .trim()
            .parse()
            .unwrap_or(0);

        // Compile and instantiate.
        let engine = new_engine()?;
        let mut compile = Vec::new();
        let mut component = None;
        for _ in 0..self.runs {
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
        for _ in 0..self.runs.max(5) {
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
        let runtime = Runtime::from_compiled(engine, loaded.unwrap())?;
        let mut instantiate = Vec::new();
        for _ in 0..20 {
            let t = Instant::now();
            let _instance = runtime.instance(&HostOptions::default()).await?;
            instantiate.push(Sample {
                wall: t.elapsed().as_secs_f64(),
                ..Sample::default()
            });
        }
        // The component before this round's build changes, as the previous
        // BENCHMARKS.md recorded it (commit ba6b244: wasm32-wasip2, LTO not
        // applied, 8 WASI imports outside the proxy world).
        report += "## Component\n\n\
                   | what | now (wasm32-unknown-unknown, LTO, opt-level \"z\", wasm-opt -Oz, proxy-world imports) | before (ba6b244, wasm32-wasip2, no LTO) |\n\
                   |---|---|---|\n";
        report += &format!(
            "| size | {} bytes ({} gzipped) | 581922 bytes (202181 gzipped) |\n",
            bytes.len(),
            gzip
        );
        report += &format!(
            "| compile with Cranelift | {:.1} ms | 214.5 ms |\n",
            median(&compile).wall * 1e3
        );
        report += &format!(
            "| load the precompiled artifact | {:.2} ms | 0.87 ms |\n",
            median(&load).wall * 1e3
        );
        report += &format!(
            "| instantiate (from `InstancePre`) | {:.1} µs | 19.5 µs |\n\n",
            median(&instantiate).wall * 1e6
        );

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
                    let meter = self.start(&store);
                    check(store.init(&collections).await?)?;
                    ours.push(self.finish(meter, &store));
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
            let meter = self.start(&store);
            let items = check(store.get_all("features").await?)?;
            get_all.push(self.finish(meter, &store));
            anyhow::ensure!(items.len() == 1000, "GetAll returned {}", items.len());
            let meter = self.start(&store);
            for key in &keys {
                anyhow::ensure!(
                    check(store.get("features", key).await?)?.is_some(),
                    "{key} is missing"
                );
            }
            gets.push(self.finish(meter, &store));
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
        Ok(report)
    }
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
