//! The table layout shared with LaunchDarkly's official stores: attribute names,
//! namespaces, the `$inited` marker, tombstones and the item size guard.

/// Hash key attribute (S).
pub const ATTR_NAMESPACE: &str = "namespace";
/// Range key attribute (S).
pub const ATTR_KEY: &str = "key";
/// Version attribute (N).
pub const ATTR_VERSION: &str = "version";
/// Serialized item attribute (S).
pub const ATTR_ITEM: &str = "item";

/// Base name of the marker written by a completed Init.
pub const INITED_BASE: &str = "$inited";

/// The official stores' item size limit (AWS's 400 KB, rounded down).
pub const MAX_ITEM_SIZE: usize = 400_000;
/// Fixed per-item overhead counted by the size formula.
const ITEM_OVERHEAD: usize = 100;

/// `prefix:base`, or `base` when the prefix is empty.
pub fn prefixed(prefix: &str, base: &str) -> String {
    if prefix.is_empty() {
        base.to_string()
    } else {
        format!("{prefix}:{base}")
    }
}

/// The size the official stores compute for an item written with the four
/// attributes: `100 + Σ(len(name) + len(S or N value))`, lengths in UTF-8 bytes.
pub fn item_size(namespace: &str, key: &str, version: u64, item_json: &str) -> usize {
    let digits = version.checked_ilog10().unwrap_or(0) as usize + 1;
    ITEM_OVERHEAD
        + ATTR_NAMESPACE.len()
        + namespace.len()
        + ATTR_KEY.len()
        + key.len()
        + ATTR_VERSION.len()
        + digits
        + ATTR_ITEM.len()
        + item_json.len()
}

/// Whether the size guard lets the item be written.
pub fn fits(namespace: &str, key: &str, version: u64, item_json: &str) -> bool {
    item_size(namespace, key, version, item_json) <= MAX_ITEM_SIZE
}

/// The error line the official stores log when they drop an oversized item.
pub fn too_large_message(namespace: &str, key: &str) -> String {
    format!(
        "The item \"{key}\" in \"{namespace}\" was too large to store in DynamoDB and was dropped"
    )
}

/// The JSON written for a deleted item: `{"key":K,"version":V,"deleted":true}`.
pub fn tombstone_json(key: &str, version: u64) -> String {
    let key = serde_json::to_string(key).expect("a string always serializes");
    format!("{{\"key\":{key},\"version\":{version},\"deleted\":true}}")
}

/// Whether a stored `item` attribute denotes a deleted item: absent, the literal
/// `null` (Java/.NET tombstones), or a JSON object with `"deleted": true`.
/// Returns an error message when the attribute is not a complete JSON object
/// (truncated or garbled text never leaves the store as an item). One pass
/// over the text: only the `deleted` field is built, the rest is skipped.
pub fn is_deleted(item_json: Option<&str>) -> Result<bool, String> {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(default)]
        deleted: Option<serde_json::Value>,
    }
    let Some(text) = item_json else {
        return Ok(true);
    };
    if text.trim() == "null" {
        return Ok(true);
    }
    if !text.trim_start().starts_with('{') {
        return Err("item attribute is not a JSON object".into());
    }
    serde_json::from_str::<Probe>(text)
        .map(|probe| probe.deleted == Some(serde_json::Value::Bool(true)))
        .map_err(|e| format!("item attribute is not a JSON object: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_follow_the_prefix_rule() {
        assert_eq!(prefixed("", "features"), "features");
        assert_eq!(prefixed("env1", "features"), "env1:features");
        assert_eq!(prefixed("env1", INITED_BASE), "env1:$inited");
        assert_eq!(prefixed("", INITED_BASE), "$inited");
    }

    /// Pads the item JSON so the item's size is exactly `target`.
    fn item_of_size(namespace: &str, key: &str, version: u64, target: usize) -> String {
        let base = item_size(namespace, key, version, "");
        "x".repeat(target - base)
    }

    #[test]
    fn size_guard_boundary_is_inclusive() {
        for (ns, key) in [("features", "flag"), ("p:segments", "ключ-🚩")] {
            let ok = item_of_size(ns, key, 7, 400_000);
            assert_eq!(item_size(ns, key, 7, &ok), 400_000);
            assert!(fits(ns, key, 7, &ok));
            let too_big = format!("{ok}x");
            assert_eq!(item_size(ns, key, 7, &too_big), 400_001);
            assert!(!fits(ns, key, 7, &too_big));
        }
    }

    #[test]
    fn size_counts_utf8_bytes_and_version_digits() {
        // 100 + "namespace"(9) + 8 + "key"(3) + 4 bytes of "é€" ... computed by hand:
        // key "é€" = 2 + 3 bytes; version 12345 = 5 digits; item "ü" = 2 bytes.
        assert_eq!(
            item_size("features", "é€", 12345, "ü"),
            100 + 9 + 8 + 3 + 5 + 7 + 5 + 4 + 2
        );
        assert_eq!(item_size("a", "b", 0, ""), 100 + 9 + 1 + 3 + 1 + 7 + 1 + 4);
        assert_eq!(item_size("a", "b", 9, ""), item_size("a", "b", 0, ""));
        assert_eq!(item_size("a", "b", 10, ""), item_size("a", "b", 0, "") + 1);
    }

    #[test]
    fn tombstones_are_json_and_escape_keys() {
        assert_eq!(
            tombstone_json("flag-a", 3),
            r#"{"key":"flag-a","version":3,"deleted":true}"#
        );
        let odd = tombstone_json("a\"b", 1);
        let parsed: serde_json::Value = serde_json::from_str(&odd).unwrap();
        assert_eq!(parsed["key"], "a\"b");
        assert_eq!(is_deleted(Some(&odd)), Ok(true));
    }

    #[test]
    fn deleted_forms_are_recognised() {
        assert_eq!(is_deleted(None), Ok(true));
        assert_eq!(is_deleted(Some("null")), Ok(true));
        assert_eq!(
            is_deleted(Some(r#"{"key": "k", "version": 2, "deleted": true}"#)),
            Ok(true)
        );
        assert_eq!(
            is_deleted(Some(r#"{"key":"k","version":2,"deleted":false}"#)),
            Ok(false)
        );
        assert_eq!(is_deleted(Some(r#"{"key":"k","version":2}"#)), Ok(false));
        assert!(is_deleted(Some("not json")).is_err());
        assert_eq!(
            is_deleted(Some(
                r#"{"key":"k","nested":{"deleted":true},"deleted":false}"#
            )),
            Ok(false)
        );
        assert_eq!(is_deleted(Some(r#"{"deleted" :  true}"#)), Ok(true));
        assert_eq!(is_deleted(Some(r#"{"delet\u0065d":true}"#)), Ok(true));
        assert_eq!(
            is_deleted(Some(r#"{"description":"\"deleted\": true"}"#)),
            Ok(false)
        );
    }

    #[test]
    fn truncated_or_garbled_items_are_errors_not_live_json() {
        for bad in [
            r#"{"key":"k","version":2,"on":tr"#,
            r#"{"key":"k","version":2}}"#,
            r#"{"key":"k","version":2} trailing"#,
            r#"{"key":"k","variations":[1,2,"#,
            "{",
            "[1,2]",
            r#"{"key":"k","deleted":true"#,
        ] {
            assert!(is_deleted(Some(bad)).is_err(), "{bad}");
        }
    }
}
