//! Loads the store component into wasmtime with WASI and `wasi:http`, and
//! calls the exported data store: the engine (`engine`), each instance's
//! host state (`state`), typed calls (`session`); here the component's
//! types, its configuration and the compiled [`Runtime`].

mod convert;
mod engine;
mod session;
mod state;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use wasmtime::component::{Component, Linker};
use wasmtime::Engine;

use crate::cache;
use crate::connections::Pool;

pub(crate) use convert::{credentials as wit_credentials, millis, store_error};
pub use engine::{new_engine, HostOptions, DEFAULT_CALL_TIMEOUT, DEFAULT_MEMORY_LIMIT};
pub use session::{context_hash, BigSegmentSession, Instance, Session};
pub(crate) use state::HostStore;
pub use state::{new_store, HostState};

pub(crate) mod bindings {
    //! Generated from the WIT, whose doc comments document the types.
    #![allow(missing_docs)]
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "store-exports",
        exports: { default: async },
        additional_derives: [PartialEq, Eq],
    });
}

pub(crate) use bindings::exports::ld_dynamodb::store::types as wit;
use bindings::StoreExportsPre;
pub use ld_dynamodb_store::big_segments::MembershipEntry;
use ld_dynamodb_store::config::ConfigInput;
pub use ld_dynamodb_store::config::{Credentials, RetryPolicy, Timeouts};
pub use ld_dynamodb_store::error::{ServiceError, StoreError, TransportError, TransportKind};
pub use ld_dynamodb_store::model::{
    Collection, InitReport, Item, ItemRef, KeyedItem, Snapshot, UpsertOutcome,
};

/// Where and how to reach the table: the WIT `config` record's settings in
/// the Rust API's units ([`Duration`]), kept as the store crate's own input
/// ([`ConfigInput`]), which also reads and writes the record's named settings.
/// The component validates them when a store opens ([`Instance::open`]); its
/// `Debug` never shows the secret or the session token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig(ConfigInput);

impl StoreConfig {
    /// A store on `table` (an existing table with a `namespace` S hash key
    /// and a `key` S range key) in `region` (also the signing region),
    /// signing with `credentials`; every other setting at its default.
    pub fn new(
        table: impl Into<String>,
        region: impl Into<String>,
        credentials: Credentials,
    ) -> StoreConfig {
        StoreConfig(ConfigInput {
            table: table.into(),
            region: region.into(),
            credentials: Some(credentials),
            ..ConfigInput::default()
        })
    }

    /// Namespaces become `prefix:features`, ...; `None` or empty: no prefix.
    pub fn with_prefix(mut self, prefix: Option<String>) -> Self {
        self.0.prefix = prefix;
        self
    }

    /// Another endpoint URL; `None`: `https://dynamodb.<region>.amazonaws.com`.
    pub fn with_endpoint(mut self, endpoint: Option<String>) -> Self {
        self.0.endpoint = endpoint;
        self
    }

    /// Another table.
    pub fn with_table(mut self, table: impl Into<String>) -> Self {
        self.0.table = table.into();
        self
    }

    /// Another region.
    pub fn with_region(mut self, region: impl Into<String>) -> Self {
        self.0.region = region.into();
        self
    }

    /// Other credentials to open with.
    pub fn with_credentials(mut self, credentials: Credentials) -> Self {
        self.0.credentials = Some(credentials);
        self
    }

    /// How failed requests are retried; the component's defaults when `None`.
    pub fn with_retry(mut self, retry: Option<RetryPolicy>) -> Self {
        self.0.retry = retry;
        self
    }

    /// Request timeouts; the defaults when `None`.
    pub fn with_timeouts(mut self, timeouts: Option<Timeouts>) -> Self {
        self.0.timeouts = timeouts;
        self
    }

    /// BatchWriteItem requests Init keeps in flight (1 to 64); default 8.
    pub fn with_init_concurrency(mut self, n: Option<u32>) -> Self {
        self.0.init_concurrency = n;
        self
    }

    /// Init fails when no item was accepted for this long; default 60 s.
    pub fn with_init_no_progress(mut self, limit: Option<Duration>) -> Self {
        self.0.init_no_progress_ms = limit.map(millis);
        self
    }

    /// A tuning setting by its WIT name (`ld_dynamodb_store::config::SETTING_NAMES`),
    /// such as a setting newer than this library's typed ones; an unknown
    /// name or a bad value is refused here, as the component would.
    pub fn with_setting(mut self, name: &str, value: &str) -> Result<Self, StoreError> {
        self.0.set(name, value)?;
        Ok(self)
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.0.table
    }

    /// The prefix, when one is set.
    pub fn prefix(&self) -> Option<&str> {
        self.0.prefix.as_deref()
    }

    /// The region.
    pub fn region(&self) -> &str {
        &self.0.region
    }

    /// The configured endpoint URL, when one is set.
    pub fn endpoint(&self) -> Option<&str> {
        self.0.endpoint.as_deref()
    }

    /// The credentials the store opens with.
    pub fn credentials(&self) -> &Credentials {
        self.0
            .credentials
            .as_ref()
            .expect("set by StoreConfig::new")
    }

