//! `ld-dynamodb`: a CLI over the ld-dynamodb-store component.

mod cli;
mod evaluate;
mod progress;
mod sync;

use std::io::{Read, Write};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Parser;
use serde_json::{json, Map, Value};

use cli::{BigSegmentsCommand, Cli, Command, DataCommand};
use ld_dynamodb_host::data::{self, Kind};
use ld_dynamodb_host::embed::{
    context_hash, HostOptions, InitReport, Instance, Item, Runtime, Session, StoreConfig,
    UpsertOutcome,
};
use ld_dynamodb_host::environment;
use ld_dynamodb_host::error::{explained, Error};
use ld_dynamodb_host::evaluator::{Evaluator, EvaluatorRuntime, StateOptions};
use ld_dynamodb_host::{CredentialSource, DataStore};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok((output, stored)) => {
            // A reader that went away (`ld-dynamodb all flags | head`) is not an
            // error: the output simply ends.
            let mut stdout = std::io::stdout().lock();
            let written = match output {
                Some(output) => writeln!(stdout, "{output}").and_then(|()| stdout.flush()),
                None => Ok(()),
            };
            match written {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    let _ = writeln!(
                        std::io::stderr(),
                        "ld-dynamodb: error: cannot write the output: {e}"
                    );
                    ExitCode::FAILURE
                }
                // A write that was refused (too large) is reported and fails.
                _ if !stored => {
                    let _ = writeln!(
                        std::io::stderr(),
                        "ld-dynamodb: error: the item was not stored"
                    );
                    ExitCode::FAILURE
                }
                _ => ExitCode::SUCCESS,
            }
        }
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "ld-dynamodb: error: {}", one_line(&e));
            // Input the evaluator refused, like a usage error.
            if e.downcast_ref::<evaluate::InvalidInput>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// The error and its causes on one line.
fn one_line(e: &anyhow::Error) -> String {
    format!("{e:#}").replace('\n', " ")
}

/// The store configuration from the options and the usual AWS settings
/// ([`environment`]): the region from `--region`, `AWS_REGION`,
/// `AWS_DEFAULT_REGION` or the profile, the endpoint from `--endpoint`,
/// `AWS_ENDPOINT_URL_DYNAMODB` or `AWS_ENDPOINT_URL`, the credentials from the
/// AWS default chain (environment, shared files with `AWS_PROFILE`, web
/// identity, ECS/EKS container credentials, IMDS).
async fn store_config(cli: &Cli) -> Result<StoreConfig> {
    let table = cli.table.clone().unwrap_or_default();
    environment::require_table(&table)?;
    let region = environment::require_region(cli.region.clone()).await?;
    let credentials = CredentialSource::default_chain(None)
        .await
        .current()
        .await?;
    Ok(StoreConfig::new(table, region, credentials.credentials)
        .with_prefix(cli.prefix.clone().filter(|p| !p.is_empty()))
        .with_endpoint(cli.endpoint.clone().or_else(environment::endpoint)))
}

fn read_input(file: &str) -> Result<String> {
    if file == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read stdin")?;
        Ok(text)
    } else {
        std::fs::read_to_string(file).with_context(|| format!("cannot read {file}"))
    }
}

/// Unwraps a store result: the store's error as a line that names what to
/// fix, a trap as its own error.
fn check<T>(result: Result<T, Error>, config: &StoreConfig) -> Result<T> {
    result.map_err(|e| match e {
        Error::Store(e) => anyhow::anyhow!(explained(e, config).to_string()),
        Error::Host(e) => e,
        other => other.into(),
    })
}

