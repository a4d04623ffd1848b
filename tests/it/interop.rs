//! Interoperability with LaunchDarkly's official DynamoDB stores on the same
//! moto table with SigV4 checking on, caching disabled: the Python SDK's
//! (`launchdarkly-server-sdk` 9.20.0, `support/ld_python.py`) and the Node
//! store (`launchdarkly-node-server-sdk-dynamodb` 4.0.0 on their Node server
//! SDK 6.4.3, `support/ld_node.cjs`). Each side reads what the other wrote,
//! tombstones included, and the two official stores read each other's.
//!
//! Emulated, not run: the Java and .NET stores' `null` tombstone row and the
//! Relay Proxy's Big Segment rows are written here by boto3, as those
//! writers write them (no Java, .NET or Relay Proxy runs in these tests).

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

/// One of LaunchDarkly's official stores, run by its helper.
#[derive(Clone, Copy, Debug)]
enum Official {
    Python,
    Node,
}

impl Official {
    fn run(self, backend: &Backend, table: &str, prefix: Option<&str>, ops: Value) -> Vec<Value> {
        match self {
            Official::Python => backend.ld_python(table, prefix, ops),
            Official::Node => backend.ld_node(table, prefix, ops),
        }
    }
}

async fn official_reads_what_we_init(official: Official, prefix: Option<&str>) {
    let backend = Backend::moto();
    let (table, mut store) = fresh_store(&backend, "we-init", prefix).await;
    let flags = [flag("f1", 3, true), flag("f2", 1, false)];
    let segments = [segment("s1", 2, &["u1", "u2"])];
    ok!(store.init(&[
        collection("segments", segments.iter().map(keyed).collect()),
        collection(
            "features",
            flags
                .iter()
                .map(keyed)
                .chain([tombstone("gone", 4)])
                .collect()
        ),
    ]));
    let out = official.run(
        &backend,
        &table,
        prefix,
        json!([
            ["initialized"],
            ["all", "features"],
            ["all", "segments"],
            ["get", "features", "f1"],
            ["get", "features", "gone"],
        ]),
    );
    assert_eq!(out[0], json!(true), "{official:?}");
    let ours = parsed(&ok!(store.get_all("features")));
    assert_eq!(as_map(&out[1]), ours, "{official:?}");
    assert_eq!(ours.len(), 2);
    assert_eq!(
        as_map(&out[2]),
        parsed(&ok!(store.get_all("segments"))),
        "{official:?}"
    );
    assert_eq!(out[3], flags[0], "{official:?}");
    assert_eq!(
        out[4],
        Value::Null,
        "{official:?}: our tombstone reads as deleted"
    );
    if let Official::Node = official {
        // The row itself, as the Node store parses it: a deleted item of version 4.
        let raw = official.run(
            &backend,
            &table,
            prefix,
            json!([["raw", "features", "gone"]]),
        );
        assert_eq!(
            raw[0],
            json!({"key": "gone", "version": 4, "deleted": true})
        );
    }
}

async fn we_read_what_official_inits(official: Official, prefix: Option<&str>) {
    let backend = Backend::moto();
    let (table, mut store) = fresh_store(&backend, "ld-init", prefix).await;
    assert!(!ok!(store.is_initialized()));
    let data = json!({
        "features": { "f1": flag("f1", 5, true), "f3": flag("f3", 2, false), "old": { "key": "old", "version": 9, "deleted": true } },
        "segments": { "s1": segment("s1", 7, &["u9"]) },
    });
    official.run(&backend, &table, prefix, json!([["init", data]]));
    assert!(ok!(store.is_initialized()), "{official:?}");
    let features = ok!(store.get_all("features"));
    assert_eq!(
        versions(&features),
        vec![
            ("f1".into(), 5, false),
            ("f3".into(), 2, false),
            ("old".into(), 9, true)
        ],
        "{official:?}"
    );
    let mut expected = as_map(&data["features"]);
    expected.remove("old");
    assert_eq!(parsed(&features), expected);
    assert_eq!(
        parsed(&ok!(store.get_all("segments"))),
        as_map(&data["segments"])
    );
    let f1 = ok!(store.get("features", "f1")).unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&f1.json).unwrap(),
        data["features"]["f1"]
    );
    assert!(ok!(store.get("features", "old")).unwrap().deleted);
}

