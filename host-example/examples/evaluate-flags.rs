//! A Rust service evaluating LaunchDarkly flags kept in DynamoDB, through the
//! ld-dynamodb-store component, with LaunchDarkly's SDK in daemon mode.
//!
//! LD_DYNAMODB_TABLE=flags cargo run -p ld-dynamodb-host --features launchdarkly \
//!     --example evaluate-flags -- FLAG-KEY CONTEXT...
//!
//! A CONTEXT is a user's key, or LaunchDarkly's context JSON when it is a JSON
//! object: `{"kind":"org","key":"acme","plan":"pro"}`, multi-kind
//! `{"kind":"multi","user":{"key":"user-1"},"org":{"key":"acme"}}`, or the
//! legacy user shape.
//!
//! Region, endpoint and credentials come from the usual AWS settings, as the
//! CLI reads them (`ld_dynamodb_host::environment`); `LD_DYNAMODB_PREFIX` sets
//! the prefix. Prints one JSON line per context (value, variation, reason);
//! exits non-zero when the table cannot be read or holds no initialized data.
use std::process::ExitCode;
use std::sync::Arc;

use launchdarkly_server_sdk::{
    Client, ConfigBuilder, Context, ContextBuilder, NullEventProcessorBuilder,
    PersistentDataStoreBuilder,
};
use ld_dynamodb_host::environment::{self, TABLE_VAR};
use ld_dynamodb_host::launchdarkly::PersistentStoreFactory;
use ld_dynamodb_host::{DataStore, Runtime};
use serde_json::Value;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "evaluate-flags: error: {}",
                format!("{e:#}").replace('\n', " ")
            );
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((flag, contexts)) = args.split_first() else {
        anyhow::bail!("usage: evaluate-flags FLAG-KEY CONTEXT... (a key, or context JSON)");
    };
    // Every context is checked before anything is read.
    let contexts = contexts
        .iter()
        .map(|arg| context(arg))
        .collect::<anyhow::Result<Vec<_>>>()?;
    // The component built into the library, unless LD_DYNAMODB_COMPONENT names
    // another build. Compiled once; a pool of instances serves the SDK's reads.
    let component = std::env::var_os("LD_DYNAMODB_COMPONENT").map(std::path::PathBuf::from);
    let runtime = Arc::new(Runtime::load_or_embedded(component.as_deref())?);
    let mut builder = DataStore::builder(environment::var(TABLE_VAR).unwrap_or_default());
    if let Some(prefix) = environment::var("LD_DYNAMODB_PREFIX") {
        builder = builder.prefix(prefix);
    }
    let store = builder.build(runtime).await?;
    // The SDK would answer defaults from an unreadable or empty table: check first.
    if !store.is_initialized().await? {
        anyhow::bail!(
            "the table holds no initialized data (no $inited marker under this prefix): \
             load it with `ld-dynamodb init FILE`, or check {TABLE_VAR} and LD_DYNAMODB_PREFIX"
        );
    }
    let factory = PersistentStoreFactory::new(store);
    // Daemon mode: the SDK only reads the table, which LaunchDarkly's Relay
    // Proxy (or `ld-dynamodb init`) keeps up to date. Items are cached 30 s.
    let mut data_store = PersistentDataStoreBuilder::new(Arc::new(factory));
    data_store.cache_seconds(30);
    let config = ConfigBuilder::new("sdk-key-unused-in-daemon-mode")
        .daemon_mode(true)
        .data_store(&data_store)
        .event_processor(&NullEventProcessorBuilder::new())
        .build()?;
    let client = Client::build(config)?;
    client.start_with_default_executor();
    for (context, shown) in contexts {
        let detail = client.json_variation_detail(&context, flag, Value::Null);
        println!(
            "{}",
            serde_json::json!({
                "context": shown,
                "flag": flag,
                "value": detail.value,
                "variation": detail.variation_index,
                "reason": detail.reason,
            })
        );
    }
    client.close();
    Ok(())
}

/// A context from an argument: LaunchDarkly's context JSON when it is a JSON
/// object, else a user's key; and the argument as the output shows it.
fn context(arg: &str) -> anyhow::Result<(Context, Value)> {
    match serde_json::from_str::<Value>(arg) {
        Ok(json @ Value::Object(_)) => {
            let context = serde_json::from_value(json.clone())
                .map_err(|e| anyhow::anyhow!("invalid context {arg}: {e}"))?;
            Ok((context, json))
        }
        _ => {
            let context = ContextBuilder::new(arg)
                .build()
                .map_err(|e| anyhow::anyhow!("invalid context key {arg:?}: {e}"))?;
            Ok((context, Value::String(arg.into())))
        }
    }
}
