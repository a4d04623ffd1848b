//! The flag evaluator component beside LaunchDarkly's Node server SDK
//! evaluating the same data in memory: evaluations and all-flags-state per
//! second for 100, 1,000 and 10,000 flags and the ratio of ours (snapshot
//! cached) to the SDK's, one cold call (open, snapshot, evaluate) at 10 and
//! 50 ms of added latency, and the component's size, compile and
//! instantiation times.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use serde_json::{json, Value};

use ld_dynamodb_host::data;
use ld_dynamodb_host::embed::{HostOptions, Runtime, StoreConfig};
use ld_dynamodb_host::evaluator::{Evaluator, EvaluatorRuntime, FlagFilter, StateOptions};
use ld_dynamodb_tests::proxy::{Action, Proxy};

use super::measure::own_cpu;

const CONTEXT: &str = r#"{"kind":"user","key":"user-42","country":"fr","email":"a@example.com"}"#;

/// `n` flags, each with a rule, a segment match and a percentage rollout;
/// one in ten (the evaluated `flag-0000` among them) with a `matches` rule
/// too, so that a table of more flags holds more patterns.
fn dataset(n: usize) -> Value {
    let flags: serde_json::Map<String, Value> = (0..n)
        .map(|i| {
            let key = format!("flag-{i:04}");
            let mut rules = vec![
                json!({"id": "r0", "trackEvents": false, "variation": 1, "clauses": [
                    {"attribute": "country", "op": "in", "values": ["de", "es"], "negate": false}]}),
                json!({"id": "r1", "trackEvents": false, "variation": 0, "clauses": [
                    {"attribute": "", "op": "segmentMatch", "values": ["beta"], "negate": false}]}),
            ];
            if i % 10 == 0 {
                rules.push(json!({"id": "r2", "trackEvents": false, "variation": 1, "clauses": [
                    {"attribute": "email", "op": "matches", "values": ["^admin@"], "negate": false}]}));
            }
            let flag = json!({"key": key, "version": 1, "on": true, "salt": key,
                "variations": [true, false], "offVariation": 1, "trackEvents": false,
                "targets": [{"values": ["user-1"], "variation": 1}], "prerequisites": [],
                "rules": rules,
                "fallthrough": {"rollout": {"variations": [
                    {"variation": 0, "weight": 50000}, {"variation": 1, "weight": 50000}]}},
                "clientSideAvailability": {"usingEnvironmentId": i % 2 == 0, "usingMobileKey": true}});
            (key, flag)
        })
        .collect();
    let segment = json!({"key": "beta", "version": 1, "included": ["user-7"], "excluded": [],
        "rules": [{"id": "s", "clauses": [{"attribute": "email", "op": "endsWith",
            "values": ["@corp.io"], "negate": false}]}], "salt": "beta"});
    json!({ "flags": flags, "segments": { "beta": segment } })
}

fn config(endpoint: &str, table: &str) -> StoreConfig {
    super::store_config(endpoint, table, Some("bench"))
}

async fn open(runtime: &EvaluatorRuntime, config: &StoreConfig) -> Result<Evaluator> {
    runtime
        .open(&HostOptions::default(), config)
        .await
        .context("open")
}

async fn evaluate(evaluator: &mut Evaluator) -> Result<()> {
    evaluate_flag(evaluator, "flag-0000").await
}

/// A flag the table does not hold: the call, the context (parsed before)
/// and the default, the reason written, nothing evaluated.
async fn evaluate_unknown(evaluator: &mut Evaluator) -> Result<()> {
    evaluate_flag(evaluator, "no-such-flag").await
}

/// The floor of any call through the component here: `identify` with
/// events off, one string lowered, the context found among those parsed,
/// nothing queued, nothing returned.
async fn call_floor(evaluator: &mut Evaluator) -> Result<()> {
    evaluator.identify(CONTEXT).await.context("identify")
}

/// `flag-0000` for one of 8 contexts in turn (users 0 to 7 of the same
/// shape), more than the evaluator keeps parsed: each call parses its context.
async fn evaluate_new_context(evaluator: &mut Evaluator) -> Result<()> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed) % 8;
    let context = CONTEXT.replace("user-42", &format!("user-4{n}"));
    call_evaluate(evaluator, "flag-0000", &context).await
}

async fn evaluate_flag(evaluator: &mut Evaluator, flag: &str) -> Result<()> {
    call_evaluate(evaluator, flag, CONTEXT).await
}

async fn call_evaluate(evaluator: &mut Evaluator, flag: &str, context: &str) -> Result<()> {
    evaluator
        .evaluate(flag, context, "false")
        .await
        .context("evaluate")?;
    Ok(())
}

async fn state(evaluator: &mut Evaluator) -> Result<()> {
    let options = StateOptions {
        filter: FlagFilter::All,
        with_reasons: true,
        details_only_for_tracked_flags: false,
    };
    evaluator
        .all_flags_state(CONTEXT, options)
        .await
        .context("all-flags-state")?;
    Ok(())
}

