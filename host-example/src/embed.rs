//! Loads the component into wasmtime with WASI and `wasi:http`, and calls the
//! exported data store.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use wasmtime::component::{Component, Linker, ResourceAny, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::cache;
use crate::outbound::{Allow, Outbound};
use crate::pool::Pool;
use crate::stderr::StderrTail;

mod bindings {
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
use bindings::{StoreExports, StoreExportsPre};
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
    fn to_wit(&self) -> wit::Config {
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

fn wit_credentials(c: &Credentials) -> wit::Credentials {
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

/// Default cap of an instance's linear memory.
pub const DEFAULT_MEMORY_LIMIT: usize = 256 << 20;
/// Default wall-clock limit of one call into the component.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(300);
/// How often the engine's epoch advances (the granularity of the call timeout).
const EPOCH_TICK: Duration = Duration::from_millis(10);
/// The largest call timeout in ticks (about 350 years).
const MAX_TICKS: u64 = 1 << 40;

/// What each instance's host side may do.
#[derive(Debug, Clone)]
pub struct HostOptions {
    /// Origins the component may reach; by default only the configured endpoints.
    pub allow: Allow,
    /// Keep the tail of the component's stderr in memory (see [`Instance::stderr`])
    /// instead of streaming it to the host's stderr.
    pub capture_stderr: bool,
    /// Largest linear memory an instance may grow to, in bytes; past it the
    /// allocation fails and the call traps.
    pub memory_limit: usize,
    /// Wall-clock limit of one call (an export such as `init` or `get`); past it
    /// the guest is interrupted at its next check and the call traps.
    pub call_timeout: Duration,
}

impl Default for HostOptions {
    fn default() -> Self {
        HostOptions {
            allow: Allow::default(),
            capture_stderr: false,
            memory_limit: DEFAULT_MEMORY_LIMIT,
            call_timeout: DEFAULT_CALL_TIMEOUT,
        }
    }
}

/// A compiled component, ready to instantiate many times.
pub struct Runtime {
    engine: Engine,
    pre: StoreExportsPre<HostState>,
}

/// Per-instance host state.
pub struct HostState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    outbound: Outbound,
    memory: MemoryLimit,
}

/// Caps linear memory and records the largest size granted (it never shrinks).
struct MemoryLimit {
    limit: usize,
    peak: usize,
}

impl wasmtime::ResourceLimiter for MemoryLimit {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            return Ok(false);
        }
        self.peak = self.peak.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(true)
    }
}

impl HostState {
    /// Lets the instance reach the endpoint of `config` (under
    /// [`Allow::ConfiguredEndpoints`]).
    pub(crate) fn allow_endpoint_of(&mut self, config: &StoreConfig) {
        if let Ok(endpoint) =
            ld_dynamodb_store::config::endpoint(&config.region, config.endpoint.as_deref())
        {
            self.outbound.allow_configured(&endpoint.url());
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.outbound,
        }
    }
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
        Ok(Instance {
            store,
            bindings,
            stderr,
            outbound,
            call_ticks,
        })
    }
}

/// The linker of every component this host runs: only the `wasi:http/proxy`
/// world's interfaces, so a component that imports anything more fails to link.
pub(crate) fn proxy_linker(engine: &Engine) -> Result<Linker<HostState>> {
    let mut linker = Linker::<HostState>::new(engine);
    wasmtime_wasi_http::p2::add_to_linker_async(&mut linker)?;
    Ok(linker)
}

/// A wasmtime store with this host's state for one instance: its stderr (or
/// the captured tail), its outbound policy, its memory cap and call timeout.
pub(crate) struct HostStore {
    pub(crate) store: Store<HostState>,
    pub(crate) stderr: Option<StderrTail>,
    pub(crate) outbound: Outbound,
    /// The call timeout in epoch ticks.
    pub(crate) call_ticks: u64,
}

impl HostStore {
    pub(crate) fn new(engine: &Engine, options: &HostOptions, connections: Arc<Pool>) -> HostStore {
        let mut wasi = WasiCtx::builder();
        let stderr = options.capture_stderr.then(StderrTail::default);
        match &stderr {
            Some(tail) => wasi.stderr(tail.clone()),
            None => wasi.inherit_stderr(),
        };
        let outbound = Outbound::new(options.allow.clone(), connections);
        let state = HostState {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            outbound: outbound.clone(),
            memory: MemoryLimit {
                limit: options.memory_limit,
                peak: 0,
            },
        };
        let mut store = Store::new(engine, state);
        store.limiter(|state| &mut state.memory);
        let ticks = options.call_timeout.as_millis() / EPOCH_TICK.as_millis();
        // Capped: wasmtime adds the delta to the current epoch.
        let call_ticks = u64::try_from(ticks)
            .unwrap_or(MAX_TICKS)
            .clamp(1, MAX_TICKS);
        store.set_epoch_deadline(call_ticks);
        HostStore {
            store,
            stderr,
            outbound,
            call_ticks,
        }
    }
}