/// Runs the command: its output (none from a `sync` that ran until stopped),
/// and whether what it was asked to write was stored (false only for an item
/// over the size limit).
async fn run(cli: Cli) -> Result<(Option<Value>, bool)> {
    match &cli.command {
        Command::Sync(args) => {
            // The key is checked before anything else is set up.
            let key = sync::sdk_key()?;
            let store = data_store(&cli).await?;
            return Ok((sync::run(store, key, args).await?, true));
        }
        Command::Evaluate(args) => {
            let mut evaluator = evaluator(&cli, args.evaluator.evaluator.as_deref()).await?;
            let detail = evaluate::evaluate(
                &mut evaluator,
                &args.flag,
                &args.context,
                args.default.as_deref(),
            )
            .await?;
            return Ok((Some(detail), true));
        }
        Command::FlagsState(args) => {
            let mut evaluator = evaluator(&cli, args.evaluator.evaluator.as_deref()).await?;
            let options = StateOptions {
                filter: evaluate::filter(args.client_side, args.mobile),
                with_reasons: args.with_reasons,
                details_only_for_tracked_flags: args.details_only_for_tracked_flags,
            };
            let state = evaluate::flags_state(&mut evaluator, &args.context, options).await?;
            return Ok((Some(state), true));
        }
        Command::Data(_) | Command::BigSegments(_) => {}
    }
    let config = store_config(&cli).await?;
    // The component built into this binary, unless another one is named.
    let runtime = Runtime::load_or_embedded(cli.component.as_deref())?;
    // The component may reach only the configured endpoint (the default policy).
    let options = host_options(&cli);
    let instance = runtime.instance(&options).await?;
    match cli.command {
        Command::BigSegments(command) => {
            Ok((Some(big_segments(instance, &config, command).await?), true))
        }
        Command::Data(command) => {
            let (output, stored) = data_commands(instance, &config, command).await?;
            Ok((Some(output), stored))
        }
        Command::Sync(_) | Command::Evaluate(_) | Command::FlagsState(_) => {
            unreachable!("run above")
        }
    }
}

/// The host options of the global flags.
fn host_options(cli: &Cli) -> HostOptions {
    HostOptions::default().call_timeout(std::time::Duration::from_secs_f64(cli.call_timeout))
}

/// `$builder` (a `DataStore` or `Evaluator` builder) with the global flags'
/// host options, prefix, region and endpoint (the environment's when unset).
macro_rules! with_global_flags {
    ($builder:expr, $cli:expr) => {{
        let cli: &Cli = $cli;
        let mut builder = $builder.host_options(host_options(cli));
        if let Some(prefix) = &cli.prefix {
            builder = builder.prefix(prefix);
        }
        if let Some(region) = &cli.region {
            builder = builder.region(region);
        }
        if let Some(endpoint) = &cli.endpoint {
            builder = builder.endpoint(endpoint);
        }
        builder
    }};
}

/// A pooled store on the table the global flags and the environment name.
async fn data_store(cli: &Cli) -> Result<DataStore> {
    let runtime = Runtime::load_or_embedded(cli.component.as_deref())?;
    let builder = with_global_flags!(
        DataStore::builder(cli.table.clone().unwrap_or_default()),
        cli
    );
    Ok(builder.build(std::sync::Arc::new(runtime)).await?)
}

/// The flag evaluator (at `path`, else where [`evaluate::evaluator_path`]
/// looks) on the table the global flags and the environment name.
async fn evaluator(cli: &Cli, path: Option<&std::path::Path>) -> Result<Evaluator> {
    let runtime = EvaluatorRuntime::load(&evaluate::evaluator_path(path)?)?;
    let builder = with_global_flags!(
        Evaluator::builder(cli.table.clone().unwrap_or_default()),
        cli
    );
    Ok(builder.build(&runtime).await?)
}

/// An Init report as the CLI prints it.
pub(crate) fn init_report_json(report: &InitReport) -> Value {
    let dropped: Vec<Value> = report
        .dropped
        .iter()
        .map(|d| json!({ "kind": d.kind, "key": d.key }))
        .collect();
    json!({ "written": report.written, "deleted": report.deleted, "dropped": dropped })
}

