//! The WIT glue: `ld-dynamodb:evaluation/evaluator` over the imported data
//! store (feature `store`), or over items only (world `flag-evaluator-items`,
//! which imports no store); the instance's events queue, sent by [`sender`].

mod sender;

#[cfg(feature = "store")]
wit_bindgen::generate!({
    path: "wit",
    world: "flag-evaluator",
    generate_all,
});
#[cfg(not(feature = "store"))]
wit_bindgen::generate!({
    path: "wit",
    world: "flag-evaluator-items",
    generate_all,
});

use exports::ld_dynamodb::evaluation::evaluator::{
    self as api, EvalError, Evaluation, Evaluator, EventSettings, FlagFilter, FlushReport, Guest,
    GuestEvaluator, KeyedJson, StateOptions,
};
#[cfg(feature = "store")]
use ld_dynamodb::store::data_store::Store;
#[cfg(feature = "store")]
use ld_dynamodb::store::types::{self as store, KeyedItem};
use std::cell::RefCell;
use std::rc::Rc;

use wasi::cli::stderr;
use wasi::clocks::monotonic_clock;
use wasi::clocks::wall_clock;
use wasi::random::random;

use crate::events::delivery::{self, Endpoint};
use crate::events::{Evaluated, EventContext, Events, Prerequisites};
use crate::{ContextCache, Data, Filter};

struct Component;

/// Events on: the queue and where it goes.
struct EventState {
    events: Events,
    endpoint: Endpoint,
    sdk_key: String,
    retry_delay_ms: u64,
    timeout_ms: u64,
}