    /// The settings as the WIT record.
    pub(crate) fn to_wit(&self) -> wit::Config {
        convert::config(&self.0)
    }
}

/// The component's file name.
pub const COMPONENT_FILE: &str = "ld_dynamodb_store.wasm";

/// The release store component, embedded at build time (`build.rs` reads
/// `target/component/ld_dynamodb_store.wasm`, which `scripts/build.sh` makes).
pub const EMBEDDED_COMPONENT: &[u8] = include_bytes!(env!("LD_DYNAMODB_EMBEDDED_COMPONENT"));

/// A compiled component, ready to instantiate many times.
pub struct Runtime {
    engine: Engine,
    pre: StoreExportsPre<HostState>,
}

impl Runtime {
    /// Compiles the component at `path`, or loads it from the compile cache
    /// ([`cache::default_dir`]; `None` disables it).
    pub fn load_with_cache(path: &Path, cache_dir: Option<&Path>) -> Result<Runtime> {
        let engine = new_engine()?;
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read the component at {}", path.display()))?;
        let component = cache::load(&engine, &bytes, cache_dir)
            .with_context(|| format!("component {}", path.display()))?;
        Self::from_compiled(engine, component)
    }

    /// [`Runtime::load_with_cache`] with the default cache folder.
    pub fn load(path: &Path) -> Result<Runtime> {
        Self::load_with_cache(path, cache::default_dir().as_deref())
    }

    /// The component at `path` when given, else the embedded one
    /// ([`EMBEDDED_COMPONENT`]), with the default cache folder.
    pub fn load_or_embedded(path: Option<&Path>) -> Result<Runtime> {
        match path {
            Some(path) => Self::load(path),
            None => {
                let engine = new_engine()?;
                let component =
                    cache::load(&engine, EMBEDDED_COMPONENT, cache::default_dir().as_deref())
                        .context("the embedded component")?;
                Self::from_compiled(engine, component)
            }
        }
    }

    /// Links an already compiled component (its engine must come from [`new_engine`]).
    /// The linker holds only the `wasi:http/proxy` world's interfaces: a
    /// component that imports anything more fails here.
    pub fn from_compiled(engine: Engine, component: Component) -> Result<Runtime> {
        let pre = StoreExportsPre::new(proxy_linker(&engine)?.instantiate_pre(&component)?)?;
        Ok(Runtime { engine, pre })
    }

    /// The engine the component was compiled with.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The interfaces the component imports, by name.
    pub fn imports(&self) -> Vec<String> {
        self.pre
            .instance_pre()
            .component()
            .component_type()
            .imports(&self.engine)
            .map(|(name, _)| name.to_string())
            .collect()
    }

    /// A fresh instance with its own host state and its own connections (they
    /// live on the async runtime that opened them, which may end with the instance).
    pub async fn instance(&self, options: &HostOptions) -> Result<Instance> {
        self.instance_with_connections(options, Arc::default())
            .await
    }

    /// A fresh instance sending through `connections`, a keep-alive pool that
    /// instances living on the same async runtime can share.
    pub async fn instance_with_connections(
        &self,
        options: &HostOptions,
        connections: Arc<Pool>,
    ) -> Result<Instance> {
        let HostStore {
            mut store,
            stderr,
            outbound,
            call_ticks,
        } = HostStore::new(&self.engine, options, connections);
        let bindings = self.pre.instantiate_async(&mut store).await?;
        Ok(Instance::new(store, bindings, stderr, outbound, call_ticks))
    }
}

/// A component linked with all of WASI 0.2 (`wasi:cli`, filesystem,
/// sockets, ...) and `wasi:http`, untyped: for builds that import more than
/// the proxy world (the benchmark's baseline, built for `wasm32-wasip2`).
/// Instantiate it in a store of [`new_store`].
pub fn full_wasi_instance_pre(
    engine: &Engine,
    component: &Component,
) -> Result<wasmtime::component::InstancePre<HostState>> {
    let mut linker = Linker::<HostState>::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    Ok(linker.instantiate_pre(component)?)
}

/// The linker of every component this host runs: only the `wasi:http/proxy`
/// world's interfaces, so a component that imports anything more fails to link.
pub(crate) fn proxy_linker(engine: &Engine) -> Result<Linker<HostState>> {
    let mut linker = Linker::<HostState>::new(engine);
    wasmtime_wasi_http::p2::add_to_linker_async(&mut linker)?;
    Ok(linker)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_of_a_config_shows_no_secret() {
        let config = StoreConfig::new(
            "flags",
            "us-east-1",
            Credentials {
                access_key_id: "AKIDSHOWN".into(),
                secret_access_key: "secret-value".into(),
                session_token: Some("token-value".into()),
            },
        );
        let shown = format!("{config:?} {:?}", config.credentials());
        assert!(shown.contains("AKIDSHOWN"), "{shown}");
        assert!(
            !shown.contains("secret-value") && !shown.contains("token-value"),
            "{shown}"
        );
    }

    #[test]
    fn context_hash_is_base64_of_sha256() {
        // Expected values computed independently with Python's hashlib and base64.
        assert_eq!(
            context_hash(""),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
        assert_eq!(
            context_hash("abc"),
            "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="
        );
    }
}
