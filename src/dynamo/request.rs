//! Request bodies of the operations the stores use, exactly as the official
//! stores send them.

use serde_json::{json, Value};

use crate::schema::{ATTR_ITEM, ATTR_KEY, ATTR_NAMESPACE, ATTR_VERSION};

/// The condition every official store (but Node's) puts on Upsert.
pub const UPSERT_CONDITION: &str =
    "attribute_not_exists(#namespace) or attribute_not_exists(#key) or :version > #version";

/// Most write requests one BatchWriteItem may carry.
pub const BATCH_WRITE_LIMIT: usize = 25;

fn s(value: &str) -> Value {
    json!({ "S": value })
}

/// The primary key of an item.
pub fn key(namespace: &str, key: &str) -> Value {
    json!({ ATTR_NAMESPACE: s(namespace), ATTR_KEY: s(key) })
}

/// The four attributes of a flag, segment or other item.
pub fn item(namespace: &str, key: &str, version: u64, item_json: &str) -> Value {
    json!({
        ATTR_NAMESPACE: s(namespace),
        ATTR_KEY: s(key),
        ATTR_VERSION: { "N": version.to_string() },
        ATTR_ITEM: s(item_json),
    })
}

/// GetItem with a consistent read.
pub fn get_item(table: &str, namespace: &str, item_key: &str) -> Value {
    json!({ "TableName": table, "Key": key(namespace, item_key), "ConsistentRead": true })
}

/// One page of a Query of a namespace, strongly consistent or not. With
/// `keys_only`, only the key attributes are read (Init's scan of existing keys).
pub fn query(
    table: &str,
    namespace: &str,
    keys_only: bool,
    consistent: bool,
    start: Option<&Value>,
) -> Value {
    let mut body = json!({
        "TableName": table,
        "ConsistentRead": consistent,
        "KeyConditions": {
            ATTR_NAMESPACE: { "ComparisonOperator": "EQ", "AttributeValueList": [s(namespace)] }
        },
    });
    if keys_only {
        body["ProjectionExpression"] = json!("#namespace, #key");
        body["ExpressionAttributeNames"] =
            json!({ "#namespace": ATTR_NAMESPACE, "#key": ATTR_KEY });
    }
    if let Some(start) = start {
        body["ExclusiveStartKey"] = start.clone();
    }
    body
}

/// PutItem that writes only when the table has no newer or equal version.
pub fn conditional_put(table: &str, item: Value, version: u64) -> Value {
    json!({
        "TableName": table,
        "Item": item,
        "ConditionExpression": UPSERT_CONDITION,
        "ExpressionAttributeNames": { "#namespace": ATTR_NAMESPACE, "#key": ATTR_KEY, "#version": ATTR_VERSION },
        "ExpressionAttributeValues": { ":version": { "N": version.to_string() } },
    })
}

/// A BatchWriteItem put request.
pub fn put_request(item: Value) -> Value {
    json!({ "PutRequest": { "Item": item } })
}

/// A BatchWriteItem delete request.
pub fn delete_request(namespace: &str, item_key: &str) -> Value {
    json!({ "DeleteRequest": { "Key": key(namespace, item_key) } })
}

/// The body of a BatchWriteItem of at most [`BATCH_WRITE_LIMIT`] requests,
/// serialized straight from the borrowed requests.
pub fn batch_write(table: &str, requests: &[Value]) -> Vec<u8> {
    debug_assert!(requests.len() <= BATCH_WRITE_LIMIT);
    let mut body = Vec::with_capacity(64 + requests.len() * 256);
    body.extend_from_slice(b"{\"RequestItems\":{");
    serde_json::to_writer(&mut body, table).expect("writing to a Vec cannot fail");
    body.extend_from_slice(b":[");
    for (i, request) in requests.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        serde_json::to_writer(&mut body, request).expect("writing to a Vec cannot fail");
    }
    body.extend_from_slice(b"]}}");
    body
}

/// CreateTable with the layout the stores use, on-demand capacity.
pub fn create_table(table: &str) -> Value {
    json!({
        "TableName": table,
        "AttributeDefinitions": [
            { "AttributeName": ATTR_NAMESPACE, "AttributeType": "S" },
            { "AttributeName": ATTR_KEY, "AttributeType": "S" },
        ],
        "KeySchema": [
            { "AttributeName": ATTR_NAMESPACE, "KeyType": "HASH" },
            { "AttributeName": ATTR_KEY, "KeyType": "RANGE" },
        ],
        "BillingMode": "PAY_PER_REQUEST",
    })
}

/// DescribeTable.
pub fn describe_table(table: &str) -> Value {
    json!({ "TableName": table })
}

/// Serializes a body.
pub fn encode(body: &Value) -> Vec<u8> {
    serde_json::to_vec(body).expect("JSON values always serialize")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_item_has_exactly_the_four_attributes() {
        let v = item("p:features", "flag-a", 12, r#"{"key":"flag-a"}"#);
        assert_eq!(
            v,
            json!({
                "namespace": {"S": "p:features"}, "key": {"S": "flag-a"},
                "version": {"N": "12"}, "item": {"S": "{\"key\":\"flag-a\"}"}
            })
        );
    }

    #[test]
    fn upsert_condition_matches_the_official_stores() {
        let body = conditional_put("t", item("features", "k", 3, "{}"), 3);
        assert_eq!(
            body["ConditionExpression"],
            "attribute_not_exists(#namespace) or attribute_not_exists(#key) or :version > #version"
        );
        assert_eq!(
            body["ExpressionAttributeNames"],
            json!({"#namespace": "namespace", "#key": "key", "#version": "version"})
        );
        assert_eq!(
            body["ExpressionAttributeValues"],
            json!({":version": {"N": "3"}})
        );
    }

    #[test]
    fn queries_are_consistent_or_not_and_page() {
        let first = query("t", "features", true, true, None);
        assert_eq!(first["ConsistentRead"], true);
        assert_eq!(
            first["KeyConditions"]["namespace"]["AttributeValueList"],
            json!([{"S": "features"}])
        );
        assert_eq!(first["ProjectionExpression"], "#namespace, #key");
        assert!(first.get("ExclusiveStartKey").is_none());
        let start = key("features", "k9");
        let next = query("t", "features", false, false, Some(&start));
        assert_eq!(next["ConsistentRead"], false);
        assert_eq!(next["ExclusiveStartKey"], start);
        assert!(next.get("ProjectionExpression").is_none());
        assert!(next.get("ExpressionAttributeNames").is_none());
    }

    #[test]
    fn batch_write_groups_requests_under_the_table() {
        let body: Value =
            serde_json::from_slice(&batch_write("tbl", &[delete_request("features", "old")]))
                .unwrap();
        assert_eq!(
            body,
            json!({"RequestItems": {"tbl": [{"DeleteRequest": {"Key": {"namespace": {"S": "features"}, "key": {"S": "old"}}}}]}})
        );
    }
}