/// The least time a rate of ours is measured over: a few thousand calls of a
/// few microseconds would be timed over milliseconds, at the mercy of the
/// scheduler.
const WINDOW: Duration = Duration::from_secs(1);

/// Calls per second, by the wall clock and by the CPU time of the process
/// that made them.
#[derive(Debug, Clone, Copy)]
struct Rate {
    /// Per second of wall-clock time.
    wall: f64,
    /// Per second of the process's CPU time (user and system, all its
    /// threads): the other work on a shared machine does not count in it.
    cpu: f64,
}

/// Calls per second of `f`: at least `calls` calls and at least [`WINDOW`].
async fn per_second<F>(evaluator: &mut Evaluator, calls: usize, f: F) -> Result<Rate>
where
    F: for<'e> Fn(
        &'e mut Evaluator,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + 'e>>,
{
    let (started, cpu) = (Instant::now(), own_cpu()?);
    let mut made = 0;
    while made < calls || started.elapsed() < WINDOW {
        f(evaluator).await?;
        made += 1;
    }
    Ok(Rate {
        wall: made as f64 / started.elapsed().as_secs_f64(),
        cpu: made as f64 / (own_cpu()? - cpu),
    })
}

fn node(data_file: &Path, evaluations: usize, states: usize) -> Result<Value> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let spec = json!({"data_file": data_file, "context": serde_json::from_str::<Value>(CONTEXT)?,
        "flag": "flag-0000", "evaluations": evaluations, "states": states});
    let mut command = std::process::Command::new("node");
    command.arg(root.join("bench/node_eval.cjs")).env(
        "LD_TEST_NODE_MODULES",
        root.join(".tools/node/node_modules"),
    );
    super::run_script(command, &spec, "Node")
}

/// Calls timed per table size: evaluations and all-flags-state of ours with
/// a snapshot per call (none at 10,000 flags: each call would read them all)
/// and ours cached (at least these, over at least [`WINDOW`]), the Node SDK's
/// (a second or more at its rates here).
struct Calls {
    flags: usize,
    uncached: Option<(usize, usize)>,
    cached: (usize, usize),
    node: (usize, usize),
}

const SIZES: [Calls; 3] = [
    Calls {
        flags: 100,
        uncached: Some((200, 50)),
        cached: (2000, 200),
        node: (200_000, 3000),
    },
    Calls {
        flags: 1000,
        uncached: Some((200, 50)),
        cached: (2000, 200),
        node: (200_000, 300),
    },
    Calls {
        flags: 10_000,
        uncached: None,
        cached: (2000, 20),
        node: (100_000, 30),
    },
];

