//! The flag evaluator component beside LaunchDarkly's Node server SDK
//! evaluating the same data in memory: evaluations and all-flags-state per
//! second for 100 and 1,000 flags, one cold call (open, snapshot, evaluate)
//! at 10 and 50 ms of added latency, and the component's size, compile and
//! instantiation times.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde_json::{json, Value};

use ld_dynamodb_host::data;
use ld_dynamodb_host::embed::{HostOptions, Runtime, StoreConfig};
use ld_dynamodb_host::evaluator::{Evaluator, EvaluatorRuntime, FlagFilter, StateOptions};
use ld_dynamodb_tests::proxy::{Action, Proxy};

const CONTEXT: &str = r#"{"kind":"user","key":"user-42","country":"fr","email":"a@example.com"}"#;

/// `n` flags, each with a rule, a segment match and a percentage rollout.
fn dataset(n: usize) -> Value {
    let flags: serde_json::Map<String, Value> = (0..n)
        .map(|i| {
            let key = format!("flag-{i:04}");
            let flag = json!({"key": key, "version": 1, "on": true, "salt": key,
                "variations": [true, false], "offVariation": 1, "trackEvents": false,
                "targets": [{"values": ["user-1"], "variation": 1}], "prerequisites": [],
                "rules": [
                    {"id": "r0", "trackEvents": false, "variation": 1, "clauses": [
                        {"attribute": "country", "op": "in", "values": ["de", "es"], "negate": false}]},
                    {"id": "r1", "trackEvents": false, "variation": 0, "clauses": [
                        {"attribute": "", "op": "segmentMatch", "values": ["beta"], "negate": false}]}],
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
    match runtime.open(&HostOptions::default(), config).await? {
        Ok(evaluator) => Ok(evaluator),
        Err(e) => bail!("open: {e:?}"),
    }
}

async fn evaluate(evaluator: &mut Evaluator) -> Result<()> {
    if let Err(e) = evaluator.evaluate("flag-0000", CONTEXT, "false").await? {
        bail!("evaluate: {e:?}");
    }
    Ok(())
}

async fn state(evaluator: &mut Evaluator) -> Result<()> {
    let options = StateOptions {
        filter: FlagFilter::All,
        with_reasons: true,
        details_only_for_tracked_flags: false,
    };
    if let Err(e) = evaluator.all_flags_state(CONTEXT, options).await? {
        bail!("all-flags-state: {e:?}");
    }
    Ok(())
}

/// Calls per second of `calls` calls of `f`.
async fn per_second<F>(evaluator: &mut Evaluator, calls: usize, f: F) -> Result<f64>
where
    F: for<'e> Fn(
        &'e mut Evaluator,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + 'e>>,
{
    let started = Instant::now();
    for _ in 0..calls {
        f(evaluator).await?;
    }
    Ok(calls as f64 / started.elapsed().as_secs_f64())
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

/// The report section.
pub async fn report(store: &Runtime, evaluator_path: &Path, dynalite: &str) -> Result<String> {
    let bytes = std::fs::metadata(evaluator_path)?.len();
    let started = Instant::now();
    let runtime = EvaluatorRuntime::load_with_cache(evaluator_path, None)?;
    let compile = started.elapsed();
    let mut text = format!(
        "## The flag evaluator\n\n\
         `target/component/flag-evaluator.wasm` (the evaluator composed with the store): \
         {bytes} bytes; Cranelift compile {:.0} ms.\n\n\
         | flags | host | evaluations/s | all-flags-state/s |\n|---|---|---|---|\n",
        compile.as_secs_f64() * 1e3
    );
    let mut instantiate = Vec::new();
    for size in [100, 1000] {
        let table = format!("eval-bench-{}-{size}", std::process::id());
        let data_text = dataset(size).to_string();
        let mut session = super::check(
            store
                .instance(&HostOptions::default())
                .await?
                .open(&config(dynalite, &table))
                .await?,
        )?;
        super::check(session.create_table().await?)?;
        super::check(session.init(&data::all_data(&data_text)?).await?)?;
        for _ in 0..10 {
            let started = Instant::now();
            open(&runtime, &config(dynalite, &table)).await?;
            instantiate.push(started.elapsed().as_secs_f64());
        }
        let mut evaluator = open(&runtime, &config(dynalite, &table)).await?;
        let evaluations = per_second(&mut evaluator, 200, |e| Box::pin(evaluate(e))).await?;
        let states = per_second(&mut evaluator, 50, |e| Box::pin(state(e))).await?;
        text.push_str(&format!(
            "| {size} | this evaluator (wasmtime, one snapshot of the table per call) | {evaluations:.0} | {states:.0} |\n"
        ));
        let mut cached = match runtime
            .open_with_cache(
                &HostOptions::default(),
                &config(dynalite, &table),
                Some(Duration::from_secs(60)),
            )
            .await?
        {
            Ok(evaluator) => evaluator,
            Err(e) => bail!("open: {e:?}"),
        };
        let evaluations = per_second(&mut cached, 2000, |e| Box::pin(evaluate(e))).await?;
        let states = per_second(&mut cached, 200, |e| Box::pin(state(e))).await?;
        text.push_str(&format!(
            "| {size} | this evaluator, snapshot cached (`cache-ttl-ms`) | {evaluations:.0} | {states:.0} |\n"
        ));
        let file = std::env::temp_dir().join(format!("ld-eval-bench-{size}.json"));
        std::fs::write(&file, &data_text)?;
        let theirs = node(&file, 20_000, 200)?;
        text.push_str(&format!(
            "| {size} | LaunchDarkly's Node server SDK (in memory) | {:.0} | {:.0} |\n",
            theirs["evaluations_per_s"].as_f64().unwrap_or(f64::NAN),
            theirs["states_per_s"].as_f64().unwrap_or(f64::NAN)
        ));
    }
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
