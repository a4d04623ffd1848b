//! Decoding of successful responses. Anything unexpected (not JSON, wrong
//! types, missing fields) becomes a malformed-response error, never a panic.

use std::collections::HashMap;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use crate::error::StoreError;
use crate::model::Item;
use crate::schema;

/// One attribute value; types the stores do not use are ignored.
#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
pub struct Attr {
    #[serde(rename = "S")]
    pub s: Option<String>,
    #[serde(rename = "N")]
    pub n: Option<String>,
    #[serde(rename = "SS")]
    pub ss: Option<Vec<String>>,
}

/// A data store row: the attributes the stores read back. Others (the
/// `namespace` the row was queried by, anything extra) are skipped while
/// decoding, without being stored.
#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
pub struct Row {
    pub key: Option<Attr>,
    pub version: Option<Attr>,
    pub item: Option<Attr>,
}

/// One page of a Query.
#[derive(Debug, Deserialize)]
pub struct QueryPage {
    #[serde(rename = "Items", default)]
    pub items: Vec<Row>,
    #[serde(rename = "LastEvaluatedKey")]
    pub last_evaluated_key: Option<Value>,
}

fn decode<T: DeserializeOwned>(operation: &str, body: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(body).map_err(|e| {
        StoreError::malformed(format!("{operation} response could not be decoded: {e}"))
    })
}

/// GetItem: the item, if any, decoded into the row type `T`.
pub fn get_item<T: DeserializeOwned>(body: &[u8]) -> Result<Option<T>, StoreError> {
    #[derive(Deserialize)]
    #[serde(bound = "T: DeserializeOwned")]
    struct Output<T> {
        #[serde(rename = "Item")]
        item: Option<T>,
    }
    Ok(decode::<Output<T>>("GetItem", body)?.item)
}

/// PutItem: nothing is read from a success, but it must be a JSON object.
pub fn put_item(body: &[u8]) -> Result<(), StoreError> {
    decode::<serde_json::Map<String, Value>>("PutItem", body).map(|_| ())
}

/// Query: one page.
pub fn query(body: &[u8]) -> Result<QueryPage, StoreError> {
    let page: QueryPage = decode("Query", body)?;
    if let Some(key) = &page.last_evaluated_key {
        if !key.is_object() {
            return Err(StoreError::malformed(
                "Query response has a LastEvaluatedKey that is not an object",
            ));
        }
    }
    Ok(page)
}

/// BatchWriteItem: the write requests DynamoDB did not process, to be sent again.
pub fn unprocessed_items(body: &[u8], table: &str) -> Result<Vec<Value>, StoreError> {
    #[derive(Deserialize)]
    struct Output {
        #[serde(rename = "UnprocessedItems", default)]
        unprocessed: HashMap<String, Vec<Value>>,
    }
    let mut output: Output = decode("BatchWriteItem", body)?;
    if let Some(other) = output.unprocessed.keys().find(|t| *t != table) {
        return Err(StoreError::malformed(format!(
            "BatchWriteItem response lists unprocessed items of another table {other:?}"
        )));
    }
    let requests = output.unprocessed.remove(table).unwrap_or_default();
    if let Some(bad) = requests.iter().find(|r| {
        r.get("PutRequest")
            .or_else(|| r.get("DeleteRequest"))
            .is_none()
    }) {
        // `serde_json::to_string`, not `Display`: the component has the one
        // writer of JSON already, and Display would add two more.
        let bad = serde_json::to_string(bad).unwrap_or_default();
        return Err(StoreError::malformed(format!(
            "BatchWriteItem response has an unprocessed entry that is not a write request: {bad}"
        )));
    }
    Ok(requests)
}

/// DescribeTable: the table status (`ACTIVE`, `CREATING`, ...).
pub fn table_status(body: &[u8]) -> Result<String, StoreError> {
    #[derive(Deserialize)]
    struct Table {
        #[serde(rename = "TableStatus")]
        status: String,
    }
    #[derive(Deserialize)]
    struct Output {
        #[serde(rename = "Table")]
        table: Table,
    }
    Ok(decode::<Output>("DescribeTable", body)?.table.status)
}

/// The `key` attribute of a row, which must be a string.
pub fn row_key(namespace: &str, key: Option<Attr>) -> Result<String, StoreError> {
    key.and_then(|a| a.s).ok_or_else(|| {
        StoreError::malformed(format!(
            "an item in {namespace:?} has no string key attribute"
        ))
    })
}

/// A flag, segment or other item row: its key and stored version.
pub fn stored_item(namespace: &str, row: Row) -> Result<(String, Item), StoreError> {
    let key = row_key(namespace, row.key)?;
    // One place formats the error (smaller code than one format per case).
    match stored_version_and_item(&key, row.version, row.item) {
        Ok(item) => Ok((key, item)),
        Err(what) => Err(StoreError::malformed(format!(
            "item {key:?} in {namespace:?}: {what}"
        ))),
    }
}

