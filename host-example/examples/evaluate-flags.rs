//! A Rust service evaluating LaunchDarkly flags kept in DynamoDB, through the
//! ld-dynamodb-store component, with LaunchDarkly's SDK in daemon mode.
//!
//! LD_DYNAMODB_TABLE=flags cargo run -p ld-dynamodb-host --features launchdarkly \
//!     --example evaluate-flags -- FLAG-KEY CONTEXT-KEY...
//!
//! Region, endpoint and credentials come from the usual AWS settings.
use std::sync::Arc;

use launchdarkly_server_sdk::{
    Client, ConfigBuilder, ContextBuilder, NullEventProcessorBuilder, PersistentDataStoreBuilder,
};
use ld_dynamodb_host::launchdarkly::PersistentStoreFactory;
use ld_dynamodb_host::{embed::default_component_path, DataStore, Runtime};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (flag, contexts) = args.split_first().expect("usage: FLAG-KEY CONTEXT-KEY...");
    let component = match std::env::var_os("LD_DYNAMODB_COMPONENT") {
        Some(path) => path.into(),
        None => default_component_path()?,
    };
    // Compiled once; a pool of instances serves the SDK's reads.
    let runtime = Arc::new(Runtime::load(&component)?);
    let mut store = DataStore::builder(std::env::var("LD_DYNAMODB_TABLE")?);
    if let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL") {
        store = store.endpoint(endpoint);
    }
    let factory = PersistentStoreFactory::new(store.build(runtime).await?);
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
    for key in contexts {
        let context = ContextBuilder::new(key)
            .build()
            .map_err(anyhow::Error::msg)?;
        let value = client.json_variation(&context, flag, serde_json::Value::Null);
        println!(
            "{}",
            serde_json::json!({ "context": key, "flag": flag, "value": value })
        );
    }
    client.close();
    Ok(())
}
