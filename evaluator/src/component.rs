//! The evaluator on WASI (wasm only): evaluators over items or over the data
//! store (the store crate linked in, on its WASI platform), the instance's
//! events queue, sent by `sender`, and the log on stderr (the store's
//! writer). Plain Rust calls, so a guest can link it as a library (the edge
//! app does); `wit` (feature `component`) exports it as
//! `ld-dynamodb:evaluation/evaluator`.

mod sender;
#[cfg(feature = "component")]
mod wit;

wit_bindgen::generate!({
    path: "wit",
    world: "event-sender",
    generate_all,
});

use std::cell::RefCell;
use std::rc::Rc;

use ld_dynamodb_store::config::Config;
use ld_dynamodb_store::error::StoreError;
use ld_dynamodb_store::model::{KeyedItem, FLAGS_KIND, SEGMENTS_KIND};
use ld_dynamodb_store::store::DataStore;
use ld_dynamodb_store::sys::{write_line, WasiPlatform};
use wasi::clocks::monotonic_clock;
use wasi::clocks::wall_clock;
use wasi::random::random;

use crate::events::delivery::{self, Endpoint, Report};
use crate::events::{Evaluated, EventContext, Events, Prerequisites};
use crate::{ContextCache, Data, Evaluation, StateOptions};

/// Why a call failed.
#[derive(Debug)]
pub enum EvalError {
    /// The context JSON is malformed, or has no key, or an invalid kind.
    InvalidContext(String),
    /// The default value (or the data given to [`track`]) is not JSON.
    InvalidDefault(String),
    /// The store could not be read.
    Store(StoreError),
}

/// The analytics events' settings, as LaunchDarkly's server SDKs name them
/// (the WIT's `event-settings`; `None`: the default named).
#[derive(Debug, Clone, Default)]
pub struct EventOptions {
    /// Sent as the Authorization of every payload; never logged.
    pub sdk_key: String,
    /// The events service (`https://events.launchdarkly.com`).
    pub base_uri: Option<String>,
    /// Every attribute but `key`, `kind` and `anonymous` left out of events.
    pub all_attributes_private: bool,
    /// Attribute references left out of every context's events.
    pub private_attributes: Vec<String>,
    /// Events kept until a flush (10,000).
    pub capacity: Option<u32>,
    /// Contexts remembered so each gets one index event (1,000).
    pub context_keys_capacity: Option<u32>,
    /// How long a context is remembered, in milliseconds (300,000).
    pub context_keys_flush_interval_ms: Option<u32>,
    /// The wait before the one retry of a payload, in milliseconds (1,000).
    pub retry_delay_ms: Option<u32>,
    /// The time limit of one POST, in milliseconds (10,000).
    pub timeout_ms: Option<u32>,
}

/// Events on: the queue and where it goes.
struct EventState {
    events: Events,
    endpoint: Endpoint,
    sdk_key: String,
    retry_delay_ms: u64,
    timeout_ms: u64,
}

thread_local! {
    /// The instance's events ([`configure_events`]); `None`: off.
    static EVENTS: RefCell<Option<EventState>> = const { RefCell::new(None) };
}

/// Milliseconds since the Unix epoch: the events' dates.
fn now_ms() -> u64 {
    let now = wall_clock::now();
    now.seconds * 1000 + u64::from(now.nanoseconds / 1_000_000)
}

/// Runs `record` on the queue when events are on.
fn record(record: impl FnOnce(&mut Events, u64)) {
    EVENTS.with_borrow_mut(|state| {
        if let Some(state) = state {
            record(&mut state.events, now_ms());
        }
    });
}

fn events_on() -> bool {
    EVENTS.with_borrow(|state| state.as_ref().is_some_and(|s| !s.events.stopped()))
}

/// Turns events on with these settings, or off (`None`; the queue is
/// discarded). The queue is the instance's: every evaluator records into it.
/// An invalid base URI or SDK key is an error.
pub fn configure_events(settings: Option<EventOptions>) -> Result<(), String> {
    let Some(s) = settings else {
        EVENTS.set(None);
        return Ok(());
    };
    let base = s.base_uri.as_deref().unwrap_or(delivery::DEFAULT_BASE_URI);
    let endpoint = Endpoint::parse(base)?;
    if s.sdk_key.is_empty() || !s.sdk_key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("the SDK key of the events must be visible ASCII without spaces".into());
    }
    let defaults = crate::events::EventSettings::default();
    let or = |v: Option<u32>, d: u64| v.map_or(d, u64::from);
    let settings = crate::events::EventSettings {
        all_attributes_private: s.all_attributes_private,
        private_attributes: s.private_attributes,
        capacity: or(s.capacity, defaults.capacity as u64) as usize,
        context_keys_capacity: or(
            s.context_keys_capacity,
            defaults.context_keys_capacity as u64,
        ) as usize,
        context_keys_flush_interval_ms: or(
            s.context_keys_flush_interval_ms,
            defaults.context_keys_flush_interval_ms,
        ),
        seed: random::get_random_u64(),
    };
    EVENTS.set(Some(EventState {
        events: Events::new(settings),
        endpoint,
        sdk_key: s.sdk_key,
        retry_delay_ms: or(s.retry_delay_ms, 1_000),
        timeout_ms: or(s.timeout_ms, 10_000),
    }));
    Ok(())
}

