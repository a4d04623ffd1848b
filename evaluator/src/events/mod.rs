//! Analytics events, as LaunchDarkly's server SDKs produce them (schema 4,
//! js-sdk-common's `EventProcessor` with the server SDK's `EventFactory`):
//! a summary counter per evaluation, a `feature` event when the flag, its
//! matched rule or its fallthrough tracks events (experiments included) and
//! a `debug` event while `debugEventsUntilDate` is ahead, an `index` event the
//! first time a context is seen in a window, `custom` events from `track` and
//! `identify` events. Contexts are written with the private attributes taken
//! out ([`redact`]); [`delivery`] posts a payload. Time is given by the caller
//! (milliseconds since the Unix epoch), so nothing here reads a clock.

pub mod delivery;
pub mod redact;
pub mod summary;

use std::cell::{OnceCell, RefCell};
use std::collections::{HashMap, VecDeque};

use launchdarkly_server_sdk_evaluation::{
    Context, Flag, FlagValue, PrerequisiteEvent, PrerequisiteEventRecorder, Reason,
};
use serde_json::{Map, Value};

use crate::{reason_json, value_json, Data, Evaluation};
use redact::Privacy;
use summary::{Counted, Summarizer};

/// The settings of the event processor (LaunchDarkly's server SDK options of
/// the same names).
#[derive(Debug, Clone)]
pub struct EventSettings {
    /// Every attribute of every context private (`allAttributesPrivate`).
    pub all_attributes_private: bool,
    /// Attribute references (`email`, `/address/street`) private in every context.
    pub private_attributes: Vec<String>,
    /// Events kept until a flush; more are dropped and counted.
    pub capacity: usize,
    /// Contexts remembered for index deduplication.
    pub context_keys_capacity: usize,
    /// How long a context stays deduplicated, in milliseconds.
    pub context_keys_flush_interval_ms: u64,
    /// Seeds the choice of events to keep for flags with a `samplingRatio`.
    pub seed: u64,
}

impl Default for EventSettings {
    /// The server SDKs' defaults: capacity 10,000, 1,000 context keys kept
    /// for 5 minutes.
    fn default() -> Self {
        EventSettings {
            all_attributes_private: false,
            private_attributes: Vec::new(),
            capacity: 10_000,
            context_keys_capacity: 1_000,
            context_keys_flush_interval_ms: 300_000,
            seed: 0x9e37_79b9_7f4a_7c15,
        }
    }
}

/// A context as the events need it: parsed (its canonical key and kinds),
/// and its JSON, parsed again only when an event carries the context.
pub struct EventContext<'a> {
    context: &'a Context,
    json: &'a str,
    value: OnceCell<Value>,
}

impl<'a> EventContext<'a> {
    /// `context` is what `json` parsed to.
    pub fn new(context: &'a Context, json: &'a str) -> EventContext<'a> {
        EventContext {
            context,
            json,
            value: OnceCell::new(),
        }
    }

    fn value(&self) -> &Value {
        self.value
            .get_or_init(|| serde_json::from_str(self.json).unwrap_or(Value::Null))
    }
}

/// One evaluation to record: the flag, the caller's default, the result and
/// the prerequisites evaluated on the way ([`Prerequisites`]).
pub struct Evaluated<'a> {
    /// The flag evaluated.
    pub flag_key: &'a str,
    /// The caller's default.
    pub default: &'a Value,
    /// The result.
    pub evaluation: &'a Evaluation,
    /// The prerequisites evaluated on the way.
    pub prerequisites: Vec<PrerequisiteEvent>,
}

/// Collects the prerequisite evaluations of one evaluation, for their events.
#[derive(Default)]
pub struct Prerequisites(RefCell<Vec<PrerequisiteEvent>>);

impl PrerequisiteEventRecorder for Prerequisites {
    fn record(&self, event: PrerequisiteEvent) {
        self.0.borrow_mut().push(event);
    }
}

impl Prerequisites {
    /// The evaluations recorded, in order.
    pub fn into_events(self) -> Vec<PrerequisiteEvent> {
        self.0.into_inner()
    }
}

/// Context keys seen: least recently used first out, all forgotten at the
/// end of each window (the server SDKs' `ContextDeduplicator`). Each use is
/// queued with its tick; a queued use older than the key's last is skipped
/// when evicting, so a sighting costs O(1) amortized, also when full.
#[derive(Debug, Default)]
struct ContextKeys {
    /// Each key's last use.
    used: HashMap<String, u64>,
    /// Uses in order, some superseded by a later use of the same key.
    order: VecDeque<(String, u64)>,
    tick: u64,
    window_start: Option<u64>,
}

