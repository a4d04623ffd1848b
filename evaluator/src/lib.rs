//! LaunchDarkly flag evaluation over the ld-dynamodb data store, as a
//! WebAssembly component (`ld-dynamodb:evaluation/evaluator`). Every targeting
//! decision is made by LaunchDarkly's own evaluation engine
//! (`launchdarkly-server-sdk-evaluation`); this crate reads the data, parses
//! contexts and shapes the answers as the server SDKs do. The logic is plain
//! Rust, tested natively; `component` runs it on WASI and maps the WIT onto it
//! (wasm only).

#![deny(missing_docs)]

pub mod contexts;
pub mod data;
pub mod events;
pub mod flags_state;
pub mod matches;

use hmac::{Hmac, KeyInit, Mac};
use launchdarkly_server_sdk_evaluation::{
    evaluate as evaluate_flag, Context, Detail, Error, FlagValue, PrerequisiteEventRecorder, Reason,
};
use serde_json::Value;
use sha2::Sha256;

pub use contexts::{AsContext, ContextCache};
pub use data::Data;
pub use flags_state::{all_flags_state, all_flags_state_within, Filter, StateOptions};

// The WIT bindings that wit-bindgen generates there carry no docs.
#[cfg(target_arch = "wasm32")]
#[allow(missing_docs)]
pub mod component;

/// One evaluation: the value as JSON, the variation served, the reason.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// The value served (the default when no variation is).
    pub value: Value,
    /// The index of the variation served; `None` when the default is.
    pub variation_index: Option<isize>,
    /// Why, as LaunchDarkly's evaluation reason.
    pub reason: Reason,
}

/// A context from LaunchDarkly's context JSON (single-kind, multi-kind or the
/// legacy user shape), or why it is invalid (malformed, no key, bad kind).
pub fn parse_context(json: &str) -> Result<Context, String> {
    serde_json::from_str::<Context>(json).map_err(|e| format!("invalid context: {e}"))
}

/// A flag value as JSON. The engine keeps numbers as `f64`; a whole number is
/// written without a fraction, as JavaScript and the other SDKs write it.
pub fn value_json(value: &FlagValue) -> Value {
    match value {
        FlagValue::Number(n) if n.fract() == 0.0 && n.abs() < 9.007_199_254_740_992e15 => {
            Value::from(*n as i64)
        }
        other => other.as_json().unwrap_or(Value::Null),
    }
}

/// Evaluates `flag_key` for `context` as a server SDK's `variationDetail`
/// does: the default when the data is not initialized (`CLIENT_NOT_READY`),
/// the flag is unknown (`FLAG_NOT_FOUND`) or no variation is served.
pub fn evaluate<C>(data: &Data, flag_key: &str, context: &C, default: Value) -> Evaluation
where
    C: AsContext + ?Sized,
{
    evaluate_recording(data, flag_key, context, default, None)
}

/// [`evaluate`], telling `prerequisites` of each prerequisite evaluated (for
/// their events).
pub fn evaluate_recording<C>(
    data: &Data,
    flag_key: &str,
    context: &C,
    default: Value,
    prerequisites: Option<&dyn PrerequisiteEventRecorder>,
) -> Evaluation
where
    C: AsContext + ?Sized,
{
    let error = |error| Evaluation {
        value: default.clone(),
        variation_index: None,
        reason: Reason::Error { error },
    };
    if !data.initialized {
        return error(Error::ClientNotReady);
    }
    let Some(flag) = data.flag(flag_key) else {
        return error(Error::FlagNotFound);
    };
    let context = data.prepare(Some(flag_key), context);
    let detail: Detail<&FlagValue> = evaluate_flag(data, flag, &context, prerequisites);
    match (detail.value, detail.variation_index) {
        (Some(value), Some(index)) => Evaluation {
            value: value_json(value),
            variation_index: Some(index),
            reason: detail.reason,
        },
        // No variation (an off flag without one, an error): the default.
        _ => Evaluation {
            value: default,
            variation_index: None,
            reason: detail.reason,
        },
    }
}

