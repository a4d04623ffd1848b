//! `ld-dynamodb evaluate` and `ld-dynamodb flags-state`: the flag evaluator
//! component (the evaluation the edge runs) over the table, its answers in
//! the JSON shapes of LaunchDarkly's SDKs.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context as _, Result};
use serde_json::{json, Value};

use ld_dynamodb_host::evaluator::{
    EvalError, Evaluation, Evaluator, FlagFilter, StateOptions, EVALUATOR_FILE,
};
use ld_dynamodb_host::Error;

/// Input the evaluator refused (the context or the default value): the
/// command exits with 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InvalidInput(String);

/// The evaluator component: `explicit`, else `flag-evaluator.wasm` beside the
/// executable, else in `../component` from it (the build's `target/` layout).
pub fn evaluator_path(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = explicit {
        return Ok(path.to_path_buf());
    }
    let exe = std::env::current_exe().context("cannot find this executable")?;
    let dir = exe.parent().unwrap_or(Path::new("."));
    let candidates = [
        dir.join(EVALUATOR_FILE),
        dir.join("../component").join(EVALUATOR_FILE),
    ];
    candidates
        .iter()
        .find(|path| path.is_file())
        .cloned()
        .ok_or_else(|| {
            anyhow!(
                "the flag evaluator component is not found ({} or {}): build it with \
                 scripts/edge-build.sh (target/component/{EVALUATOR_FILE}), then pass \
                 --evaluator PATH or set LD_DYNAMODB_EVALUATOR",
                candidates[0].display(),
                candidates[1].display()
            )
        })
}

/// One flag's detail as the SDKs shape it:
/// `{"value": ..., "variationIndex": ..., "reason": {...}}`.
pub async fn evaluate(
    evaluator: &mut Evaluator,
    flag: &str,
    context: &str,
    default: Option<&str>,
) -> Result<Value> {
    let detail = evaluator
        .evaluate(flag, context, default.unwrap_or("null"))
        .await
        .map_err(refused)?;
    detail_json(&detail)
}

/// Every flag's state for `context`, as `allFlagsState(...).toJSON()`.
pub async fn flags_state(
    evaluator: &mut Evaluator,
    context: &str,
    options: StateOptions,
) -> Result<Value> {
    let state = evaluator
        .all_flags_state(context, options)
        .await
        .map_err(refused)?;
    serde_json::from_str(&state).context("the evaluator's state is not JSON")
}

/// The filter the options name.
pub fn filter(client_side: bool, mobile: bool) -> FlagFilter {
    match (client_side, mobile) {
        (true, _) => FlagFilter::ClientSide,
        (_, true) => FlagFilter::Mobile,
        _ => FlagFilter::All,
    }
}

/// The evaluator's error: bad input as [`InvalidInput`], the store's in words.
fn refused(error: Error) -> anyhow::Error {
    match error {
        // The evaluator's words say what was wrong ("invalid context: ...").
        Error::Evaluation(EvalError::InvalidContext(why)) => anyhow!(InvalidInput(why)),
        Error::Evaluation(EvalError::InvalidDefault(why)) => {
            anyhow!(InvalidInput(format!("--default: {why}")))
        }
        Error::Store(e) => anyhow!("cannot read the table: {e}"),
        other => anyhow!(other),
    }
}

/// An evaluation as the SDKs' detail JSON.
fn detail_json(detail: &Evaluation) -> Result<Value> {
    let value: Value =
        serde_json::from_str(&detail.value_json).context("the evaluator's value is not JSON")?;
    let reason: Value =
        serde_json::from_str(&detail.reason_json).context("the evaluator's reason is not JSON")?;
    Ok(json!({
        "value": value,
        "variationIndex": detail.variation_index,
        "reason": reason,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_detail_keeps_the_value_index_and_reason_as_json() {
        let detail = Evaluation {
            value_json: r#"{"a":[1,2.5]}"#.into(),
            variation_index: Some(2),
            reason_json: r#"{"kind":"RULE_MATCH","ruleIndex":0,"ruleId":"r1"}"#.into(),
        };
        assert_eq!(
            detail_json(&detail).unwrap(),
            json!({ "value": { "a": [1, 2.5] }, "variationIndex": 2,
                    "reason": { "kind": "RULE_MATCH", "ruleIndex": 0, "ruleId": "r1" } })
        );
        let not_found = Evaluation {
            value_json: "null".into(),
            variation_index: None,
            reason_json: r#"{"kind":"ERROR","errorKind":"FLAG_NOT_FOUND"}"#.into(),
        };
        assert_eq!(
            detail_json(&not_found).unwrap(),
            json!({ "value": null, "variationIndex": null,
                    "reason": { "kind": "ERROR", "errorKind": "FLAG_NOT_FOUND" } })
        );
    }

    #[test]
    fn bad_input_is_its_own_error_and_the_store_s_is_not() {
        let e = refused(Error::Evaluation(EvalError::InvalidContext(
            "invalid context: missing field `key`".into(),
        )));
        assert_eq!(
            e.downcast_ref::<InvalidInput>().unwrap().to_string(),
            "invalid context: missing field `key`"
        );
        let e = refused(Error::Evaluation(EvalError::InvalidDefault(
            "the default is not JSON: expected value".into(),
        )));
        assert_eq!(
            e.downcast_ref::<InvalidInput>().unwrap().to_string(),
            "--default: the default is not JSON: expected value"
        );
        let e = refused(Error::Store(
            ld_dynamodb_host::embed::StoreError::InvalidConfig("no table".into()),
        ));
        assert!(e.downcast_ref::<InvalidInput>().is_none());
        assert!(e.to_string().starts_with("cannot read the table: "), "{e}");
    }

    #[test]
    fn the_filter_follows_the_options() {
        assert_eq!(filter(false, false), FlagFilter::All);
        assert_eq!(filter(true, false), FlagFilter::ClientSide);
        assert_eq!(filter(false, true), FlagFilter::Mobile);
    }

    #[test]
    fn a_named_evaluator_is_taken_as_given_and_a_missing_one_names_the_fix() {
        let named = Path::new("/x/e.wasm");
        assert_eq!(evaluator_path(Some(named)).unwrap(), named);
        // The test binary's folder (target/debug/deps) has no evaluator beside
        // it, nor in ../component.
        let e = evaluator_path(None).unwrap_err().to_string();
        assert!(
            e.contains("scripts/edge-build.sh") && e.contains("LD_DYNAMODB_EVALUATOR"),
            "{e}"
        );
    }
}
