//! Limits on the shape of a context the evaluation routes accept, so that the
//! work one anonymous request can cause stays close to a normal request's.
//!
//! LaunchDarkly's SDKs and services set no documented bound on a context
//! beyond its kind names; these are chosen above what targeting needs (a few
//! kinds, dozens of attributes, short lists) and below what a 16 KiB body can
//! hold: a context past one is refused with a 400 that names the limit.

use serde_json::Value;

/// Kinds in a multi-kind context.
pub const MAX_KINDS: usize = 16;
/// Attributes of one context (of each kind of a multi-kind one).
pub const MAX_ATTRIBUTES: usize = 256;
/// Elements of one array, at any depth: the engine copies an array for each
/// clause that reads it, so its length multiplies the cost of every rule on
/// that attribute.
pub const MAX_ARRAY: usize = 64;
/// Bytes of one string, key and attribute names included.
pub const MAX_STRING: usize = 4096;
/// Nesting of objects and arrays inside an attribute.
pub const MAX_DEPTH: usize = 8;

/// `Ok` when `json` is within every limit (or is not JSON at all, which the
/// evaluator refuses in its own words); else what is over which limit.
pub fn check(json: &str) -> Result<(), String> {
    let Ok(Value::Object(context)) = serde_json::from_str::<Value>(json) else {
        return Ok(());
    };
    if context.get("kind").and_then(Value::as_str) == Some("multi") {
        let kinds = context.len() - 1;
        if kinds > MAX_KINDS {
            return Err(format!(
                "the context has {kinds} kinds; at most {MAX_KINDS} are accepted"
            ));
        }
        for (kind, single) in &context {
            if let Value::Object(single) = single {
                check_single(kind, single)?;
            }
        }
        return Ok(());
    }
    check_single("", &context)
}

/// One single-kind context (or a legacy user, whose `custom` object is checked
/// as one of its values).
fn check_single(kind: &str, context: &serde_json::Map<String, Value>) -> Result<(), String> {
    let of = if kind.is_empty() {
        String::new()
    } else {
        format!(" of kind {kind:?}")
    };
    if context.len() > MAX_ATTRIBUTES {
        return Err(format!(
            "the context{of} has {} attributes; at most {MAX_ATTRIBUTES} are accepted",
            context.len()
        ));
    }
    for (name, value) in context {
        check_value(name, value, 0)
            .map_err(|why| format!("attribute {:?}{of}: {why}", clip(name)))?;
    }
    Ok(())
}

fn check_value(name: &str, value: &Value, depth: usize) -> Result<(), String> {
    if name.len() > MAX_STRING {
        return Err(format!(
            "a name of {} bytes; at most {MAX_STRING} are accepted",
            name.len()
        ));
    }
    match value {
        Value::String(text) if text.len() > MAX_STRING => Err(format!(
            "a string of {} bytes; at most {MAX_STRING} are accepted",
            text.len()
        )),
        Value::Array(_) | Value::Object(_) if depth >= MAX_DEPTH => {
            Err(format!("nested more than {MAX_DEPTH} levels deep"))
        }
        Value::Array(items) if items.len() > MAX_ARRAY => Err(format!(
            "an array of {} values; at most {MAX_ARRAY} are accepted",
            items.len()
        )),
        Value::Array(items) => items
            .iter()
            .try_for_each(|item| check_value("", item, depth + 1)),
        Value::Object(fields) if fields.len() > MAX_ATTRIBUTES => Err(format!(
            "an object of {} fields; at most {MAX_ATTRIBUTES} are accepted",
            fields.len()
        )),
        Value::Object(fields) => fields
            .iter()
            .try_for_each(|(name, value)| check_value(name, value, depth + 1)),
        _ => Ok(()),
    }
}

/// A name short enough for a message.
fn clip(name: &str) -> &str {
    match name.char_indices().nth(64) {
        Some((end, _)) => &name[..end],
        None => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(context: Value) -> String {
        check(&context.to_string()).unwrap_err()
    }

    #[test]
    fn ordinary_contexts_pass_and_each_limit_is_named() {
        for ok in [
            json!({"kind": "user", "key": "u", "email": "a@example.com", "groups": ["a", "b"]}),
            json!({"key": "u", "custom": {"plan": "pro", "seats": [1, 2, 3]}}),
            json!({"kind": "multi", "user": {"key": "u"}, "org": {"key": "o", "address": {"city": "Paris"}}}),
            json!({"kind": "user", "key": "u", "list": vec![json!("x"); MAX_ARRAY]}),
        ] {
            assert_eq!(check(&ok.to_string()), Ok(()), "{ok}");
        }
        assert_eq!(check("not json"), Ok(()));

        let array = err(json!({"kind": "user", "key": "x", "email": vec![json!("a"); 16_369]}));
        assert!(
            array.contains("\"email\"") && array.contains("16369 values") && array.contains("64"),
            "{array}"
        );
        let many: serde_json::Map<String, Value> =
            (0..300).map(|i| (format!("a{i}"), json!(i))).collect();
        let mut context = many.clone();
        context.insert("key".into(), json!("x"));
        assert!(err(Value::Object(context)).contains("301 attributes"));
        let long = err(json!({"kind": "user", "key": "x", "name": "n".repeat(5000)}));
        assert!(
            long.contains("\"name\"") && long.contains("5000 bytes"),
            "{long}"
        );
        let mut multi = serde_json::Map::new();
        multi.insert("kind".into(), json!("multi"));
        for i in 0..17 {
            multi.insert(format!("k{i}"), json!({"key": "x"}));
        }
        assert!(err(Value::Object(multi)).contains("17 kinds"));
        let nested = err(json!({"kind": "org", "key": "o", "deep": [[[[[[[[[1]]]]]]]]]}));
        assert!(
            nested.contains("deep") && nested.contains("levels"),
            "{nested}"
        );
        let in_multi =
            err(json!({"kind": "multi", "user": {"key": "u", "tags": vec![json!(1); 65]}}));
        assert!(in_multi.contains("of kind \"user\""), "{in_multi}");
        let legacy = err(json!({"key": "u", "custom": {"groups": vec![json!("g"); 300]}}));
        assert!(legacy.contains("300 values"), "{legacy}");
    }
}
