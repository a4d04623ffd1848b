//! The host state of one instance: WASI and `wasi:http` contexts, the
//! outbound policy, the memory cap; and the wasmtime store that holds it.

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::engine::{HostOptions, EPOCH_TICK, MAX_TICKS};
use super::StoreConfig;
use crate::connections::Pool;
use crate::outbound::Outbound;
use crate::stderr::StderrTail;

/// Per-instance host state.
pub struct HostState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    outbound: Outbound,
    pub(crate) memory: MemoryLimit,
}

/// Caps linear memory and records the largest size granted (it never shrinks).
pub(crate) struct MemoryLimit {
    pub(crate) limit: usize,
    pub(crate) peak: usize,
    /// Whether a growth past the limit was refused.
    pub(crate) refused: bool,
}

impl wasmtime::ResourceLimiter for MemoryLimit {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.refused = true;
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
            ld_dynamodb_store::endpoint::resolve(config.region(), config.endpoint())
        {
            self.outbound.allow_configured(&endpoint.url());
        }
    }

    /// Lets the instance reach `origin` too (under
    /// [`Allow::ConfiguredEndpoints`]): a flag evaluator's events service.
    pub(crate) fn allow_origin(&mut self, origin: &str) {
        self.outbound.allow_configured(origin);
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

/// A wasmtime store with this host's state for one instance: its stderr (or
/// the captured tail), its outbound policy, its memory cap and call timeout.
pub(crate) struct HostStore {
    pub(crate) store: Store<HostState>,
    pub(crate) stderr: Option<StderrTail>,
    pub(crate) outbound: Outbound,
    /// The call timeout in epoch ticks.
    pub(crate) call_ticks: u64,
}

/// A wasmtime store with this host's state for one instance (its memory
/// cap and call timeout armed), with connections of its own.
pub fn new_store(engine: &Engine, options: &HostOptions) -> Store<HostState> {
    HostStore::new(engine, options, Arc::default()).store
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
                refused: false,
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
