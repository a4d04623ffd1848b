//! Loads the store component into wasmtime with WASI and `wasi:http`, and
//! calls the exported data store: the engine ([`engine`]), each instance's
//! host state ([`state`]), typed calls ([`session`]); here the component's
//! types, its configuration and the compiled [`Runtime`].

mod engine;
mod session;
mod state;

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use wasmtime::component::{Component, Linker};
use wasmtime::Engine;

use crate::cache;
use crate::connections::Pool;

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

pub use bindings::exports::ld_dynamodb::store::big_segment_store::MembershipEntry;
pub use bindings::exports::ld_dynamodb::store::types as wit;
use bindings::StoreExportsPre;
pub use ld_dynamodb_store::config::Credentials;
pub use wit::{
    Collection, InitReport, Item, KeyedItem, RetryPolicy, Snapshot, StoreError, Timeouts,
    UpsertOutcome,
};

/// Where and how to reach the table: the WIT `config` record. Unlike the
/// generated record, its `Debug` never shows the secret or the session token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// Name of an existing table (`namespace` S hash key, `key` S range key).
    pub table: String,
    /// Namespaces become `prefix:features`, ...; `None` or empty: no prefix.
    pub prefix: Option<String>,
    /// AWS region, also the signing region.
    pub region: String,
    /// Endpoint URL; default `https://dynamodb.<region>.amazonaws.com`.
    pub endpoint: Option<String>,
    /// The credentials the store opens with.
    pub credentials: Credentials,
    /// Retry settings; the component's defaults when `None`.
    pub retry: Option<RetryPolicy>,
    /// Request timeouts; the defaults when `None`.
    pub timeouts: Option<Timeouts>,
    /// BatchWriteItem requests Init keeps in flight (1 to 64); default 8.
    pub init_concurrency: Option<u32>,
    /// Init fails when no item was accepted for this many milliseconds;
    /// default 60000.
    pub init_no_progress_ms: Option<u32>,
}

impl StoreConfig {
    pub(crate) fn to_wit(&self) -> wit::Config {
        wit::Config {
            table: self.table.clone(),
            prefix: self.prefix.clone(),
            region: self.region.clone(),
            endpoint: self.endpoint.clone(),
            credentials: wit_credentials(&self.credentials),
            retry: self.retry,
            timeouts: self.timeouts,
            init_concurrency: self.init_concurrency,
            init_no_progress_ms: self.init_no_progress_ms,
        }
    }
}

pub(crate) fn wit_credentials(c: &Credentials) -> wit::Credentials {
    wit::Credentials {
        access_key_id: c.access_key_id.clone(),
        secret_access_key: c.secret_access_key.clone(),
        session_token: c.session_token.clone(),
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
        let config = StoreConfig {
            table: "flags".into(),
            prefix: None,
            region: "us-east-1".into(),
            endpoint: None,
            credentials: Credentials {
                access_key_id: "AKIDSHOWN".into(),
                secret_access_key: "secret-value".into(),
                session_token: Some("token-value".into()),
            },
            retry: None,
            timeouts: None,
            init_concurrency: None,
            init_no_progress_ms: None,
        };
        let shown = format!("{config:?} {:?}", config.credentials);
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
