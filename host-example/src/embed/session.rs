//! Typed calls on an instance of the store component: [`Instance`] opens a
//! data store ([`Session`]) or a Big Segment store ([`BigSegmentSession`]);
//! every call arms the call timeout first. Each call returns the store's
//! error as [`Error::Store`] and a trap or host failure as [`Error::Host`].

use std::convert::identity;

use wasmtime::component::ResourceAny;
use wasmtime::{Store, Trap};

use super::bindings::StoreExports;
use super::convert;
use super::engine::EPOCH_TICK;
use super::state::HostState;
use super::{
    wit, Collection, Credentials, InitReport, Item, KeyedItem, MembershipEntry, Snapshot,
    StoreConfig, UpsertOutcome,
};
use crate::error::{Error, Stopped};
use crate::outbound::{Outbound, WriteCounts};
use crate::stderr::StderrTail;

/// Opens the store resource of `$interface` with `$config` in `$instance`
/// (the endpoint allowed, the call timeout armed), as a `$session`.
macro_rules! open {
    ($instance:ident, $config:ident, $interface:ident, $session:ident) => {{
        let mut instance = $instance;
        instance.prepare_open($config);
        let opened = instance
            .bindings
            .$interface()
            .store()
            .call_open(&mut instance.store, &$config.to_wit())
            .await
            .map_err(|e| Error::Host(e.into()))?;
        opened
            .map(|handle| $session { instance, handle })
            .map_err(|e| Error::Store(convert::store_error(e)))
    }};
}

/// Calls `$method` of the store resource of `$interface` on this session's
/// handle, with the call timeout armed: a trap (as a [`Stopped`]) or host
/// failure is [`Error::Host`]; `$total` is the items an Init was given.
macro_rules! call {
    ($session:ident, $total:expr, $interface:ident, $method:ident $(, $arg:expr)*) => {{
        let instance = &mut $session.instance;
        instance.arm();
        // The epoch interrupts wasm code; a call waiting in the host (on a
        // stalled response) is stopped at the deadline by the host's timer.
        let deadline = instance.deadline();
        let interface = instance.bindings.$interface();
        let resource = interface.store();
        let call = resource.$method(&mut instance.store, $session.handle $(, $arg)*);
        let result = match tokio::time::timeout(deadline, call).await {
            Ok(result) => result,
            Err(_) => Err(wasmtime::Error::new(Trap::Interrupt)),
        };
        result.map_err(|e| Error::Host(instance.stopped(e, stringify!($method), $total)))
    }};
}

/// One instance of the component.
pub struct Instance {
    store: Store<HostState>,
    bindings: StoreExports,
    stderr: Option<StderrTail>,
    outbound: Outbound,
    /// The call timeout in epoch ticks, armed before every call.
    call_ticks: u64,
    /// Items written by BatchWriteItem requests when the last call began.
    written_before: u64,
}

/// The result of a call that returned: its value mapped with `map`, or the
/// store's error.
fn done<W, T>(result: Result<W, wit::StoreError>, map: impl FnOnce(W) -> T) -> Result<T, Error> {
    result
        .map(map)
        .map_err(|e| Error::Store(convert::store_error(e)))
}

/// An open data store inside an instance.
pub struct Session {
    instance: Instance,
    handle: ResourceAny,
}

impl Instance {
    pub(crate) fn new(
        store: Store<HostState>,
        bindings: StoreExports,
        stderr: Option<StderrTail>,
        outbound: Outbound,
        call_ticks: u64,
    ) -> Instance {
        Instance {
            store,
            bindings,
            stderr,
            outbound,
            call_ticks,
            written_before: 0,
        }
    }

    /// Lets the instance reach the endpoint of `config` (under
    /// [`Allow::ConfiguredEndpoints`]) and arms the call timeout.
    fn prepare_open(&mut self, config: &StoreConfig) {
        self.store.data_mut().allow_endpoint_of(config);
        self.arm();
    }

    /// Arms the call timeout for the next call.
    fn arm(&mut self) {
        self.written_before = self.outbound.items_written();
        self.store.set_epoch_deadline(self.call_ticks);
    }

    /// The call deadline.
    fn deadline(&self) -> std::time::Duration {
        EPOCH_TICK * u32::try_from(self.call_ticks).unwrap_or(u32::MAX)
    }

    /// A failed call's error in words when it is a trap: which call (its
    /// bindings method, `call_init`), what stopped it, and for Init (given
    /// `total` items) how many were written.
    fn stopped(&self, error: wasmtime::Error, method: &str, total: Option<u64>) -> anyhow::Error {
        let Some(trap) = error.downcast_ref::<Trap>() else {
            return error.into();
        };
        let operation = method.trim_start_matches("call_").replace('_', "-");
        let memory = &self.store.data().memory;
        anyhow::Error::new(match trap {
            Trap::Interrupt => Stopped::Deadline {
                operation,
                deadline: self.deadline(),
                progress: total.map(|total| {
                    let written = self.outbound.items_written() - self.written_before;
                    (written.min(total), total)
                }),
            },
            Trap::OutOfFuel => Stopped::OutOfFuel { operation },
            // A refused growth makes the guest's allocator abort: `unreachable`.
            Trap::UnreachableCodeReached if memory.refused => Stopped::MemoryLimit {
                operation,
                limit: memory.limit,
            },
            Trap::UnreachableCodeReached => Stopped::Unreachable { operation },
            other => Stopped::Trap {
                operation,
                trap: other.to_string(),
            },
        })
    }