/// Queues a custom event (`track`): `data_json` any JSON, `metric_value` a
/// number for numeric metrics. Nothing is queued with events off.
pub fn track(
    key: &str,
    context_json: &str,
    data_json: Option<&str>,
    metric_value: Option<f64>,
) -> Result<(), EvalError> {
    let context = context(context_json)?;
    let data =
        match data_json {
            Some(json) => Some(serde_json::from_str(json).map_err(|e| {
                EvalError::InvalidDefault(format!("the event data is not JSON: {e}"))
            })?),
            None => None,
        };
    let context = EventContext::new(&context, context_json);
    record(|events, now| events.track(key, &context, data, metric_value, now));
    Ok(())
}

/// Queues an identify event for a context.
pub fn identify(context_json: &str) -> Result<(), EvalError> {
    let context = context(context_json)?;
    let context = EventContext::new(&context, context_json);
    record(|events, now| events.identify(&context, now));
    Ok(())
}

/// Sends what is queued as one payload, retried once after a failure that
/// may pass; returns when the service answered or the retry failed.
pub fn flush() -> Report {
    EVENTS.with_borrow_mut(|state| {
        let Some(state) = state else {
            return Report {
                error: Some("events are off".into()),
                ..Report::default()
            };
        };
        if state.events.is_empty() && !state.events.stopped() {
            return Report {
                dropped: state.events.take_payload().1,
                ..Report::default()
            };
        }
        let id = random::get_random_bytes(16);
        let id = delivery::payload_id(id.try_into().unwrap_or([0; 16]));
        let mut http = sender::Http {
            endpoint: &state.endpoint,
            sdk_key: &state.sdk_key,
            timeout_ms: state.timeout_ms,
        };
        delivery::flush(&mut state.events, &mut http, &id, state.retry_delay_ms)
    })
}

/// An evaluator: over the data store, or over items it was given.
pub struct Evaluator(Source);

/// Where an evaluator's flags and segments come from.
enum Source {
    /// The data store, and the last snapshot while it is young enough to
    /// serve.
    Store {
        store: Box<DataStore<WasiPlatform>>,
        /// How long a snapshot serves, in nanoseconds; 0: not at all.
        ttl: u64,
        /// The snapshot and the monotonic time its read began.
        cached: RefCell<Option<(u64, Rc<Data>)>>,
    },
    /// Items given by the caller ([`Evaluator::from_items`]).
    Items(Rc<Data>),
}

fn live(items: Vec<KeyedItem>) -> Vec<(String, String)> {
    items
        .into_iter()
        .filter(|k| !k.item.deleted)
        .map(|k| (k.key, k.item.json))
        .collect()
}

/// Parsed data; the items the engine cannot parse are logged.
fn parsed(
    initialized: bool,
    flags: Vec<(String, String)>,
    segments: Vec<(String, String)>,
) -> Data {
    let (data, skipped) = Data::from_json(initialized, flags, segments);
    for why in skipped {
        write_line(&format!("ld-dynamodb evaluator: {why}"));
    }
    data
}

/// The cached snapshot while it is younger than the time to live, else a new
/// one, in one round trip (the store's snapshot).
fn read(
    store: &DataStore<WasiPlatform>,
    ttl: u64,
    cached: &RefCell<Option<(u64, Rc<Data>)>>,
) -> Result<Rc<Data>, EvalError> {
    let now = monotonic_clock::now();
    if let Some((at, data)) = cached.borrow().as_ref() {
        if now.saturating_sub(*at) < ttl {
            return Ok(data.clone());
        }
    }
    let snapshot = store
        .snapshot(&[FLAGS_KIND, SEGMENTS_KIND])
        .map_err(EvalError::Store)?;
    let mut kinds = snapshot.kinds.into_iter();
    let flags = live(kinds.next().unwrap_or_default());
    let segments = live(kinds.next().unwrap_or_default());
    let data = Rc::new(parsed(snapshot.initialized, flags, segments));
    if ttl > 0 {
        // Aged from before the read: never served past the time to live.
        *cached.borrow_mut() = Some((now, data.clone()));
    }
    Ok(data)
}

thread_local! {
    /// The contexts last parsed (evaluating many flags for one context
    /// parses it once).
    static CONTEXTS: RefCell<ContextCache> = const { RefCell::new(ContextCache::new()) };
}