async fn big_segments(
    instance: Instance,
    config: &StoreConfig,
    command: BigSegmentsCommand,
) -> Result<Value> {
    let mut store = check(instance.open_big_segments(config).await, config)?;
    match command {
        BigSegmentsCommand::Metadata => {
            let millis = check(store.get_metadata().await, config)?;
            Ok(json!({ "lastUpToDate": millis }))
        }
        BigSegmentsCommand::Membership { context, hash } => {
            let hash = if hash {
                context
            } else {
                context_hash(&context)
            };
            let entries = check(store.get_membership(&hash).await, config)?;
            Ok(entries.map_or(Value::Null, |entries| {
                Value::Object(
                    entries
                        .into_iter()
                        .map(|e| (e.segment_ref, Value::Bool(e.included)))
                        .collect(),
                )
            }))
        }
    }
}

async fn data_commands(
    instance: Instance,
    config: &StoreConfig,
    command: DataCommand,
) -> Result<(Value, bool)> {
    let mut store = check(instance.open(config).await, config)?;
    let output = match command {
        DataCommand::CreateTable => {
            let created = check(store.create_table().await, config)?;
            json!({ "table": config.table(), "created": created })
        }
        DataCommand::Init { file } => {
            let collections = data::all_data(&read_input(&file)?)?;
            let total = collections.iter().map(|c| c.items.len() as u64).sum();
            let progress =
                progress::InitProgress::start("init", total, store.instance().write_meter());
            let report = check(store.init(&collections).await, config)?;
            if let Some(progress) = progress {
                progress.finish(u64::from(report.written));
            }
            init_report_json(&report)
        }
        DataCommand::Get { kind, key, raw } => {
            let item = check(store.get(Kind::from(kind).namespace(), &key).await, config)?;
            match item {
                Some(item) if raw => data::raw_item(&item),
                Some(item) if !item.deleted => data::item_json(&item)?,
                _ => Value::Null,
            }
        }
        DataCommand::All { kind } => {
            let items = check(store.get_all(Kind::from(kind).namespace()).await, config)?;
            let mut out = Map::new();
            for keyed in items.into_iter().filter(|k| !k.item.deleted) {
                let value = data::item_json(&keyed.item)?;
                out.insert(keyed.key, value);
            }
            Value::Object(out)
        }
        DataCommand::Upsert { kind, file } => {
            let value: Value =
                serde_json::from_str(&read_input(&file)?).context("the item is not valid JSON")?;
            let keyed = data::keyed_item(&value)?;
            return upsert(&mut store, config, kind.into(), &keyed.key, &keyed.item).await;
        }
        DataCommand::Delete { kind, key, version } => {
            let tombstone = Item {
                version,
                deleted: true,
                json: String::new(),
            };
            return upsert(&mut store, config, kind.into(), &key, &tombstone).await;
        }
        DataCommand::Status => match store.is_initialized().await {
            Ok(initialized) => json!({ "initialized": initialized, "available": true }),
            Err(Error::Store(e)) => bail!("store unavailable: {}", explained(e, config)),
            Err(e) => return check(Err(e), config),
        },
    };
    Ok((output, true))
}

/// Writes `item` if it is newer; reports the outcome and what the table holds
/// for the key afterwards (`stored`: its version and whether it is a
/// tombstone, or null when the table has none). The flag is false when the
/// item was too large to be stored.
async fn upsert(
    store: &mut Session,
    config: &StoreConfig,
    kind: Kind,
    key: &str,
    item: &Item,
) -> Result<(Value, bool)> {
    let outcome = check(store.upsert(kind.namespace(), key, item).await, config)?;
    let (updated, name) = match outcome {
        UpsertOutcome::Applied => (true, "applied"),
        UpsertOutcome::NotNewer => (false, "not-newer"),
        UpsertOutcome::TooLarge => (false, "too-large"),
    };
    let stored = if updated {
        json!({ "version": item.version, "deleted": item.deleted })
    } else {
        match check(store.get(kind.namespace(), key).await, config)? {
            Some(held) => json!({ "version": held.version, "deleted": held.deleted }),
            None => Value::Null,
        }
    };
    let output = json!({
        "updated": updated,
        "outcome": name,
        "key": key,
        "requested": { "version": item.version, "deleted": item.deleted },
        "stored": stored,
    });
    Ok((output, outcome != UpsertOutcome::TooLarge))
}