    /// Opens a data store (validates the config; sends nothing).
    pub async fn open(self, config: &StoreConfig) -> Result<Session, Error> {
        open!(self, config, ld_dynamodb_store_data_store, Session)
    }

    /// Opens a Big Segment store (validates the config; sends nothing).
    pub async fn open_big_segments(self, config: &StoreConfig) -> Result<BigSegmentSession, Error> {
        open!(
            self,
            config,
            ld_dynamodb_store_big_segment_store,
            BigSegmentSession
        )
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

    /// Items its BatchWriteItem requests have written so far and the answers
    /// that throttled them; the handle stays current while a call runs.
    pub fn write_meter(&self) -> impl Fn() -> WriteCounts + Send + Sync + 'static {
        let outbound = self.outbound.clone();
        move || outbound.write_counts()
    }

    /// The largest linear memory the component has had, in bytes.
    pub fn peak_memory(&self) -> usize {
        self.store.data().memory.peak
    }
}

impl Session {
    /// Replaces all data of the given kinds; the `$inited` marker is written last.
    pub async fn init(&mut self, data: &[Collection]) -> Result<InitReport, Error> {
        let total = data.iter().map(|c| c.items.len() as u64).sum();
        let data = convert::collections(data);
        call!(
            self,
            Some(total),
            ld_dynamodb_store_data_store,
            call_init,
            &data
        )
        .and_then(|r| done(r, convert::init_report))
    }

    /// One item (tombstones included), or `None`.
    pub async fn get(&mut self, kind: &str, key: &str) -> Result<Option<Item>, Error> {
        call!(
            self,
            None,
            ld_dynamodb_store_data_store,
            call_get,
            kind,
            key
        )
        .and_then(|r| done(r, |item: Option<wit::Item>| item.map(convert::item)))
    }

    /// Every item of a kind (tombstones included).
    pub async fn get_all(&mut self, kind: &str) -> Result<Vec<KeyedItem>, Error> {
        call!(self, None, ld_dynamodb_store_data_store, call_get_all, kind)
            .and_then(|r| done(r, convert::keyed_items))
    }

    /// Every item of each kind and whether the `$inited` marker exists, read
    /// together (one round trip when each kind fits in a page).
    pub async fn snapshot(&mut self, kinds: &[String]) -> Result<Snapshot, Error> {
        call!(
            self,
            None,
            ld_dynamodb_store_data_store,
            call_snapshot,
            kinds
        )
        .and_then(|r| done(r, convert::snapshot))
    }

    /// Writes the item if the table has no version of it or an older one.
    pub async fn upsert(
        &mut self,
        kind: &str,
        key: &str,
        item: &Item,
    ) -> Result<UpsertOutcome, Error> {
        let item = convert::wit_item(item);
        call!(
            self,
            None,
            ld_dynamodb_store_data_store,
            call_upsert,
            kind,
            key,
            &item
        )
        .and_then(|r| done(r, convert::upsert_outcome))
    }

    /// Signs every later request with `credentials` (refused with
    /// `InvalidConfig`, keeping the old ones, when the key id or secret is empty).
    pub async fn set_credentials(&mut self, credentials: &Credentials) -> Result<(), Error> {
        let credentials = convert::credentials(credentials);
        call!(
            self,
            None,
            ld_dynamodb_store_data_store,
            call_set_credentials,
            &credentials
        )
        .and_then(|r| done(r, identity))
    }

    /// Whether an Init has completed (the `$inited` marker exists).
    pub async fn is_initialized(&mut self) -> Result<bool, Error> {
        call!(
            self,
            None,
            ld_dynamodb_store_data_store,
            call_is_initialized
        )
        .and_then(|r| done(r, identity))
    }

    /// Whether the table can be read.
    pub async fn is_available(&mut self) -> Result<bool, Error> {
        call!(self, None, ld_dynamodb_store_data_store, call_is_available)
    }

    /// Creates the table and waits until it is active; false if it existed.
    pub async fn create_table(&mut self) -> Result<bool, Error> {
        call!(self, None, ld_dynamodb_store_data_store, call_create_table)
            .and_then(|r| done(r, identity))
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
    pub async fn set_credentials(&mut self, credentials: &Credentials) -> Result<(), Error> {
        let credentials = convert::credentials(credentials);
        call!(
            self,
            None,
            ld_dynamodb_store_big_segment_store,
            call_set_credentials,
            &credentials
        )
        .and_then(|r| done(r, identity))
    }

    /// When the Relay Proxy last synchronized, in epoch milliseconds.
    pub async fn get_metadata(&mut self) -> Result<Option<u64>, Error> {
        call!(
            self,
            None,
            ld_dynamodb_store_big_segment_store,
            call_get_metadata
        )
        .and_then(|r| done(r, identity))
    }

    /// The memberships of a context, by [`context_hash`].
    pub async fn get_membership(
        &mut self,
        context_hash: &str,
    ) -> Result<Option<Vec<MembershipEntry>>, Error> {
        call!(
            self,
            None,
            ld_dynamodb_store_big_segment_store,
            call_get_membership,
            context_hash
        )
        .and_then(|r| done(r, convert::memberships))
    }
}

/// The hash a Big Segment membership row is keyed by: standard base64 (with
/// padding) of the SHA-256 of the context key.
pub fn context_hash(context_key: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(context_key.as_bytes()))
}
