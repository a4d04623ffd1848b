//! LaunchDarkly's JSON (the `/sdk/latest-all` shape and single items) to and
//! from the component's types.

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{Map, Value};

use crate::embed::{Collection, Item, KeyedItem};

/// The two kinds the CLI knows, with their namespace names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Feature flags (namespace `features`).
    Flags,
    /// Segments (namespace `segments`).
    Segments,
}

impl Kind {
    /// The namespace name the official stores use.
    pub fn namespace(self) -> &'static str {
        match self {
            Kind::Flags => ld_dynamodb_store::model::FLAGS_KIND,
            Kind::Segments => ld_dynamodb_store::model::SEGMENTS_KIND,
        }
    }

    /// The field of `/sdk/latest-all` holding this kind.
    pub fn field(self) -> &'static str {
        match self {
            Kind::Flags => "flags",
            Kind::Segments => "segments",
        }
    }
}

/// An item given as LaunchDarkly JSON: needs a string `key` and an integer `version`;
/// `"deleted": true` makes it a tombstone.
pub fn keyed_item(value: &Value) -> Result<KeyedItem> {
    let object = value
        .as_object()
        .ok_or_else(|| anyhow!("an item must be a JSON object"))?;
    let key = object
        .get("key")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("an item needs a string \"key\""))?;
    let version = object
        .get("version")
        .and_then(Value::as_u64)
        .ok_or_else(|| anyhow!("item {key:?} needs a non-negative integer \"version\""))?;
    let deleted = object.get("deleted") == Some(&Value::Bool(true));
    Ok(KeyedItem {
        key: key.to_string(),
        item: Item {
            version,
            deleted,
            json: value.to_string(),
        },
    })
}

/// Collections from `{"flags":{key:item},"segments":{key:item}}`, segments first
/// so they land before the flags that use them.
pub fn all_data(text: &str) -> Result<Vec<Collection>> {
    let value: Value = serde_json::from_str(text).context("the data is not valid JSON")?;
    let object = value
        .as_object()
        .ok_or_else(|| anyhow!("the data must be a JSON object with \"flags\" and \"segments\""))?;
    [Kind::Segments, Kind::Flags]
        .into_iter()
        .map(|kind| {
            // A missing kind is an empty one, as LaunchDarkly's file data
            // source reads it (Init then leaves none of that kind).
            let empty = Map::new();
            let items = match object.get(kind.field()) {
                None => &empty,
                Some(items) => items.as_object().ok_or_else(|| {
                    anyhow!("{:?} must be an object of key to item", kind.field())
                })?,
            };
            let items = items
                .iter()
                .map(|(key, item)| {
                    let keyed =
                        keyed_item(item).with_context(|| format!("{} {key:?}", kind.field()))?;
                    if &keyed.key != key {
                        bail!(
                            "{} {key:?} has the key {:?} inside",
                            kind.field(),
                            keyed.key
                        );
                    }
                    Ok(keyed)
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(Collection {
                kind: kind.namespace().to_string(),
                items,
            })
        })
        .collect()
}

/// The stored JSON of an item, parsed (`null` for a deleted one without JSON).
pub fn item_json(item: &Item) -> Result<Value> {
    if item.json.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(&item.json).context("stored item is not valid JSON")
}

/// An item as stored: version, deleted flag and the raw `item` string.
pub fn raw_item(item: &Item) -> Value {
    let mut object = Map::new();
    object.insert("version".into(), item.version.into());
    object.insert("deleted".into(), item.deleted.into());
    object.insert("item".into(), item.json.clone().into());
    Value::Object(object)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_data_puts_segments_first_and_keeps_items() {
        let data = all_data(
            r#"{"flags":{"f1":{"key":"f1","version":3,"on":true}},"segments":{"s1":{"key":"s1","version":1,"deleted":true}}}"#,
        )
        .unwrap();
        assert_eq!(data[0].kind, "segments");
        assert!(data[0].items[0].item.deleted);
        assert_eq!(data[1].kind, "features");
        assert_eq!(data[1].items[0].item.version, 3);
        let parsed: Value = serde_json::from_str(&data[1].items[0].item.json).unwrap();
        assert_eq!(parsed["on"], true);
    }

    #[test]
    fn a_missing_kind_is_an_empty_kind() {
        let data = all_data(r#"{"flags":{"f1":{"key":"f1","version":1}}}"#).unwrap();
        assert_eq!(
            (data[0].kind.as_str(), data[0].items.len()),
            ("segments", 0)
        );
        assert_eq!(
            (data[1].kind.as_str(), data[1].items.len()),
            ("features", 1)
        );
    }

    #[test]
    fn bad_data_is_explained() {
        let err = |text: &str| all_data(text).unwrap_err().to_string();
        assert!(err("[").contains("not valid JSON"));
        assert!(err(r#"{"flags":[]}"#).contains("\"flags\" must be an object"));
        assert!(
            err(r#"{"flags":{"a":{"key":"b","version":1}},"segments":{}}"#)
                .contains("has the key \"b\"")
        );
        let e = all_data(r#"{"flags":{"a":{"key":"a"}},"segments":{}}"#).unwrap_err();
        assert!(
            format!("{e:#}").contains("non-negative integer \"version\""),
            "{e:#}"
        );
    }
}
