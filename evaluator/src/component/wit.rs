//! The WIT glue (feature `component`): `ld-dynamodb:evaluation/evaluator`
//! exported over the evaluator of [`super`], its types mapped onto the
//! evaluator's and the store crate's.

wit_bindgen::generate!({
    path: "wit",
    world: "flag-evaluator",
    generate_all,
});

use std::time::Duration;

use exports::ld_dynamodb::evaluation::evaluator::{
    self as api, EvalError, Evaluation, EventSettings, FlagFilter, FlushReport, Guest,
    GuestEvaluator, KeyedJson, StateOptions,
};
use ld_dynamodb_store::config::{Config, ConfigInput, Credentials, RetryPolicy, Timeouts};
use ld_dynamodb_store::error::StoreError;

use super::{Evaluator, EventOptions};
use crate::Filter;

struct Component;

impl Guest for Component {
    type Evaluator = Evaluator;

    fn configure_events(settings: Option<EventSettings>) -> Result<(), String> {
        super::configure_events(settings.map(|s| EventOptions {
            sdk_key: s.sdk_key,
            base_uri: s.base_uri,
            all_attributes_private: s.all_attributes_private,
            private_attributes: s.private_attributes,
            capacity: s.capacity,
            context_keys_capacity: s.context_keys_capacity,
            context_keys_flush_interval_ms: s.context_keys_flush_interval_ms,
            retry_delay_ms: s.retry_delay_ms,
            timeout_ms: s.timeout_ms,
        }))
    }

    fn track(
        key: String,
        context_json: String,
        data_json: Option<String>,
        metric_value: Option<f64>,
    ) -> Result<(), EvalError> {
        super::track(&key, &context_json, data_json.as_deref(), metric_value).map_err(eval_error)
    }

    fn identify(context_json: String) -> Result<(), EvalError> {
        super::identify(&context_json).map_err(eval_error)
    }

    fn flush() -> FlushReport {
        let report = super::flush();
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

impl GuestEvaluator for Evaluator {
    fn open(config: api::Config) -> Result<api::Evaluator, api::StoreError> {
        let ttl_ms = config.cache_ttl_ms.unwrap_or(0);
        let config = Config::new(config_input(config)).map_err(store_error)?;
        Ok(api::Evaluator::new(Evaluator::open(config, ttl_ms)))
    }

    fn from_items(
        initialized: bool,
        flags: Vec<KeyedJson>,
        segments: Vec<KeyedJson>,
    ) -> api::Evaluator {
        let pairs = |items: Vec<KeyedJson>| items.into_iter().map(|i| (i.key, i.json)).collect();
        api::Evaluator::new(Evaluator::from_items(
            initialized,
            pairs(flags),
            pairs(segments),
        ))
    }

    fn evaluate(
        &self,
        flag_key: String,
        context_json: String,
        default_json: String,
    ) -> Result<Evaluation, EvalError> {
        let evaluation = Evaluator::evaluate(self, &flag_key, &context_json, &default_json)
            .map_err(eval_error)?;
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
        Evaluator::all_flags_state(self, &context_json, state_options(options)).map_err(eval_error)
    }

    fn all_flags_state_within(
        &self,
        context_json: String,
        options: StateOptions,
        budget_ms: u32,
    ) -> Result<Option<String>, EvalError> {
        Evaluator::all_flags_state_within(self, &context_json, state_options(options), budget_ms)
            .map_err(eval_error)
    }

    fn secure_mode_hash(&self, context_json: String, sdk_key: String) -> Result<String, EvalError> {
        Evaluator::secure_mode_hash(self, &context_json, &sdk_key).map_err(eval_error)
    }
}

fn state_options(options: StateOptions) -> crate::StateOptions {
    crate::StateOptions {
        filter: match options.filter {
            FlagFilter::All => Filter::All,
            FlagFilter::ClientSide => Filter::ClientSide,
            FlagFilter::Mobile => Filter::Mobile,
        },
        with_reasons: options.with_reasons,
        details_only_for_tracked_flags: options.details_only_for_tracked_flags,
    }
}

fn millis(ms: u32) -> Duration {
    Duration::from_millis(u64::from(ms))
}

/// The evaluator's config record as the store's input (the same fields; the
/// evaluator's own `cache-ttl-ms` aside).
fn config_input(c: api::Config) -> ConfigInput {
    ConfigInput {
        table: c.table,
        prefix: c.prefix,
        region: c.region,
        endpoint: c.endpoint,
        credentials: Some(Credentials {
            access_key_id: c.credentials.access_key_id,
            secret_access_key: c.credentials.secret_access_key,
            session_token: c.credentials.session_token,
        }),
        retry: c.retry.map(|r| RetryPolicy {
            max_attempts: r.max_attempts,
            base_delay: millis(r.base_delay_ms),
            max_delay: millis(r.max_delay_ms),
        }),
        timeouts: c.timeouts.map(|t| Timeouts {
            connect: t.connect_ms.map(millis),
            first_byte: t.first_byte_ms.map(millis),
            between_bytes: t.between_bytes_ms.map(millis),
            request: t.request_ms.map(millis),
        }),
        init_concurrency: c.init_concurrency,
        init_no_progress_ms: c.init_no_progress_ms,
    }
}

fn eval_error(e: super::EvalError) -> EvalError {
    match e {
        super::EvalError::InvalidContext(m) => EvalError::InvalidContext(m),
        super::EvalError::InvalidDefault(m) => EvalError::InvalidDefault(m),
        super::EvalError::Store(e) => EvalError::Store(store_error(e)),
    }
}

/// The store's error as the evaluator's WIT repeats it (the same cases).
fn store_error(e: StoreError) -> api::StoreError {
    match e {
        StoreError::InvalidConfig(m) => api::StoreError::InvalidConfig(m),
        StoreError::InvalidInput(m) => api::StoreError::InvalidInput(m),
        StoreError::Transport(t) => api::StoreError::Transport(api::TransportError {
            code: t.code,
            detail: t.detail,
            attempts: t.attempts,
        }),
        StoreError::Service(s) => api::StoreError::Service(api::ServiceError {
            code: s.code,
            message: s.message,
            status: s.status,
            request_id: s.request_id,
            attempts: s.attempts,
        }),
        StoreError::MalformedResponse(m) => api::StoreError::MalformedResponse(m),
    }
}

export!(Component);