/// The secure-mode hash of a context: hex HMAC-SHA256 of its canonical key,
/// keyed with the SDK key, as the server SDKs compute it.
pub fn secure_mode_hash(sdk_key: &str, context: &Context) -> String {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(sdk_key.as_bytes()).expect("any key length");
    mac.update(context.canonical_key().as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// A reason as LaunchDarkly's reason JSON.
pub fn reason_json(reason: &Reason) -> Value {
    serde_json::to_value(reason).unwrap_or(Value::Null)
}

/// A reason as the text of LaunchDarkly's reason JSON, written directly (its
/// fields in the engine's order: `kind` first, as the SDKs write it).
pub fn reason_text(reason: &Reason) -> String {
    serde_json::to_string(reason).unwrap_or_else(|_| "null".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn data() -> Data {
        let flag = json!({
            "key": "f", "version": 3, "on": true, "salt": "s",
            "targets": [{"values": ["u2"], "variation": 1}],
            "rules": [{"id": "r1", "variation": 2, "trackEvents": false,
                       "clauses": [{"attribute": "email", "op": "endsWith", "values": ["@example.com"],
                                    "negate": false}]}],
            "fallthrough": {"variation": 0}, "offVariation": 1,
            "variations": [1, 2.5, "three"], "trackEvents": false,
        });
        Data::from_json(true, vec![("f".into(), flag.to_string())], vec![]).0
    }

    fn context(json: Value) -> Context {
        parse_context(&json.to_string()).unwrap()
    }

    #[test]
    fn evaluates_targets_rules_and_fallthrough_with_whole_numbers_as_integers() {
        let data = data();
        let fallthrough = evaluate(&data, "f", &context(json!({"key": "u1"})), json!(null));
        assert_eq!(fallthrough.value, json!(1));
        assert_eq!(fallthrough.value.to_string(), "1");
        assert_eq!(
            reason_json(&fallthrough.reason),
            json!({"kind": "FALLTHROUGH"})
        );
        let target = evaluate(
            &data,
            "f",
            &context(json!({"kind": "user", "key": "u2"})),
            json!(0),
        );
        assert_eq!(
            (target.value, target.variation_index),
            (json!(2.5), Some(1))
        );
        let rule = evaluate(
            &data,
            "f",
            &context(json!({"key": "u3", "email": "a@example.com"})),
            json!(0),
        );
        assert_eq!(rule.value, json!("three"));
        assert_eq!(
            reason_json(&rule.reason),
            json!({"kind": "RULE_MATCH", "ruleIndex": 0, "ruleId": "r1"})
        );
    }

    #[test]
    fn the_reason_text_is_the_reason_json_with_kind_first() {
        let data = data();
        let rule = evaluate(
            &data,
            "f",
            &context(json!({"key": "u3", "email": "a@example.com"})),
            json!(0),
        );
        let unknown = evaluate(&data, "nope", &context(json!({"key": "u"})), json!(0));
        assert_eq!(
            reason_text(&rule.reason),
            r#"{"kind":"RULE_MATCH","ruleIndex":0,"ruleId":"r1"}"#
        );
        for reason in [rule.reason, unknown.reason] {
            let text = reason_text(&reason);
            assert_eq!(
                serde_json::from_str::<Value>(&text).unwrap(),
                reason_json(&reason)
            );
            assert!(text.starts_with(r#"{"kind":"#), "{text}");
        }
    }

    #[test]
    fn unknown_flags_and_uninitialized_data_give_the_default() {
        let data = data();
        let user = context(json!({"key": "u1"}));
        let unknown = evaluate(&data, "nope", &user, json!("d"));
        assert_eq!(unknown.value, json!("d"));
        assert_eq!(
            reason_json(&unknown.reason),
            json!({"kind": "ERROR", "errorKind": "FLAG_NOT_FOUND"})
        );
        let mut empty = data.clone();
        empty.initialized = false;
        let not_ready = evaluate(&empty, "f", &user, json!("d"));
        assert_eq!(
            reason_json(&not_ready.reason),
            json!({"kind": "ERROR", "errorKind": "CLIENT_NOT_READY"})
        );
    }

    #[test]
    fn malformed_or_keyless_contexts_are_errors() {
        for bad in [
            "{",
            "[]",
            r#"{"kind": "user"}"#,
            r#"{"kind": "user", "key": ""}"#,
            r#"{"kind": "multi"}"#,
            r#"{"kind": 5, "key": "k"}"#,
        ] {
            assert!(parse_context(bad).is_err(), "{bad}");
        }
        let multi = parse_context(
            r#"{"kind": "multi", "user": {"key": "u"}, "org": {"key": "o", "name": "Acme"}}"#,
        )
        .unwrap();
        assert_eq!(multi.canonical_key(), "org:o:user:u");
    }

    #[test]
    fn the_secure_mode_hash_is_hmac_sha256_of_the_canonical_key() {
        // HMAC-SHA256("secret", "Message"), a published test value.
        let user = context(json!({"key": "Message"}));
        assert_eq!(
            secure_mode_hash("secret", &user),
            "aa747c502a898200f9e4fa21bac68136f886a0e27aec70ba06daf2e2a5cb5597"
        );
        let org = context(json!({"kind": "org", "key": "Message"}));
        assert_ne!(
            secure_mode_hash("secret", &org),
            secure_mode_hash("secret", &user)
        );
    }
}