/// The stored item of a row with key `key`, or what is wrong with it.
fn stored_version_and_item(
    key: &str,
    version: Option<Attr>,
    item: Option<Attr>,
) -> Result<Item, String> {
    if key.is_empty() {
        return Err("the key is empty".into());
    }
    let version = match version {
        None => return Err("no version attribute".into()),
        Some(Attr { n: Some(n), .. }) => n
            .parse::<u64>()
            .map_err(|_| format!("version {n:?} is not a non-negative integer"))?,
        Some(_) => return Err("the version attribute is not a number".into()),
    };
    let json = match item {
        None => None,
        Some(Attr { s: Some(s), .. }) => Some(s),
        Some(_) => return Err("the item attribute is not a string".into()),
    };
    let deleted = schema::is_deleted(json.as_deref())?;
    Ok(Item {
        version,
        deleted,
        json: json.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_item_decodes_present_and_absent() {
        assert_eq!(get_item::<Row>(b"{}").unwrap(), None);
        let row: Row = get_item(
            br#"{"Item":{"key":{"S":"k"},"version":{"N":"5"},"m":{"M":{"x":{"S":"y"}}}}}"#,
        )
        .unwrap()
        .unwrap();
        assert_eq!(row.key.unwrap().s.as_deref(), Some("k"));
        assert_eq!(row.version.unwrap().n.as_deref(), Some("5"));
    }

    #[test]
    fn broken_bodies_are_malformed_responses() {
        for body in [
            &b""[..],
            b"{",
            b"[]",
            b"null",
            br#"{"Item":{"key":{"S":5}}}"#,
            br#"{"Item":[1]}"#,
            b"\xff\xfe",
        ] {
            assert!(
                matches!(get_item::<Row>(body), Err(StoreError::MalformedResponse(_))),
                "{body:?}"
            );
        }
        assert!(matches!(
            query(br#"{"Items":{}}"#),
            Err(StoreError::MalformedResponse(_))
        ));
        assert!(matches!(
            query(br#"{"Items":[],"LastEvaluatedKey":"x"}"#),
            Err(StoreError::MalformedResponse(_))
        ));
        assert!(matches!(
            unprocessed_items(br#"{"UnprocessedItems":{"t":[{"x":1}]}}"#, "t"),
            Err(StoreError::MalformedResponse(_))
        ));
        assert!(matches!(
            table_status(br#"{"Table":{}}"#),
            Err(StoreError::MalformedResponse(_))
        ));
    }

    #[test]
    fn query_pages_carry_the_last_evaluated_key() {
        let page = query(br#"{"Items":[{"key":{"S":"a"}}],"Count":1,"LastEvaluatedKey":{"namespace":{"S":"f"},"key":{"S":"a"}}}"#).unwrap();
        assert_eq!(page.items.len(), 1);
        assert_eq!(page.last_evaluated_key.unwrap()["key"]["S"], "a");
        let last = query(br#"{"Items":[],"Count":0}"#).unwrap();
        assert!(last.last_evaluated_key.is_none());
    }

    #[test]
    fn unprocessed_items_are_returned_for_resending() {
        assert!(unprocessed_items(br#"{"UnprocessedItems":{}}"#, "t")
            .unwrap()
            .is_empty());
        assert!(unprocessed_items(b"{}", "t").unwrap().is_empty());
        let left = unprocessed_items(
            br#"{"UnprocessedItems":{"t":[{"DeleteRequest":{"Key":{}}}]}}"#,
            "t",
        )
        .unwrap();
        assert_eq!(left.len(), 1);
    }

    #[test]
    fn unprocessed_items_that_are_not_write_requests_of_the_table_are_malformed() {
        let message = |body: &str| match unprocessed_items(body.as_bytes(), "t") {
            Err(StoreError::MalformedResponse(message)) => message,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            message(r#"{"UnprocessedItems":{"t":[{"Get":{"a":[1,"x"]}}]}}"#),
            "BatchWriteItem response has an unprocessed entry that is not a write request: \
             {\"Get\":{\"a\":[1,\"x\"]}}"
        );
        assert!(message(r#"{"UnprocessedItems":{"u":[]}}"#).contains("another table \"u\""));
    }

    fn raw(body: &str) -> Row {
        serde_json::from_str(body).unwrap()
    }

    #[test]
    fn stored_items_decode_versions_and_tombstones() {
        let (key, item) = stored_item("features", raw(r#"{"key":{"S":"f"},"version":{"N":"7"},"item":{"S":"{\"key\": \"f\", \"version\": 7}"}}"#)).unwrap();
        assert_eq!((key.as_str(), item.version, item.deleted), ("f", 7, false));
        let (_, java) = stored_item(
            "features",
            raw(r#"{"key":{"S":"f"},"version":{"N":"8"},"item":{"S":"null"}}"#),
        )
        .unwrap();
        assert!(java.deleted);
        assert_eq!(java.version, 8);
        let (_, missing) =
            stored_item("features", raw(r#"{"key":{"S":"f"},"version":{"N":"9"}}"#)).unwrap();
        assert!(missing.deleted);
        assert_eq!(missing.json, "");
        let (_, json) = stored_item(
            "features",
            raw(r#"{"key":{"S":"f"},"version":{"N":"9"},"item":{"S":"{\"deleted\":true}"}}"#),
        )
        .unwrap();
        assert!(json.deleted);
    }

    #[test]
    fn malformed_rows_name_the_item() {
        for (row, why) in [
            (r#"{"version":{"N":"1"}}"#, "no string key"),
            (r#"{"key":{"S":"f"}}"#, "no version"),
            (r#"{"key":{"S":"f"},"version":{"S":"1"}}"#, "not a number"),
            (
                r#"{"key":{"S":"f"},"version":{"N":"-1"}}"#,
                "not a non-negative integer",
            ),
            (
                r#"{"key":{"S":"f"},"version":{"N":"1"},"item":{"N":"1"}}"#,
                "not a string",
            ),
            (
                r#"{"key":{"S":"f"},"version":{"N":"1"},"item":{"S":"oops"}}"#,
                "not a JSON object",
            ),
        ] {
            match stored_item("features", raw(row)) {
                Err(StoreError::MalformedResponse(msg)) => {
                    assert!(msg.contains(why), "{row}: {msg}")
                }
                other => panic!("{row}: {other:?}"),
            }
        }
    }
}