async fn upserts_and_deletes_alternate_between_writers(official: Official, prefix: Option<&str>) {
    let backend = Backend::moto();
    let (table, mut store) = fresh_store(&backend, "alt", prefix).await;
    let ld = |ops: Value| official.run(&backend, &table, prefix, ops);
    assert_eq!(
        ok!(store.upsert("features", "k", &keyed(&flag("k", 1, false)).item)),
        UpsertOutcome::Applied
    );
    ld(json!([["upsert", "features", flag("k", 2, true)]]));
    assert_eq!(
        ok!(store.get("features", "k")).unwrap().version,
        2,
        "{official:?}'s newer version won"
    );
    assert_eq!(
        ok!(store.upsert("features", "k", &keyed(&flag("k", 2, false)).item)),
        UpsertOutcome::NotNewer
    );
    let out = ld(json!([
        ["upsert", "features", flag("k", 1, false)],
        ["get", "features", "k"]
    ]));
    assert_eq!(
        out[1],
        flag("k", 2, true),
        "our equal version and {official:?}'s older version both lost"
    );
    ld(json!([["delete", "features", "k", 3]]));
    let stored = ok!(store.get("features", "k")).unwrap();
    assert!(
        stored.deleted && stored.version == 3,
        "{official:?}'s tombstone reads as deleted: {stored:?}"
    );
    assert_eq!(
        ok!(store.upsert("features", "k", &keyed(&flag("k", 3, true)).item)),
        UpsertOutcome::NotNewer
    );
    assert_eq!(
        ok!(store.upsert("features", "k", &tombstone("k", 4).item)),
        UpsertOutcome::Applied
    );
    let out = ld(json!([
        ["get", "features", "k"],
        ["all", "features"],
        ["upsert", "features", flag("k", 4, true)],
        ["get", "features", "k"]
    ]));
    assert_eq!(out[0], Value::Null, "our tombstone reads as deleted");
    assert_eq!(out[1], json!({}));
    assert_eq!(
        out[3],
        Value::Null,
        "{official:?}'s equal version lost to our tombstone"
    );
    ld(json!([["upsert", "features", flag("k", 5, true)]]));
    let stored = ok!(store.get("features", "k")).unwrap();
    assert_eq!((stored.version, stored.deleted), (5, false));
}

macro_rules! interop_suite {
    ($name:ident, $prefix:expr) => {
        mod $name {
            use super::*;

            const PREFIX: Option<&str> = $prefix;

            #[tokio::test]
            async fn python_reads_what_we_init() {
                official_reads_what_we_init(Official::Python, PREFIX).await;
            }

            #[tokio::test]
            async fn node_reads_what_we_init() {
                official_reads_what_we_init(Official::Node, PREFIX).await;
            }

            #[tokio::test]
            async fn we_read_what_python_inits() {
                we_read_what_official_inits(Official::Python, PREFIX).await;
            }

            #[tokio::test]
            async fn we_read_what_node_inits() {
                we_read_what_official_inits(Official::Node, PREFIX).await;
            }

            #[tokio::test]
            async fn upserts_and_deletes_alternate_with_python() {
                upserts_and_deletes_alternate_between_writers(Official::Python, PREFIX).await;
            }

            #[tokio::test]
            async fn upserts_and_deletes_alternate_with_node() {
                upserts_and_deletes_alternate_between_writers(Official::Node, PREFIX).await;
            }

            /// Emulated: the row the Java and .NET stores write for a
            /// deleted item (`item` the JSON literal `null`), put by boto3.
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
                // Emulated: the Relay Proxy's rows, written by boto3 as it writes them.
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

#[tokio::test]
async fn the_python_and_node_stores_read_each_others_tables() {
    let backend = Backend::moto();
    let data = json!({
        "features": { "f1": flag("f1", 5, true), "old": { "key": "old", "version": 9, "deleted": true } },
        "segments": { "s1": segment("s1", 7, &["u9"]) },
    });
    let reads = json!([
        ["initialized"],
        ["all", "features"],
        ["all", "segments"],
        ["get", "features", "old"]
    ]);
    let expected = vec![
        json!(true),
        json!({ "f1": flag("f1", 5, true) }),
        json!({ "s1": segment("s1", 7, &["u9"]) }),
        Value::Null,
    ];
    for (writer, reader) in [
        (Official::Python, Official::Node),
        (Official::Node, Official::Python),
    ] {
        let (table, _) = fresh_store(&backend, "py-node", Some("env")).await;
        writer.run(&backend, &table, Some("env"), json!([["init", data]]));
        assert_eq!(
            reader.run(&backend, &table, Some("env"), reads.clone()),
            expected,
            "{reader:?} reads {writer:?}"
        );
    }
}