/// An engine set up as this host needs: epoch interruption on, with a
/// background thread that advances the epoch until the engine is dropped.
pub fn new_engine() -> Result<Engine> {
    let mut config = Config::new();
    config.epoch_interruption(true);
    let engine = Engine::new(&config)?;
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("ld-dynamodb-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .context("cannot start the epoch thread")?;
    Ok(engine)
}

/// One instance of the component.
pub struct Instance {
    store: Store<HostState>,
    bindings: StoreExports,
    stderr: Option<StderrTail>,
    outbound: Outbound,
    /// The call timeout in epoch ticks, armed before every call.
    call_ticks: u64,
}

/// An open data store inside an instance. The outer `Result` is a trap or host
/// failure; the inner one is the store's own error.
pub struct Session {
    instance: Instance,
    handle: ResourceAny,
}

impl Instance {
    /// Lets the instance reach the endpoint of `config` (under
    /// [`Allow::ConfiguredEndpoints`]) and arms the call timeout.
    fn prepare_open(&mut self, config: &StoreConfig) {
        self.store.data_mut().allow_endpoint_of(config);
        self.arm();
    }

    /// Arms the call timeout for the next call.
    fn arm(&mut self) {
        self.store.set_epoch_deadline(self.call_ticks);
    }

    /// Opens a data store (validates the config; sends nothing).
    pub async fn open(mut self, config: &StoreConfig) -> Result<Result<Session, StoreError>> {
        self.prepare_open(config);
        let opened = self
            .bindings
            .ld_dynamodb_store_data_store()
            .store()
            .call_open(&mut self.store, &config.to_wit())
            .await?;
        Ok(opened.map(|handle| Session {
            instance: self,
            handle,
        }))
    }

    /// Opens a Big Segment store (validates the config; sends nothing).
    pub async fn open_big_segments(
        mut self,
        config: &StoreConfig,
    ) -> Result<Result<BigSegmentSession, StoreError>> {
        self.prepare_open(config);
        let opened = self
            .bindings
            .ld_dynamodb_store_big_segment_store()
            .store()
            .call_open(&mut self.store, &config.to_wit())
            .await?;
        Ok(opened.map(|handle| BigSegmentSession {
            instance: self,
            handle,
        }))
    }

    /// The tail of what the component wrote to stderr, when captured.
    pub fn stderr(&self) -> String {
        self.stderr
            .as_ref()
            .map(StderrTail::contents)
            .unwrap_or_default()
    }

    /// Requests sent so far.
    pub fn requests_sent(&self) -> u64 {
        self.outbound.requests_sent()
    }

    /// The largest linear memory the component has had, in bytes.
    pub fn peak_memory(&self) -> usize {
        self.store.data().memory.peak
    }
}

impl Session {
    fn parts(&mut self) -> (&mut Store<HostState>, &StoreExports) {
        self.instance.arm();
        (&mut self.instance.store, &self.instance.bindings)
    }

    /// Replaces all data of the given kinds; the `$inited` marker is written last.
    pub async fn init(&mut self, data: &[Collection]) -> Result<Result<InitReport, StoreError>> {
        let handle = self.handle;
        let (store, b) = self.parts();
        Ok(b.ld_dynamodb_store_data_store()
            .store()
            .call_init(store, handle, data)
            .await?)
    }

    /// One item (tombstones included), or `None`.
    pub async fn get(&mut self, kind: &str, key: &str) -> Result<Result<Option<Item>, StoreError>> {
        let handle = self.handle;
        let (store, b) = self.parts();
        Ok(b.ld_dynamodb_store_data_store()
            .store()
            .call_get(store, handle, kind, key)
            .await?)
    }

    /// Every item of a kind (tombstones included).
    pub async fn get_all(&mut self, kind: &str) -> Result<Result<Vec<KeyedItem>, StoreError>> {
        let handle = self.handle;
        let (store, b) = self.parts();
        Ok(b.ld_dynamodb_store_data_store()
            .store()
            .call_get_all(store, handle, kind)
            .await?)
    }

    /// Every item of each kind and whether the `$inited` marker exists, read
    /// together (one round trip when each kind fits in a page).
    pub async fn snapshot(&mut self, kinds: &[String]) -> Result<Result<Snapshot, StoreError>> {
        let handle = self.handle;
        let (store, b) = self.parts();
        Ok(b.ld_dynamodb_store_data_store()
            .store()
            .call_snapshot(store, handle, kinds)
            .await?)
    }

    /// Writes the item if the table has no version of it or an older one.
    pub async fn upsert(
        &mut self,
        kind: &str,
        key: &str,
        item: &Item,
    ) -> Result<Result<UpsertOutcome, StoreError>> {
        let handle = self.handle;
        let (store, b) = self.parts();
        Ok(b.ld_dynamodb_store_data_store()
            .store()
            .call_upsert(store, handle, kind, key, item)
            .await?)
    }

    /// Signs every later request with `credentials` (refused with
    /// `InvalidConfig`, keeping the old ones, when the key id or secret is empty).
    pub async fn set_credentials(
        &mut self,
        credentials: &Credentials,
    ) -> Result<Result<(), StoreError>> {
        let handle = self.handle;
        let (store, b) = self.parts();
        Ok(b.ld_dynamodb_store_data_store()
            .store()
            .call_set_credentials(store, handle, &wit_credentials(credentials))
            .await?)
    }

    /// Whether an Init has completed (the `$inited` marker exists).
    pub async fn is_initialized(&mut self) -> Result<Result<bool, StoreError>> {
        let handle = self.handle;
        let (store, b) = self.parts();
        Ok(b.ld_dynamodb_store_data_store()
            .store()
            .call_is_initialized(store, handle)
            .await?)
    }

    /// Whether the table can be read.
    pub async fn is_available(&mut self) -> Result<bool> {
        let handle = self.handle;
        let (store, b) = self.parts();
        Ok(b.ld_dynamodb_store_data_store()
            .store()
            .call_is_available(store, handle)
            .await?)
    }

    /// Creates the table and waits until it is active; false if it existed.
    pub async fn create_table(&mut self) -> Result<Result<bool, StoreError>> {
        let handle = self.handle;
        let (store, b) = self.parts();
        Ok(b.ld_dynamodb_store_data_store()
            .store()
            .call_create_table(store, handle)
            .await?)
    }

    /// The instance this store lives in (stderr, request count).
    pub fn instance(&self) -> &Instance {
        &self.instance
    }
}

/// An open Big Segment store inside an instance.
pub struct BigSegmentSession {
    instance: Instance,
    handle: ResourceAny,
}

impl BigSegmentSession {
    /// The instance this store lives in (stderr, request count).
    pub fn instance(&self) -> &Instance {
        &self.instance
    }

    /// Signs every later request with `credentials` (see [`Session::set_credentials`]).
    pub async fn set_credentials(
        &mut self,
        credentials: &Credentials,
    ) -> Result<Result<(), StoreError>> {
        let i = &mut self.instance;
        i.arm();
        Ok(i.bindings
            .ld_dynamodb_store_big_segment_store()
            .store()
            .call_set_credentials(&mut i.store, self.handle, &wit_credentials(credentials))
            .await?)
    }

    /// When the Relay Proxy last synchronized, in epoch milliseconds.
    pub async fn get_metadata(&mut self) -> Result<Result<Option<u64>, StoreError>> {
        let i = &mut self.instance;
        i.arm();
        Ok(i.bindings
            .ld_dynamodb_store_big_segment_store()
            .store()
            .call_get_metadata(&mut i.store, self.handle)
            .await?)
    }

    /// The memberships of a context, by [`context_hash`].
    pub async fn get_membership(
        &mut self,
        context_hash: &str,
    ) -> Result<Result<Option<Vec<MembershipEntry>>, StoreError>> {
        let i = &mut self.instance;
        i.arm();
        Ok(i.bindings
            .ld_dynamodb_store_big_segment_store()
            .store()
            .call_get_membership(&mut i.store, self.handle, context_hash)
            .await?)
    }
}

/// The hash a Big Segment membership row is keyed by: standard base64 (with
/// padding) of the SHA-256 of the context key.
pub fn context_hash(context_key: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(context_key.as_bytes()))
}

/// One line describing a store error, as the CLI prints it.
pub fn describe(error: &StoreError) -> String {
    match error {
        StoreError::InvalidConfig(m) => format!("invalid configuration: {m}"),
        StoreError::InvalidInput(m) => format!("invalid input: {m}"),
        StoreError::Transport(t) => format!(
            "transport error: {} after {} attempt(s){}",
            t.code,
            t.attempts,
            t.detail
                .as_ref()
                .map(|d| format!(": {d}"))
                .unwrap_or_default()
        ),
        StoreError::Service(s) => format!(
            "DynamoDB error {}: {} (HTTP {}, {} attempt(s){})",
            s.code,
            s.message,
            s.status,
            s.attempts,
            s.request_id
                .as_ref()
                .map(|r| format!(", request id {r}"))
                .unwrap_or_default()
        ),
        StoreError::MalformedResponse(m) => format!("malformed response: {m}"),
    }
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