/// The context of `json`, from [`CONTEXTS`] when it was parsed recently.
fn context(json: &str) -> Result<Rc<launchdarkly_server_sdk_evaluation::Context>, EvalError> {
    CONTEXTS
        .with_borrow_mut(|cache| cache.parse(json))
        .map_err(EvalError::InvalidContext)
}

impl Evaluator {
    /// An evaluator reading the table of `config` (nothing is sent yet); a
    /// snapshot serves later calls for `cache_ttl_ms` milliseconds (0: every
    /// call reads the table).
    pub fn open(config: Config, cache_ttl_ms: u32) -> Evaluator {
        Evaluator(Source::Store {
            store: Box::new(DataStore::new(config, WasiPlatform)),
            ttl: u64::from(cache_ttl_ms) * 1_000_000,
            cached: RefCell::default(),
        })
    }

    /// An evaluator over these flags and segments (key and JSON of live
    /// items), reading no store; items the engine cannot parse are left out
    /// and logged. `initialized`: whether the table held the `$inited` marker.
    pub fn from_items(
        initialized: bool,
        flags: Vec<(String, String)>,
        segments: Vec<(String, String)>,
    ) -> Evaluator {
        Evaluator(Source::Items(Rc::new(parsed(initialized, flags, segments))))
    }

    /// Flags and segments: the given items, or the store's (see [`read`]).
    fn data(&self) -> Result<Rc<Data>, EvalError> {
        match &self.0 {
            Source::Items(data) => Ok(data.clone()),
            Source::Store { store, ttl, cached } => read(store, *ttl, cached),
        }
    }

    /// Evaluates one flag for a context as a server SDK's `variationDetail`
    /// does; `default_json` is served when the flag is unknown or cannot be
    /// evaluated. With events on, queues the events `variationDetail` does.
    pub fn evaluate(
        &self,
        flag_key: &str,
        context_json: &str,
        default_json: &str,
    ) -> Result<Evaluation, EvalError> {
        let context = context(context_json)?;
        let default: serde_json::Value = serde_json::from_str(default_json)
            .map_err(|e| EvalError::InvalidDefault(format!("the default is not JSON: {e}")))?;
        let data = self.data()?;
        if !events_on() {
            return Ok(crate::evaluate(&data, flag_key, &context, default));
        }
        let prerequisites = Prerequisites::default();
        let evaluation = crate::evaluate_recording(
            &data,
            flag_key,
            &context,
            default.clone(),
            Some(&prerequisites),
        );
        let event_context = EventContext::new(&context, context_json);
        record(|events, now| {
            let evaluated = Evaluated {
                flag_key,
                default: &default,
                evaluation: &evaluation,
                prerequisites: prerequisites.into_events(),
            };
            events.evaluation(&data, &event_context, evaluated, now);
        });
        Ok(evaluation)
    }

    /// Every flag's value for a context, as the JSON of LaunchDarkly's
    /// `allFlagsState(...).toJSON()`. With events on, the context gets an
    /// index event; no evaluation is counted, as the server SDKs count none.
    pub fn all_flags_state(
        &self,
        context_json: &str,
        options: StateOptions,
    ) -> Result<String, EvalError> {
        let state = self.flags_state(context_json, options, &mut || true)?;
        Ok(state.expect("no time budget"))
    }

    /// [`Evaluator::all_flags_state`] within a time budget: `None` once
    /// `budget_ms` milliseconds (monotonic clock) have passed before every
    /// flag was evaluated.
    pub fn all_flags_state_within(
        &self,
        context_json: &str,
        options: StateOptions,
        budget_ms: u32,
    ) -> Result<Option<String>, EvalError> {
        let deadline = monotonic_clock::now().saturating_add(u64::from(budget_ms) * 1_000_000);
        self.flags_state(context_json, options, &mut || {
            monotonic_clock::now() < deadline
        })
    }

    /// `all-flags-state`, asking `within` before each flag.
    fn flags_state(
        &self,
        context_json: &str,
        options: StateOptions,
        within: &mut dyn FnMut() -> bool,
    ) -> Result<Option<String>, EvalError> {
        let context = context(context_json)?;
        let data = self.data()?;
        if events_on() {
            // The context is seen (an index event); no evaluation is counted,
            // as the server SDKs' allFlagsState counts none.
            record(|events, now| {
                events.context_seen(&EventContext::new(&context, context_json), now)
            });
        }
        Ok(crate::all_flags_state_within(
            &data, &context, options, within,
        ))
    }

    /// The secure-mode hash of a context: hex HMAC-SHA256 of its canonical
    /// key, keyed with `sdk_key`, as the server SDKs compute it.
    pub fn secure_mode_hash(&self, context_json: &str, sdk_key: &str) -> Result<String, EvalError> {
        Ok(crate::secure_mode_hash(sdk_key, &*context(context_json)?))
    }
}
