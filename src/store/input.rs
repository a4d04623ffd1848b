//! Checks of the caller's input before any request: kinds, keys and item JSON.

use serde_json::Value;

use crate::big_segments::{METADATA_BASE, USER_BASE};
use crate::error::StoreError;
use crate::model::Item;
use crate::schema::{self, INITED_BASE};

/// Namespace bases the data store never uses as a kind.
const RESERVED_KINDS: &[&str] = &[INITED_BASE, METADATA_BASE, USER_BASE];

/// A kind must be non-empty, not reserved, and free of `:` (the prefix
/// separator: without a prefix, `env:features` would address prefix `env`'s rows).
pub fn validate_kind(kind: &str) -> Result<(), StoreError> {
    if kind.is_empty() {
        return Err(StoreError::InvalidInput("kind must not be empty".into()));
    }
    if kind.contains(':') {
        return Err(StoreError::InvalidInput(format!(
            "kind {kind:?} must not contain ':' (the prefix separator)"
        )));
    }
    if RESERVED_KINDS.contains(&kind) {
        return Err(StoreError::InvalidInput(format!(
            "{kind:?} is reserved and cannot be used as a kind"
        )));
    }
    Ok(())
}

/// An item key must be non-empty.
pub fn validate_key(key: &str) -> Result<(), StoreError> {
    if key.is_empty() {
        return Err(StoreError::InvalidInput(
            "item key must not be empty".into(),
        ));
    }
    Ok(())
}

/// The JSON to store for an item, and the parsed object of a live item: a
/// tombstone for a deleted item (nothing parsed), otherwise the item's JSON
/// after checking that it is an object whose `key` and `version` match.
pub fn item_json(key: &str, item: &Item) -> Result<(String, Option<Value>), StoreError> {
    if item.deleted {
        return Ok((schema::tombstone_json(key, item.version), None));
    }
    let invalid = |why: String| Err(StoreError::InvalidInput(format!("item {key:?}: {why}")));
    let parsed: Value = match serde_json::from_str(&item.json) {
        Ok(v) => v,
        Err(e) => return invalid(format!("not valid JSON: {e}")),
    };
    let Some(object) = parsed.as_object() else {
        return invalid("JSON is not an object".into());
    };
    match object.get("key") {
        Some(Value::String(k)) if k == key => {}
        Some(Value::String(k)) => return invalid(format!("its \"key\" is {k:?}, not {key:?}")),
        _ => return invalid("JSON has no string \"key\"".into()),
    }
    match object.get("version").and_then(Value::as_u64) {
        Some(v) if v == item.version => {}
        Some(v) => return invalid(format!("its \"version\" is {v}, not {}", item.version)),
        None => return invalid("JSON has no non-negative integer \"version\"".into()),
    }
    Ok((item.json.clone(), Some(parsed)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_with_the_prefix_separator_are_rejected() {
        for kind in ["env:features", ":", "features:"] {
            match validate_kind(kind) {
                Err(StoreError::InvalidInput(m)) => assert!(m.contains("':'"), "{m}"),
                other => panic!("{kind}: {other:?}"),
            }
        }
        assert!(validate_kind("features").is_ok());
        assert!(validate_kind("$inited").is_err());
        assert!(validate_kind("").is_err());
    }
}
