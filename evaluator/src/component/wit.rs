//! The WIT glue (feature `component`): `ld-dynamodb:evaluation/evaluator`
//! exported over the evaluator of [`super`], its types mapped onto the
//! evaluator's and the store crate's.

wit_bindgen::generate!({
    path: "wit",
    world: "flag-evaluator",
    generate_all,
});

use exports::ld_dynamodb::evaluation::evaluator::{
    self as api, EvalError, Evaluation, EventSettings, FlagFilter, FlushReport, Guest,
    GuestEvaluator, KeyedJson, StateOptions,
};
use exports::ld_dynamodb::store::types;
use ld_dynamodb_store::config::{setting_value, Config};
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
    fn open(mut config: types::Config) -> Result<api::Evaluator, types::StoreError> {
        let ttl_ms = cache_ttl_ms(&mut config.settings).map_err(store_error)?;
        let config = ld_dynamodb_store::config_from_wit!(config)
            .and_then(Config::new)
            .map_err(store_error)?;
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

/// The evaluator's own setting, `cache-ttl-ms` (0 when not given), taken
/// out of the store's settings (the store refuses names it does not know).
fn cache_ttl_ms(settings: &mut Vec<types::Setting>) -> Result<u32, StoreError> {
    let mut ttl_ms = 0;
    for setting in settings.iter().filter(|s| s.name == CACHE_TTL) {
        ttl_ms = setting_value(CACHE_TTL, &setting.value)?;
    }
    settings.retain(|s| s.name != CACHE_TTL);
    Ok(ttl_ms)
}

/// The name of the evaluator's own setting.
const CACHE_TTL: &str = "cache-ttl-ms";

fn eval_error(e: super::EvalError) -> EvalError {
    match e {
        super::EvalError::InvalidContext(m) => EvalError::InvalidContext(m),
        super::EvalError::InvalidDefault(m) => EvalError::InvalidDefault(m),
        super::EvalError::Store(e) => EvalError::Store(store_error(e)),
    }
}

/// The store's error as the store's WIT type, which the evaluator exports.
fn store_error(e: StoreError) -> types::StoreError {
    ld_dynamodb_store::store_error_to_wit!(types, e)
}

export!(Component);