impl ContextKeys {
    /// Whether `key` is new in this window; it is remembered either way.
    fn first_sight(&mut self, key: &str, capacity: usize, window_ms: u64, now: u64) -> bool {
        match self.window_start {
            Some(start) if now.saturating_sub(start) < window_ms => {}
            _ => {
                self.used.clear();
                self.order.clear();
                self.window_start = Some(now);
            }
        }
        self.tick += 1;
        let new = self.used.insert(key.to_string(), self.tick).is_none();
        self.order.push_back((key.to_string(), self.tick));
        while self.used.len() > capacity {
            let Some((oldest, tick)) = self.order.pop_front() else {
                break;
            };
            if self.used.get(&oldest) == Some(&tick) {
                self.used.remove(&oldest);
            }
        }
        // Superseded uses pile up only while keys repeat: keep the queue
        // within twice the keys it stands for.
        if self.order.len() > 2 * self.used.len().max(capacity) {
            let used = &self.used;
            self.order.retain(|(k, t)| used.get(k) == Some(t));
        }
        new
    }
}

/// One evaluation as an event input (js-sdk-common's `InputEvalEvent`).
struct Feature<'a> {
    key: &'a str,
    value: Option<Value>,
    default: Value,
    variation: Option<usize>,
    version: Option<u64>,
    /// A full `feature` event is kept.
    track: bool,
    reason: Option<Value>,
    prereq_of: Option<&'a str>,
    debug_until: Option<u64>,
    exclude_from_summaries: bool,
    sampling_ratio: Option<u32>,
}

impl<'a> Feature<'a> {
    /// The event of a found flag's evaluation, as the server SDK makes it
    /// for `variationDetail` (the reason always included).
    fn of(flag: &'a Flag, reason: &Reason, value: Option<Value>, variation: Option<usize>) -> Self {
        let experiment = flag.is_experimentation_enabled(reason);
        Feature {
            key: &flag.key,
            value,
            default: Value::Null,
            variation,
            version: Some(flag.version),
            track: flag.track_events || experiment,
            reason: Some(reason_json(reason)),
            prereq_of: None,
            debug_until: flag.debug_events_until_date,
            exclude_from_summaries: flag.exclude_from_summaries,
            sampling_ratio: flag.sampling_ratio,
        }
    }
}

/// The queue of events and the counters of the summary, between flushes.
#[derive(Debug)]
pub struct Events {
    settings: EventSettings,
    privacy: Privacy,
    queue: Vec<Value>,
    summary: Summarizer,
    seen: ContextKeys,
    /// Events dropped because the queue was full, since the last payload.
    dropped: u64,
    /// Set after the events service refused the key: nothing more is kept.
    stopped: bool,
    random: u64,
}

impl Events {
    /// An empty queue with these settings.
    pub fn new(settings: EventSettings) -> Events {
        Events {
            privacy: Privacy::new(
                settings.all_attributes_private,
                &settings.private_attributes,
            ),
            queue: Vec::new(),
            summary: Summarizer::default(),
            seen: ContextKeys::default(),
            dropped: 0,
            stopped: false,
            random: settings.seed | 1,
            settings,
        }
    }

    /// Records an evaluation, after the evaluations of its prerequisites.
    pub fn evaluation(&mut self, data: &Data, context: &EventContext, e: Evaluated, now: u64) {
        let Evaluated {
            flag_key,
            default,
            evaluation,
            prerequisites,
        } = e;
        for p in &prerequisites {
            let variation = p
                .prerequisite_result
                .variation_index
                .and_then(|i| usize::try_from(i).ok());
            let value = p.prerequisite_result.value.as_ref().map(value_json);
            let mut event = Feature::of(
                &p.prerequisite_flag,
                &p.prerequisite_result.reason,
                value,
                variation,
            );
            event.prereq_of = Some(&p.target_flag_key);
            self.feature(event, context, now);
        }
        if !data.initialized {
            // The server SDKs record nothing before they have data.
            return;
        }
        let event = match data.flag(flag_key) {
            Some(flag) => {
                let mut event = Feature::of(
                    flag,
                    &evaluation.reason,
                    Some(evaluation.value.clone()),
                    evaluation
                        .variation_index
                        .and_then(|i| usize::try_from(i).ok()),
                );
                event.default = default.clone();
                event
            }
            // Not found (or no data yet): counted as unknown, no full event.
            None => Feature {
                key: flag_key,
                value: Some(default.clone()),
                default: default.clone(),
                variation: None,
                version: None,
                track: false,
                reason: None,
                prereq_of: None,
                debug_until: None,
                exclude_from_summaries: false,
                sampling_ratio: None,
            },
        };
        self.feature(event, context, now);
    }

    /// A `custom` event (`track`), with optional data and metric value.
    pub fn track(
        &mut self,
        key: &str,
        context: &EventContext,
        data: Option<Value>,
        metric_value: Option<f64>,
        now: u64,
    ) {
        if self.stopped {
            return;
        }
        self.index(context, now);
        // The server SDKs show an anonymous context's key only in custom
        // events too (`redactAnonymousAllEvents`).
        let mut event = self.base("custom", now, context, true);
        event.insert("key".into(), Value::from(key));
        if let Some(data) = data {
            event.insert("data".into(), data);
        }
        if let Some(metric) = metric_value.filter(|m| m.is_finite()) {
            event.insert("metricValue".into(), value_json(&FlagValue::Number(metric)));
        }
        self.enqueue(Value::Object(event));
    }