/// The report section.
pub async fn report(store: &Runtime, evaluator_path: &Path, dynalite: &str) -> Result<String> {
    let bytes = std::fs::metadata(evaluator_path)?.len();
    let started = Instant::now();
    let runtime = EvaluatorRuntime::load_with_cache(evaluator_path, None)?;
    let compile = started.elapsed();
    let mut text = format!(
        "## The flag evaluator\n\n\
         `target/component/flag-evaluator.wasm` (the evaluator with the store linked in): \
         {bytes} bytes; Cranelift compile {:.0} ms.\n\n\
         Calls per second of CPU time (each process's user and system time, all its threads: \
         ours from getrusage, the Node SDK's from `process.cpuUsage()`), so that the other \
         work on a shared machine does not count, and per second of wall-clock time:\n\n\
         | flags | host | evaluations per CPU s | all-flags-state per CPU s | \
         evaluations/s (wall) | all-flags-state/s (wall) |\n|---|---|---|---|---|---|\n",
        compile.as_secs_f64() * 1e3
    );
    let mut instantiate = Vec::new();
    let mut ratios = String::new();
    let mut breakdown = String::new();
    for calls in SIZES {
        let size = calls.flags;
        let table = format!("eval-bench-{}-{size}", std::process::id());
        let data_text = dataset(size).to_string();
        let mut session = store
            .instance(&HostOptions::default())
            .await?
            .open(&config(dynalite, &table))
            .await?;
        session.create_table().await?;
        session.init(&data::all_data(&data_text)?).await?;
        for _ in 0..10 {
            let started = Instant::now();
            open(&runtime, &config(dynalite, &table)).await?;
            instantiate.push(started.elapsed().as_secs_f64());
        }
        if let Some((n_evaluations, n_states)) = calls.uncached {
            let mut evaluator = open(&runtime, &config(dynalite, &table)).await?;
            let evaluations =
                per_second(&mut evaluator, n_evaluations, |e| Box::pin(evaluate(e))).await?;
            let states = per_second(&mut evaluator, n_states, |e| Box::pin(state(e))).await?;
            // Its CPU time leaves out dynalite's, hence the wall clock only.
            text.push_str(&format!(
                "| {size} | this evaluator (wasmtime, one snapshot of the table per call) | \
                 - | - | {:.0} | {:.0} |\n",
                evaluations.wall, states.wall
            ));
        }
        let mut cached = runtime
            .open_with_cache(
                &HostOptions::default(),
                &config(dynalite, &table),
                Some(Duration::from_secs(60)),
            )
            .await
            .context("open")?;
        // The first call reads and parses the snapshot (the SDK's data is
        // loaded before it is timed too).
        evaluate(&mut cached).await?;
        let (n_evaluations, n_states) = calls.cached;
        let evaluations = per_second(&mut cached, n_evaluations, |e| Box::pin(evaluate(e))).await?;
        let states = per_second(&mut cached, n_states, |e| Box::pin(state(e))).await?;
        let unknown = per_second(&mut cached, n_evaluations, |e| {
            Box::pin(evaluate_unknown(e))
        })
        .await?;
        let new_context = per_second(&mut cached, n_evaluations, |e| {
            Box::pin(evaluate_new_context(e))
        })
        .await?;
        let floor = per_second(&mut cached, n_evaluations, |e| Box::pin(call_floor(e))).await?;
        breakdown.push_str(&format!(
            "| {size} | {:.2} µs | {:.2} µs | {:.2} µs | {:.2} µs | {:.2} µs | {:.2} µs |\n",
            1e6 / evaluations.cpu,
            1e6 / floor.cpu,
            1e6 / unknown.cpu,
            1e6 / evaluations.cpu - 1e6 / unknown.cpu,
            1e6 / new_context.cpu,
            1e6 / states.cpu / size as f64,
        ));
        text.push_str(&format!(
            "| {size} | this evaluator, snapshot cached (`cache-ttl-ms`) | {:.0} | {:.0} | {:.0} | {:.0} |\n",
            evaluations.cpu, states.cpu, evaluations.wall, states.wall
        ));
        let file = std::env::temp_dir().join(format!("ld-eval-bench-{size}.json"));
        std::fs::write(&file, &data_text)?;
        let theirs = node(&file, calls.node.0, calls.node.1)?;
        let rate = |name: &str| Rate {
            wall: theirs[format!("{name}_per_s")].as_f64().unwrap_or(f64::NAN),
            cpu: theirs[format!("{name}_per_cpu_s")]
                .as_f64()
                .unwrap_or(f64::NAN),
        };
        let (node_evaluations, node_states) = (rate("evaluations"), rate("states"));
        text.push_str(&format!(
            "| {size} | LaunchDarkly's Node server SDK (in memory) | {:.0} | {:.0} | {:.0} | {:.0} |\n",
            node_evaluations.cpu, node_states.cpu, node_evaluations.wall, node_states.wall
        ));
        for (call, ours, theirs) in [
            ("evaluate", evaluations.cpu, node_evaluations.cpu),
            ("all-flags-state", states.cpu, node_states.cpu),
        ] {
            ratios.push_str(&format!(
                "| {size} | {call} | {ours:.0} | {theirs:.0} | {:.2} |\n",
                ours / theirs
            ));
        }
    }
    text.push_str(&format!(
        "\nOurs (snapshot cached) ÷ the Node SDK's, calls per CPU second:\n\n\
         | flags | call | ours | Node SDK | ratio |\n|---|---|---|---|---|\n{ratios}\n\
         Where the time of one call goes (ours, snapshot cached): an `evaluate` of a flag the \
         table does not hold is the call itself (wasmtime's async call, the strings lowered \
         and lifted, the context found among those parsed before, the default parsed, the \
         reason written) with no \
         evaluation; the rest of an `evaluate` is the engine's evaluation of the flag. \
         The evaluator keeps the last 4 contexts it parsed, by their JSON text (every other \
         call here has the same context); `evaluate` with a new context each call (8 in \
         turn) parses it every time. The floor of any call is `identify` with events off (one \
         string lowered, the context found among those parsed, nothing queued or returned). \
         `all-flags-state` is shown per flag it answers. Per call, in CPU time:\n\n\
         | flags | evaluate | the floor of a call (identify, events off) | \
         of evaluate, the call (unknown flag) | of it, the evaluation | \
         evaluate, a new context each call | all-flags-state per flag |\n\
         |---|---|---|---|---|---|---|\n{breakdown}"
    ));
    instantiate.sort_by(|a, b| a.total_cmp(b));
    text.push_str(&format!(
        "\nInstantiate and open an evaluator (from the compiled component): median {:.2} ms.\n\n\
         One cold call (a new instance, open, then one evaluation) of 100 flags, through a proxy \
         that adds latency to every request to dynalite:\n\n\
         | added latency | wall | DynamoDB requests |\n|---|---|---|\n",
        instantiate[instantiate.len() / 2] * 1e3
    ));
    let table = format!("eval-bench-{}-100", std::process::id());
    for delay in [10u64, 50] {
        let proxy = Proxy::start(dynalite, move |_| {
            Action::Stall(Duration::from_millis(delay))
        })
        .await;
        let started = Instant::now();
        let mut evaluator = open(&runtime, &config(&proxy.endpoint, &table)).await?;
        evaluate(&mut evaluator).await?;
        text.push_str(&format!(
            "| {delay} ms | {:.1} ms | {} |\n",
            started.elapsed().as_secs_f64() * 1e3,
            proxy.requests()
        ));
    }
    Ok(text)
}
