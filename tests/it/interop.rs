//! Interoperability with LaunchDarkly's official Python DynamoDB stores
//! (`launchdarkly-server-sdk`, caching disabled) on the same moto table with
//! SigV4 checking on: each side reads what the other wrote.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use ld_dynamodb_host::embed::{KeyedItem, UpsertOutcome};
use ld_dynamodb_tests::*;

/// Our items of a kind, non-deleted, as parsed JSON by key.
fn parsed(items: &[KeyedItem]) -> BTreeMap<String, Value> {
    items
        .iter()
        .filter(|k| !k.item.deleted)
        .map(|k| (k.key.clone(), serde_json::from_str(&k.item.json).unwrap()))
        .collect()
}

fn as_map(value: &Value) -> BTreeMap<String, Value> {
    value
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn flag(key: &str, version: u64, on: bool) -> Value {
    json!({
        "key": key, "version": version, "on": on, "variations": [true, false], "offVariation": 1,
        "fallthrough": { "variation": 0 }, "salt": "s-".to_string() + key, "rules": [], "targets": [],
        "prerequisites": [], "trackEvents": false, "deleted": false,
    })
}

fn segment(key: &str, version: u64, included: &[&str]) -> Value {
    json!({ "key": key, "version": version, "included": included, "excluded": [], "rules": [], "salt": "x", "deleted": false })
}

fn keyed(value: &Value) -> KeyedItem {
    let key = value["key"].as_str().unwrap();
    let version = value["version"].as_u64().unwrap();
    item(key, version, value.clone())
}

macro_rules! interop_suite {
    ($name:ident, $prefix:expr) => {
        mod $name {
            use super::*;

            const PREFIX: Option<&str> = $prefix;

            #[tokio::test]
            async fn python_reads_what_we_init() {
                let backend = Backend::moto();
                let (table, mut store) = fresh_store(&backend, "we-init", PREFIX).await;
                let flags = [flag("f1", 3, true), flag("f2", 1, false)];
                let segments = [segment("s1", 2, &["u1", "u2"])];
                ok!(store.init(&[
                    collection("segments", segments.iter().map(keyed).collect()),
                    collection("features", flags.iter().map(keyed).chain([tombstone("gone", 4)]).collect()),
                ]));
                let out = backend.ld_python(&table, PREFIX, json!([
                    ["initialized"], ["all", "features"], ["all", "segments"], ["get", "features", "f1"], ["get", "features", "gone"],
                ]));
                assert_eq!(out[0], json!(true));
                let ours = parsed(&ok!(store.get_all("features")));
                assert_eq!(as_map(&out[1]), ours);
                assert_eq!(ours.len(), 2);
                assert_eq!(as_map(&out[2]), parsed(&ok!(store.get_all("segments"))));
                assert_eq!(out[3], flags[0]);
                assert_eq!(out[4], Value::Null, "our tombstone reads as deleted");
            }

            #[tokio::test]
            async fn we_read_what_python_inits() {
                let backend = Backend::moto();
                let (table, mut store) = fresh_store(&backend, "py-init", PREFIX).await;
                assert!(!ok!(store.is_initialized()));
                let data = json!({
                    "features": { "f1": flag("f1", 5, true), "f3": flag("f3", 2, false), "old": { "key": "old", "version": 9, "deleted": true } },
                    "segments": { "s1": segment("s1", 7, &["u9"]) },
                });
                backend.ld_python(&table, PREFIX, json!([["init", data]]));
                assert!(ok!(store.is_initialized()));
                let features = ok!(store.get_all("features"));
                assert_eq!(versions(&features), vec![("f1".into(), 5, false), ("f3".into(), 2, false), ("old".into(), 9, true)]);
                let mut expected = as_map(&data["features"]);
                expected.remove("old");
                assert_eq!(parsed(&features), expected);
                assert_eq!(parsed(&ok!(store.get_all("segments"))), as_map(&data["segments"]));
                let f1 = ok!(store.get("features", "f1")).unwrap();
                assert_eq!(serde_json::from_str::<Value>(&f1.json).unwrap(), data["features"]["f1"]);
                assert!(ok!(store.get("features", "old")).unwrap().deleted);
            }

            #[tokio::test]
            async fn upserts_and_deletes_alternate_between_writers() {
                let backend = Backend::moto();
                let (table, mut store) = fresh_store(&backend, "alt", PREFIX).await;
                let py = |ops: Value| backend.ld_python(&table, PREFIX, ops);
                assert_eq!(ok!(store.upsert("features", "k", &keyed(&flag("k", 1, false)).item)), UpsertOutcome::Applied);
                py(json!([["upsert", "features", flag("k", 2, true)]]));
                assert_eq!(ok!(store.get("features", "k")).unwrap().version, 2, "python's newer version won");
                assert_eq!(ok!(store.upsert("features", "k", &keyed(&flag("k", 2, false)).item)), UpsertOutcome::NotNewer);
                let out = py(json!([["upsert", "features", flag("k", 1, false)], ["get", "features", "k"]]));
                assert_eq!(out[1], flag("k", 2, true), "our equal version and python's older version both lost");
                py(json!([["delete", "features", "k", 3]]));
                let stored = ok!(store.get("features", "k")).unwrap();
                assert!(stored.deleted && stored.version == 3, "python's tombstone reads as deleted: {stored:?}");
                assert_eq!(ok!(store.upsert("features", "k", &keyed(&flag("k", 3, true)).item)), UpsertOutcome::NotNewer);
                assert_eq!(ok!(store.upsert("features", "k", &tombstone("k", 4).item)), UpsertOutcome::Applied);
                let out = py(json!([["get", "features", "k"], ["all", "features"], ["upsert", "features", flag("k", 4, true)], ["get", "features", "k"]]));
                assert_eq!(out[0], Value::Null, "our tombstone reads as deleted");
                assert_eq!(out[1], json!({}));
                assert_eq!(out[3], Value::Null, "python's equal version lost to our tombstone");
                py(json!([["upsert", "features", flag("k", 5, true)]]));
                let stored = ok!(store.get("features", "k")).unwrap();
                assert_eq!((stored.version, stored.deleted), (5, false));
            }

            #[tokio::test]
            async fn java_null_tombstones_read_as_deleted() {
                let backend = Backend::moto();
                let (table, mut store) = fresh_store(&backend, "javanull", PREFIX).await;
                let ns = PREFIX.map(|p| format!("{p}:features")).unwrap_or_else(|| "features".into());
                backend.boto(json!([["PutItem", {
                    "TableName": table,
                    "Item": { "namespace": { "S": ns }, "key": { "S": "jflag" }, "version": { "N": "6" }, "item": { "S": "null" } },
                }]]));
                let got = ok!(store.get("features", "jflag")).unwrap();
                assert!(got.deleted);
                assert_eq!(got.version, 6);
                assert_eq!(versions(&ok!(store.get_all("features"))), vec![("jflag".into(), 6, true)]);
                assert_eq!(ok!(store.upsert("features", "jflag", &keyed(&flag("jflag", 6, true)).item)), UpsertOutcome::NotNewer);
            }

            #[tokio::test]
            async fn big_segments_read_the_same_on_both_sides() {
                let backend = Backend::moto();
                let (table, _) = fresh_store(&backend, "bigint", PREFIX).await;
                let hash = ld_dynamodb_host::embed::context_hash("ctx-1");
                backend.relay_write(&table, PREFIX, Some(1_700_000_000_000), &[
                    (&hash, &["seg-a.g1", "seg-b.g2"], &["seg-b.g2", "seg-c.g1"]),
                ]);
                let out = backend.ld_python(&table, PREFIX, json!([["big_metadata"], ["big_membership", hash], ["big_membership", "nobody"]]));
                let mut ours = open_big_segments(&backend, &table, PREFIX).await;
                assert_eq!(json!(ok!(ours.get_metadata())), out[0]);
                let membership: serde_json::Map<String, Value> = ok!(ours.get_membership(&hash))
                    .unwrap()
                    .into_iter()
                    .map(|e| (e.segment_ref, Value::Bool(e.included)))
                    .collect();
                assert_eq!(Value::Object(membership), out[1]);
                assert_eq!(ok!(ours.get_membership("nobody")), None);
                assert_eq!(out[2], Value::Null);
            }
        }
    };
}

interop_suite!(no_prefix, None);
interop_suite!(with_prefix, Some("myenv"));

#[tokio::test]
async fn two_prefixes_stay_independent_across_implementations() {
    let backend = Backend::moto();
    let (table, mut ours_a) = fresh_store(&backend, "twoprefix", Some("a")).await;
    ok!(ours_a.init(&[collection(
        "features",
        vec![keyed(&flag("from-us", 1, true))]
    )]));
    backend.ld_python(
        &table,
        Some("b"),
        json!([["init", { "features": { "from-py": flag("from-py", 1, true) }, "segments": {} }]]),
    );
    let out_b = backend.ld_python(&table, Some("b"), json!([["all", "features"]]));
    assert_eq!(
        out_b[0].as_object().unwrap().keys().collect::<Vec<_>>(),
        ["from-py"]
    );
    let out_a = backend.ld_python(
        &table,
        Some("a"),
        json!([["all", "features"], ["initialized"]]),
    );
    assert_eq!(
        out_a[0].as_object().unwrap().keys().collect::<Vec<_>>(),
        ["from-us"]
    );
    assert_eq!(out_a[1], json!(true));
    assert_eq!(
        versions(&ok!(ours_a.get_all("features"))),
        vec![("from-us".into(), 1, false)]
    );
    let mut ours_b = open(&backend, &table, Some("b")).await;
    assert_eq!(
        versions(&ok!(ours_b.get_all("features"))),
        vec![("from-py".into(), 1, false)]
    );
    let mut bare = open(&backend, &table, None).await;
    assert!(!ok!(bare.is_initialized()));
    let out_bare = backend.ld_python(&table, None, json!([["initialized"], ["all", "features"]]));
    assert_eq!(out_bare, vec![json!(false), json!({})]);
}