thread_local! {
    /// The instance's events (`configure-events`); `None`: off.
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

impl Guest for Component {
    type Evaluator = EvaluatorResource;

    fn configure_events(settings: Option<EventSettings>) -> Result<(), String> {
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

    fn track(
        key: String,
        context_json: String,
        data_json: Option<String>,
        metric_value: Option<f64>,
    ) -> Result<(), EvalError> {
        let context = context(&context_json)?;
        let data = match data_json {
            Some(json) => Some(serde_json::from_str(&json).map_err(|e| {
                EvalError::InvalidDefault(format!("the event data is not JSON: {e}"))
            })?),
            None => None,
        };
        let context = EventContext::new(&context, &context_json);
        record(|events, now| events.track(&key, &context, data, metric_value, now));
        Ok(())
    }

    fn identify(context_json: String) -> Result<(), EvalError> {
        let context = context(&context_json)?;
        let context = EventContext::new(&context, &context_json);
        record(|events, now| events.identify(&context, now));
        Ok(())
    }

    fn flush() -> FlushReport {
        let report = EVENTS.with_borrow_mut(|state| {
            let Some(state) = state else {
                return delivery::Report {
                    error: Some("events are off".into()),
                    ..delivery::Report::default()
                };
            };
            if state.events.is_empty() && !state.events.stopped() {
                return delivery::Report {
                    dropped: state.events.take_payload().1,
                    ..delivery::Report::default()
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
        });
        FlushReport {
            events: report.events,
            attempts: report.attempts,
            status: report.status,
            delivered: report.delivered,
            error: report.error,
            dropped: report.dropped,
            stopped: report.stopped,
        }
    }
}

/// An evaluator: over an open data store, or over items it was given.
enum EvaluatorResource {
    /// An open data store, and the last snapshot while it is young enough to
    /// serve.
    #[cfg(feature = "store")]
    Store {
        store: Store,
        /// How long a snapshot serves, in nanoseconds; 0: not at all.
        ttl: u64,
        /// The snapshot and the monotonic time its read began.
        cached: RefCell<Option<(u64, Rc<Data>)>>,
    },
    /// Items given by the caller (`from-items`).
    Items(Rc<Data>),
}

/// One line to stderr; a failed write is dropped.
fn log(line: &str) {
    let stream = stderr::get_stderr();
    let text = format!("{line}\n");
    for chunk in text.as_bytes().chunks(4096) {
        if stream.blocking_write_and_flush(chunk).is_err() {
            return;
        }
    }
}

#[cfg(feature = "store")]
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
        log(&format!("ld-dynamodb evaluator: {why}"));
    }
    data
}

impl EvaluatorResource {
    /// Flags and segments: the given items, or the store's (see [`read`]).
    fn data(&self) -> Result<Rc<Data>, EvalError> {
        match self {
            EvaluatorResource::Items(data) => Ok(data.clone()),
            #[cfg(feature = "store")]
            EvaluatorResource::Store { store, ttl, cached } => read(store, *ttl, cached),
        }
    }

    /// `all-flags-state`, asking `within` before each flag.
    fn flags_state(
        &self,
        context_json: String,
        options: StateOptions,
        within: &mut dyn FnMut() -> bool,
    ) -> Result<Option<String>, EvalError> {
        let context = context(&context_json)?;
        let options = crate::StateOptions {
            filter: match options.filter {
                FlagFilter::All => Filter::All,
                FlagFilter::ClientSide => Filter::ClientSide,
                FlagFilter::Mobile => Filter::Mobile,
            },
            with_reasons: options.with_reasons,
            details_only_for_tracked_flags: options.details_only_for_tracked_flags,
        };
        let data = self.data()?;
        if events_on() {
            // The context is seen (an index event); no evaluation is counted,
            // as the server SDKs' allFlagsState counts none.
            record(|events, now| {
                events.context_seen(&EventContext::new(&context, &context_json), now)
            });
        }
        Ok(crate::all_flags_state_within(
            &data, &context, options, within,
        ))
    }
}

/// The cached snapshot while it is younger than the time to live, else a new
/// one, in one round trip (the store's snapshot).
#[cfg(feature = "store")]
fn read(
    store: &Store,
    ttl: u64,
    cached: &RefCell<Option<(u64, Rc<Data>)>>,
) -> Result<Rc<Data>, EvalError> {
    let now = monotonic_clock::now();
    if let Some((at, data)) = cached.borrow().as_ref() {
        if now.saturating_sub(*at) < ttl {
            return Ok(data.clone());
        }
    }
    // The kinds, as `ld_dynamodb_store::model::{FLAGS_KIND, SEGMENTS_KIND}`
    // name them (a guest does not link the store crate and its exports).
    let snapshot = store
        .snapshot(&["features".to_string(), "segments".to_string()])
        .map_err(|e| EvalError::Store(store_error(e)))?;
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

/// The evaluator's config record as the store's (the same fields).
#[cfg(feature = "store")]
fn store_config(c: api::Config) -> store::Config {
    store::Config {
        table: c.table,
        prefix: c.prefix,
        region: c.region,
        endpoint: c.endpoint,
        credentials: store::Credentials {
            access_key_id: c.credentials.access_key_id,
            secret_access_key: c.credentials.secret_access_key,
            session_token: c.credentials.session_token,
        },
        retry: c.retry.map(|r| store::RetryPolicy {
            max_attempts: r.max_attempts,
            base_delay_ms: r.base_delay_ms,
            max_delay_ms: r.max_delay_ms,
        }),
        timeouts: c.timeouts.map(|t| store::Timeouts {
            connect_ms: t.connect_ms,
            first_byte_ms: t.first_byte_ms,
            between_bytes_ms: t.between_bytes_ms,
            request_ms: t.request_ms,
        }),
        init_concurrency: c.init_concurrency,
        init_no_progress_ms: c.init_no_progress_ms,
    }
}

/// The store's error as the evaluator's (the same cases).
#[cfg(feature = "store")]
fn store_error(e: store::StoreError) -> api::StoreError {
    match e {
        store::StoreError::InvalidConfig(m) => api::StoreError::InvalidConfig(m),
        store::StoreError::InvalidInput(m) => api::StoreError::InvalidInput(m),
        store::StoreError::Transport(t) => api::StoreError::Transport(api::TransportError {
            code: t.code,
            detail: t.detail,
            attempts: t.attempts,
        }),
        store::StoreError::Service(s) => api::StoreError::Service(api::ServiceError {
            code: s.code,
            message: s.message,
            status: s.status,
            request_id: s.request_id,
            attempts: s.attempts,
        }),
        store::StoreError::MalformedResponse(m) => api::StoreError::MalformedResponse(m),
    }
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

impl GuestEvaluator for EvaluatorResource {
    #[cfg(not(feature = "store"))]
    fn open(_: api::Config) -> Result<Evaluator, api::StoreError> {
        Err(api::StoreError::InvalidConfig(
            "this evaluator build reads no table (built without the `store` feature): \
             make evaluators with `from-items`"
                .into(),
        ))
    }

    #[cfg(feature = "store")]
    fn open(config: api::Config) -> Result<Evaluator, api::StoreError> {
        let ttl = u64::from(config.cache_ttl_ms.unwrap_or(0)) * 1_000_000;
        Store::open(&store_config(config))
            .map(|store| {
                Evaluator::new(EvaluatorResource::Store {
                    store,
                    ttl,
                    cached: RefCell::default(),
                })
            })
            .map_err(store_error)
    }

    fn from_items(initialized: bool, flags: Vec<KeyedJson>, segments: Vec<KeyedJson>) -> Evaluator {
        let pairs = |items: Vec<KeyedJson>| items.into_iter().map(|i| (i.key, i.json)).collect();
        Evaluator::new(EvaluatorResource::Items(Rc::new(parsed(
            initialized,
            pairs(flags),
            pairs(segments),
        ))))
    }

    fn evaluate(
        &self,
        flag_key: String,
        context_json: String,
        default_json: String,
    ) -> Result<Evaluation, EvalError> {
        let context = context(&context_json)?;
        let default: serde_json::Value = serde_json::from_str(&default_json)
            .map_err(|e| EvalError::InvalidDefault(format!("the default is not JSON: {e}")))?;
        let data = self.data()?;
        let evaluation = if events_on() {
            let prerequisites = Prerequisites::default();
            let evaluation = crate::evaluate_recording(
                &data,
                &flag_key,
                &context,
                default.clone(),
                Some(&prerequisites),
            );
            let event_context = EventContext::new(&context, &context_json);
            record(|events, now| {
                let evaluated = Evaluated {
                    flag_key: &flag_key,
                    default: &default,
                    evaluation: &evaluation,
                    prerequisites: prerequisites.into_events(),
                };
                events.evaluation(&data, &event_context, evaluated, now);
            });
            evaluation
        } else {
            crate::evaluate(&data, &flag_key, &context, default)
        };
        Ok(Evaluation {
            value_json: evaluation.value.to_string(),
            variation_index: evaluation
                .variation_index
                .and_then(|i| u32::try_from(i).ok()),
            reason_json: crate::reason_text(&evaluation.reason),
        })
    }

    fn all_flags_state(
        &self,
        context_json: String,
        options: StateOptions,
    ) -> Result<String, EvalError> {
        let state = self.flags_state(context_json, options, &mut || true)?;
        Ok(state.expect("no time budget"))
    }

    fn all_flags_state_within(
        &self,
        context_json: String,
        options: StateOptions,
        budget_ms: u32,
    ) -> Result<Option<String>, EvalError> {
        let deadline = monotonic_clock::now().saturating_add(u64::from(budget_ms) * 1_000_000);
        self.flags_state(context_json, options, &mut || {
            monotonic_clock::now() < deadline
        })
    }

    fn secure_mode_hash(&self, context_json: String, sdk_key: String) -> Result<String, EvalError> {
        Ok(crate::secure_mode_hash(&sdk_key, &*context(&context_json)?))
    }
}

export!(Component);