    /// A context seen without an evaluation event (an all-flags answer): an
    /// `index` event the first time in the window, nothing counted.
    pub fn context_seen(&mut self, context: &EventContext, now: u64) {
        if !self.stopped {
            self.index(context, now);
        }
    }

    /// An `identify` event; the context counts as seen.
    pub fn identify(&mut self, context: &EventContext, now: u64) {
        if self.stopped {
            return;
        }
        self.seen_now(context, now);
        let event = self.base("identify", now, context, false);
        self.enqueue(Value::Object(event));
    }

    /// The payload to send: the queued events and the summary (`None` when
    /// there is nothing), the queue emptied; and the events dropped since
    /// the last payload.
    pub fn take_payload(&mut self) -> (Option<Vec<Value>>, u64) {
        let mut events = std::mem::take(&mut self.queue);
        events.extend(self.summary.take());
        let dropped = std::mem::take(&mut self.dropped);
        ((!events.is_empty()).then_some(events), dropped)
    }

    /// Whether there is something to send.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty() && self.summary.is_empty()
    }

    /// Stops for good: the events service refused the key. Whatever is
    /// queued is discarded.
    pub fn stop(&mut self) {
        self.stopped = true;
        self.queue.clear();
        self.summary = Summarizer::default();
    }

    /// Whether [`Events::stop`] was called.
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    fn feature(&mut self, event: Feature, context: &EventContext, now: u64) {
        if self.stopped {
            return;
        }
        if !event.exclude_from_summaries {
            let kinds: Vec<&str> = context
                .context
                .kinds()
                .into_iter()
                .map(|k| k.as_ref())
                .collect();
            self.summary.count(Counted {
                key: event.key,
                variation: event.variation,
                version: event.version,
                value: event.value.as_ref(),
                default: &event.default,
                kinds: &kinds,
                creation_date: now,
            });
        }
        self.index(context, now);
        let debug = event.debug_until.is_some_and(|until| until > now);
        if event.track && self.sampled(event.sampling_ratio) {
            let out = self.feature_json(&event, context, now, false);
            self.enqueue(out);
        }
        if debug && self.sampled(event.sampling_ratio) {
            let out = self.feature_json(&event, context, now, true);
            self.enqueue(out);
        }
    }

    fn feature_json(&self, e: &Feature, context: &EventContext, now: u64, debug: bool) -> Value {
        let kind = if debug { "debug" } else { "feature" };
        // Feature events show an anonymous context's key only; debug events all of it.
        let mut out = self.base(kind, now, context, !debug);
        out.insert("key".into(), Value::from(e.key));
        if let Some(value) = &e.value {
            out.insert("value".into(), value.clone());
        }
        out.insert("default".into(), e.default.clone());
        if let Some(ratio) = e.sampling_ratio.filter(|r| *r != 1) {
            out.insert("samplingRatio".into(), Value::from(ratio));
        }
        if let Some(of) = e.prereq_of {
            out.insert("prereqOf".into(), Value::from(of));
        }
        if let Some(variation) = e.variation {
            out.insert("variation".into(), Value::from(variation));
        }
        if let Some(version) = e.version {
            out.insert("version".into(), Value::from(version));
        }
        if let Some(reason) = &e.reason {
            out.insert("reason".into(), reason.clone());
        }
        Value::Object(out)
    }

    /// `kind`, `creationDate` and the filtered context.
    fn base(
        &self,
        kind: &str,
        now: u64,
        context: &EventContext,
        redact_anonymous: bool,
    ) -> Map<String, Value> {
        let mut out = Map::new();
        out.insert("kind".into(), Value::from(kind));
        out.insert("creationDate".into(), Value::from(now));
        out.insert(
            "context".into(),
            self.privacy.filter(context.value(), redact_anonymous),
        );
        out
    }

    /// Whether the context is new in this window.
    fn seen_now(&mut self, context: &EventContext, now: u64) -> bool {
        self.seen.first_sight(
            context.context.canonical_key(),
            self.settings.context_keys_capacity,
            self.settings.context_keys_flush_interval_ms,
            now,
        )
    }

    /// An `index` event for a context not seen in this window.
    fn index(&mut self, context: &EventContext, now: u64) {
        if self.seen_now(context, now) {
            let event = self.base("index", now, context, false);
            self.enqueue(Value::Object(event));
        }
    }

    fn enqueue(&mut self, event: Value) {
        if self.queue.len() < self.settings.capacity {
            self.queue.push(event);
        } else {
            self.dropped += 1;
        }
    }

    /// Whether an event of a flag with this sampling ratio is kept: always
    /// for none or 1, never for 0, else one in `ratio`.
    fn sampled(&mut self, ratio: Option<u32>) -> bool {
        match ratio {
            None | Some(1) => true,
            Some(0) => false,
            Some(ratio) => {
                // xorshift64
                self.random ^= self.random << 13;
                self.random ^= self.random >> 7;
                self.random ^= self.random << 17;
                self.random.is_multiple_of(u64::from(ratio))
            }
        }
    }
}

#[cfg(test)]
mod tests;
