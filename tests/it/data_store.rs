//! The shared persistent-store suite (LaunchDarkly's Go/Java/Python suites,
//! spec §10.1–10.2) run through the component in wasmtime, against moto with
//! SigV4 checking on and against dynalite, with and without a prefix.

use serde_json::{json, Value};

use ld_dynamodb_host::embed::{Credentials, Item, StoreError, UpsertOutcome};
use ld_dynamodb_tests::*;

/// The official size guard's limit.
const LIMIT: usize = 400_000;

/// A flag whose whole row (as the size guard counts it) is exactly `size` bytes.
fn item_of_row_size(
    namespace: &str,
    key: &str,
    version: u64,
    size: usize,
) -> ld_dynamodb_host::embed::KeyedItem {
    let base = json!({ "key": key, "version": version, "pad": "" }).to_string();
    let fixed =
        100 + 9 + namespace.len() + 3 + key.len() + 7 + version.to_string().len() + 4 + base.len();
    let pad = "x".repeat(size - fixed);
    item(key, version, json!({ "pad": pad }))
}

macro_rules! store_suite {
    ($name:ident, $backend:expr, $prefix:expr) => {
        mod $name {
            use super::*;

            fn backend() -> Backend {
                $backend
            }

            const PREFIX: Option<&str> = $prefix;

            fn ns(kind: &str) -> String {
                match PREFIX {
                    Some(p) => format!("{p}:{kind}"),
                    None => kind.to_string(),
                }
            }

            #[tokio::test]
            async fn not_initialized_before_init_and_initialized_after() {
                let (_, mut store) = fresh_store(&backend(), "inited", PREFIX).await;
                assert!(!ok!(store.is_initialized()));
                assert!(store.is_available().await.unwrap());
                ok!(store.init(&[collection("features", vec![item("a", 1, json!({}))])]));
                assert!(ok!(store.is_initialized()));
            }

            #[tokio::test]
            async fn a_snapshot_reads_every_kind_and_the_marker_together() {
                let (_, mut store) = fresh_store(&backend(), "snapshot", PREFIX).await;
                let kinds = ["features".to_string(), "segments".to_string()];
                let empty = ok!(store.snapshot(&kinds));
                assert!(!empty.initialized);
                assert_eq!(empty.kinds, vec![vec![], vec![]]);
                ok!(store.init(&[
                    collection("segments", vec![item("s1", 1, json!({}))]),
                    collection("features", vec![item("f1", 2, json!({})), tombstone("f2", 3)]),
                ]));
                let snapshot = ok!(store.snapshot(&kinds));
                assert!(snapshot.initialized);
                assert_eq!(
                    versions(&snapshot.kinds[0]),
                    vec![("f1".into(), 2, false), ("f2".into(), 3, true)]
                );
                assert_eq!(versions(&snapshot.kinds[1]), vec![("s1".into(), 1, false)]);
                assert_eq!(snapshot.kinds[0], ok!(store.get_all("features")));
                let err = store_err!(store.snapshot(&["a:b".to_string()]));
                assert!(matches!(err, StoreError::InvalidInput(_)), "{err:?}");
            }

            #[tokio::test]
            async fn init_completely_replaces_previous_data() {
                let (_, mut store) = fresh_store(&backend(), "replace", PREFIX).await;
                ok!(store.init(&[
                    collection("mock1", vec![item("first", 1, json!({})), item("second", 1, json!({}))]),
                    collection("mock2", vec![item("first", 1, json!({}))]),
                    collection("mock3", vec![item("x", 1, json!({}))]),
                ]));
                assert_eq!(ok!(store.get_all("mock1")).len(), 2);
                assert_eq!(ok!(store.get_all("mock2")).len(), 1);
                let report = ok!(store.init(&[
                    collection("mock1", vec![item("first", 2, json!({}))]),
                    collection("mock2", vec![item("second", 2, json!({}))]),
                    collection("mock3", vec![]),
                ]));
                assert_eq!((report.written, report.deleted), (2, 3));
                assert_eq!(versions(&ok!(store.get_all("mock1"))), vec![("first".into(), 2, false)]);
                assert_eq!(versions(&ok!(store.get_all("mock2"))), vec![("second".into(), 2, false)]);
                assert!(ok!(store.get_all("mock3")).is_empty(), "a kind given with no items is emptied");
            }

            #[tokio::test]
            async fn init_leaves_kinds_not_given_alone() {
                let (_, mut store) = fresh_store(&backend(), "untouched", PREFIX).await;
                ok!(store.init(&[collection("features", vec![item("f", 1, json!({}))]), collection("segments", vec![item("s", 1, json!({}))])]));
                ok!(store.init(&[collection("features", vec![])]));
                assert!(ok!(store.get_all("features")).is_empty());
                assert_eq!(ok!(store.get_all("segments")).len(), 1);
            }

            #[tokio::test]
            async fn one_instance_detects_another_initialized_even_if_empty() {
                let (table, mut store1) = fresh_store(&backend(), "detect", PREFIX).await;
                let mut store2 = open(&backend(), &table, PREFIX).await;
                assert!(!ok!(store1.is_initialized()));
                ok!(store2.init(&[]));
                assert!(ok!(store1.is_initialized()));
            }

            #[tokio::test]
            async fn get_missing_item_is_none() {
                let (_, mut store) = fresh_store(&backend(), "missing", PREFIX).await;
                assert_eq!(ok!(store.get("features", "nope")), None);
            }

            #[tokio::test]
            async fn get_all_includes_tombstones() {
                let (_, mut store) = fresh_store(&backend(), "getall", PREFIX).await;
                assert!(ok!(store.get_all("features")).is_empty());
                ok!(store.init(&[collection("features", vec![item("a", 1, json!({})), tombstone("b", 2)]), collection("other", vec![item("c", 1, json!({}))])]));
                assert_eq!(
                    versions(&ok!(store.get_all("features"))),
                    vec![("a".into(), 1, false), ("b".into(), 2, true)]
                );
            }

            #[tokio::test]
            async fn upsert_new_newer_older_and_same_versions() {
                let (_, mut store) = fresh_store(&backend(), "upsert", PREFIX).await;
                let v10 = item("flag", 10, json!({ "name": "original" }));
                assert_eq!(ok!(store.upsert("features", "flag", &v10.item)), UpsertOutcome::Applied);
                assert_eq!(ok!(store.get("features", "flag")), Some(v10.item.clone()));
                let v9 = item("flag", 9, json!({ "name": "older" }));
                assert_eq!(ok!(store.upsert("features", "flag", &v9.item)), UpsertOutcome::NotNewer);
                let same = item("flag", 10, json!({ "name": "same version" }));
                assert_eq!(ok!(store.upsert("features", "flag", &same.item)), UpsertOutcome::NotNewer);
                assert_eq!(ok!(store.get("features", "flag")), Some(v10.item.clone()));
                let v11 = item("flag", 11, json!({ "name": "updated" }));
                assert_eq!(ok!(store.upsert("features", "flag", &v11.item)), UpsertOutcome::Applied);
                assert_eq!(ok!(store.get("features", "flag")), Some(v11.item));
            }

            #[tokio::test]
            async fn delete_newer_older_same_and_unknown() {
                let (_, mut store) = fresh_store(&backend(), "delete", PREFIX).await;
                ok!(store.init(&[collection("features", vec![item("flag", 10, json!({}))])]));
                for (version, outcome) in [(9, UpsertOutcome::NotNewer), (10, UpsertOutcome::NotNewer)] {
                    assert_eq!(ok!(store.upsert("features", "flag", &tombstone("flag", version).item)), outcome);
                    assert!(!ok!(store.get("features", "flag")).unwrap().deleted);
                }
                assert_eq!(ok!(store.upsert("features", "flag", &tombstone("flag", 11).item)), UpsertOutcome::Applied);
                let stored = ok!(store.get("features", "flag")).unwrap();
                assert!(stored.deleted);
                assert_eq!(stored.version, 11);
                let parsed: Value = serde_json::from_str(&stored.json).unwrap();
                assert_eq!(parsed, json!({ "key": "flag", "version": 11, "deleted": true }));
                // Upserting an older version after the delete loses.
                let v10 = item("flag", 10, json!({}));
                assert_eq!(ok!(store.upsert("features", "flag", &v10.item)), UpsertOutcome::NotNewer);
                assert!(ok!(store.get("features", "flag")).unwrap().deleted);
                // Deleting an unknown item stores a tombstone.
                assert_eq!(ok!(store.upsert("features", "ghost", &tombstone("ghost", 1).item)), UpsertOutcome::Applied);
                let ghost = ok!(store.get("features", "ghost")).unwrap();
                assert!(ghost.deleted && ghost.version == 1);
            }

            #[tokio::test]
            async fn rows_have_the_official_layout() {
                let (table, mut store) = fresh_store(&backend(), "layout", PREFIX).await;
                let flag = item("flag-a", 4, json!({ "on": true }));
                ok!(store.init(&[collection("features", vec![flag.clone(), tombstone("flag-b", 2)])]));
                let rows = backend().scan(&table);
                let marker = ns("$inited");
                assert_eq!(rows.len(), 3, "{rows:#?}");
                assert!(rows.contains(&json!({ "namespace": { "S": marker }, "key": { "S": marker } })));
                assert!(rows.contains(&json!({
                    "namespace": { "S": ns("features") }, "key": { "S": "flag-a" },
                    "version": { "N": "4" }, "item": { "S": flag.item.json },
                })));
                assert!(rows.contains(&json!({
                    "namespace": { "S": ns("features") }, "key": { "S": "flag-b" },
                    "version": { "N": "2" }, "item": { "S": "{\"key\":\"flag-b\",\"version\":2,\"deleted\":true}" },
                })));
            }

            #[tokio::test]
            async fn keys_with_special_characters_round_trip() {
                let (_, mut store) = fresh_store(&backend(), "keys", PREFIX).await;
                let keys = ["a:b", "$dollar", "with space", "ключ-🚩", "quote\"d"];
                let items: Vec<_> = keys.iter().map(|k| item(k, 1, json!({}))).collect();
                ok!(store.init(&[collection("features", items.clone())]));
                for keyed in &items {
                    assert_eq!(ok!(store.get("features", &keyed.key)), Some(keyed.item.clone()));
                }
                assert_eq!(ok!(store.get_all("features")).len(), keys.len());
            }

            #[tokio::test]
            async fn oversized_item_is_dropped_by_init_and_its_old_copy_deleted() {
                let (_, mut store) = fresh_store(&backend(), "bigin", PREFIX).await;
                ok!(store.init(&[collection("features", vec![item("baditem", 1, json!({})), item("flag1", 1, json!({}))])]));
                let targets: Vec<String> = (0..40000).map(|i| format!("key{i}")).collect();
                let bad = item("baditem", 2, json!({ "targets": [{ "values": targets, "variation": 0 }] }));
                assert!(bad.item.json.len() > 400 * 1024);
                let good = vec![item("flag1", 1, json!({})), item("flag2", 1, json!({}))];
                let mut flags = vec![bad];
                flags.extend(good.clone());
                let report = ok!(store.init(&[
                    collection("segments", vec![item("segment1", 1, json!({})), item("segment2", 1, json!({}))]),
                    collection("features", flags),
                ]));
                assert_eq!(report.dropped.len(), 1);
                assert_eq!((report.dropped[0].kind.as_str(), report.dropped[0].key.as_str()), ("features", "baditem"));
                assert_eq!(report.written, 4);
                assert_eq!(versions(&ok!(store.get_all("features"))), versions(&good));
                assert_eq!(ok!(store.get_all("segments")).len(), 2);
                assert!(ok!(store.is_initialized()));
                let expected = format!(
                    "The item \"baditem\" in \"{}\" was too large to store in DynamoDB and was dropped",
                    ns("features")
                );
                assert!(store.instance().stderr().contains(&expected), "{}", store.instance().stderr());
            }

            #[tokio::test]
            async fn oversized_upsert_is_not_written() {
                let (_, mut store) = fresh_store(&backend(), "bigup", PREFIX).await;
                ok!(store.init(&[collection("segments", vec![item("baditem", 1, json!({}))])]));
                let included: Vec<String> = (0..40000).map(|i| format!("key{i}")).collect();
                let bad = item("baditem", 2, json!({ "included": included }));
                assert_eq!(ok!(store.upsert("segments", "baditem", &bad.item)), UpsertOutcome::TooLarge);
                assert_eq!(ok!(store.get("segments", "baditem")).unwrap().version, 1);
                assert!(store.instance().stderr().contains("was too large to store in DynamoDB and was dropped"));
            }

            #[tokio::test]
            async fn size_guard_boundary_on_a_real_server() {
                let (_, mut store) = fresh_store(&backend(), "edge", PREFIX).await;
                let fits = item_of_row_size(&ns("features"), "fits-é", 3, LIMIT);
                let over = item_of_row_size(&ns("features"), "over-é", 3, LIMIT + 1);
                let report = ok!(store.init(&[collection("features", vec![fits.clone(), over])]));
                assert_eq!(report.written, 1);
                assert_eq!(report.dropped.len(), 1);
                assert_eq!(report.dropped[0].key, "over-é");
                assert_eq!(ok!(store.get("features", "fits-é")), Some(fits.item));
                let over4 = item_of_row_size(&ns("features"), "over-é", 4, LIMIT + 1);
                assert_eq!(ok!(store.upsert("features", "over-é", &over4.item)), UpsertOutcome::TooLarge);
                let fits4 = item_of_row_size(&ns("features"), "over-é", 4, LIMIT);
                assert_eq!(ok!(store.upsert("features", "over-é", &fits4.item)), UpsertOutcome::Applied);
            }

            #[tokio::test]
            async fn queries_page_past_one_megabyte() {
                let (table, mut store) = fresh_store(&backend(), "paging", PREFIX).await;
                let pad = "p".repeat(100_000);
                let items: Vec<_> = (0..14).map(|i| item(&format!("big{i:02}"), 1, json!({ "pad": pad }))).collect();
                ok!(store.init(&[collection("features", items.clone())]));
                let page = backend().boto(json!([["Query", {
                    "TableName": table, "KeyConditionExpression": "#n = :n",
                    "ExpressionAttributeNames": { "#n": "namespace" },
                    "ExpressionAttributeValues": { ":n": { "S": ns("features") } },
                }]])).remove(0);
                assert!(page.get("LastEvaluatedKey").is_some(), "the data spans more than one page");
                let all = ok!(store.get_all("features"));
                assert_eq!(versions(&all), versions(&items));
                // Re-init with other items: Init's key scan must page too, or stale items survive.
                let report = ok!(store.init(&[collection("features", vec![item("small", 1, json!({}))])]));
                assert_eq!(report.deleted, 14);
                assert_eq!(versions(&ok!(store.get_all("features"))), vec![("small".into(), 1, false)]);
            }

            #[tokio::test]
            async fn invalid_items_are_rejected_before_any_write() {
                let (table, mut store) = fresh_store(&backend(), "invalid", PREFIX).await;
                let bad = [
                    Item { version: 1, deleted: false, json: "not json".into() },
                    Item { version: 1, deleted: false, json: r#"{"key":"other","version":1}"#.into() },
                    Item { version: 1, deleted: false, json: r#"{"key":"k"}"#.into() },
                    Item { version: 2, deleted: false, json: r#"{"key":"k","version":1}"#.into() },
                ];
                for item in &bad {
                    let err = store_err!(store.upsert("features", "k", item));
                    assert!(matches!(err, StoreError::InvalidInput(_)), "{err:?}");
                    let mut items = vec![super::item("good", 1, json!({}))];
                    items.push(ld_dynamodb_host::embed::KeyedItem { key: "k".into(), item: item.clone() });
                    let err = store_err!(store.init(&[collection("features", items)]));
                    assert!(matches!(err, StoreError::InvalidInput(_)), "{err:?}");
                }
                assert!(backend().scan(&table).is_empty(), "nothing was written");
            }
        }
    };
}

store_suite!(moto_no_prefix, Backend::moto(), None);
store_suite!(moto_prefix, Backend::moto(), Some("testprefix"));
store_suite!(dynalite_no_prefix, Backend::dynalite(), None);
store_suite!(dynalite_prefix, Backend::dynalite(), Some("testprefix"));

macro_rules! backend_tests {
    ($name:ident, $backend:expr) => {
        mod $name {
            use super::*;

            fn backend() -> Backend {
                $backend
            }

            #[tokio::test]
            async fn stores_with_different_prefixes_are_independent() {
                let (table, mut store1) = fresh_store(&backend(), "prefixes", Some("testprefix1")).await;
                let mut store2 = open(&backend(), &table, Some("testprefix2")).await;
                let mut bare = open(&backend(), &table, None).await;
                assert!(!ok!(store1.is_initialized()) && !ok!(store2.is_initialized()));
                ok!(store1.init(&[collection("features", vec![item("flag-a", 1, json!({})), item("flag-b", 1, json!({}))])]));
                assert!(ok!(store1.is_initialized()));
                assert!(!ok!(store2.is_initialized()));
                assert!(!ok!(bare.is_initialized()));
                ok!(store2.init(&[collection("features", vec![item("flag-a", 2, json!({})), item("flag-c", 2, json!({}))])]));
                assert_eq!(versions(&ok!(store1.get_all("features"))), vec![("flag-a".into(), 1, false), ("flag-b".into(), 1, false)]);
                assert_eq!(versions(&ok!(store2.get_all("features"))), vec![("flag-a".into(), 2, false), ("flag-c".into(), 2, false)]);
                assert!(ok!(bare.get_all("features")).is_empty());
                // Upserts: store2 writes v2 first, then store1 writes v1 of the same key: both apply.
                assert_eq!(ok!(store2.upsert("features", "flag", &item("flag", 2, json!({})).item)), UpsertOutcome::Applied);
                assert_eq!(ok!(store1.upsert("features", "flag", &item("flag", 1, json!({})).item)), UpsertOutcome::Applied);
                assert_eq!(ok!(store1.get("features", "flag")).unwrap().version, 1);
                assert_eq!(ok!(store2.get("features", "flag")).unwrap().version, 2);
                assert_eq!(ok!(store1.upsert("features", "flag", &item("flag", 2, json!({})).item)), UpsertOutcome::Applied);
            }

            #[tokio::test]
            async fn missing_table_is_a_service_error() {
                let mut store = open(&backend(), &unique_table("absent"), None).await;
                let err = store_err!(store.get("features", "k"));
                match err {
                    StoreError::Service(e) => {
                        assert_eq!(e.code, "ResourceNotFoundException");
                        assert_eq!(e.status, 400);
                        assert_eq!(e.attempts, 1, "not retried");
                    }
                    other => panic!("{other:?}"),
                }
                assert!(!store.is_available().await.unwrap());
            }

            #[tokio::test]
            async fn create_table_is_idempotent() {
                let (table, _) = fresh_store(&backend(), "create", None).await;
                let mut again = open(&backend(), &table, None).await;
                assert!(!ok!(again.create_table()), "second create reports an existing table");
                let described = backend().boto(json!([["DescribeTable", { "TableName": table }]])).remove(0);
                let schema = &described["Table"]["KeySchema"];
                assert_eq!(schema, &json!([
                    { "AttributeName": "namespace", "KeyType": "HASH" },
                    { "AttributeName": "key", "KeyType": "RANGE" },
                ]));
            }
        }
    };
}

backend_tests!(moto, Backend::moto());
backend_tests!(dynalite, Backend::dynalite());

#[tokio::test]
async fn moto_rejects_a_wrong_secret_with_a_signature_error() {
    let backend = Backend::moto();
    let (table, _) = fresh_store(&backend, "authn", None).await;
    let mut config = backend.config(&table, None);
    let credentials = Credentials {
        secret_access_key: "definitely-the-wrong-secret".into(),
        ..config.credentials().clone()
    };
    config = config.with_credentials(credentials);
    let mut store = open_config(&config).await;
    let err = store_err!(store.get("features", "k"));
    match &err {
        StoreError::Service(e) => {
            assert_eq!(e.code, "SignatureDoesNotMatch", "{e:?}");
            assert_eq!(e.status, 403);
        }
        other => panic!("{other:?}"),
    }
    assert!(!format!("{err:?}").contains("definitely-the-wrong-secret"));
    assert!(!store
        .instance()
        .stderr()
        .contains("definitely-the-wrong-secret"));
}

#[tokio::test]
async fn moto_accepts_the_right_key_and_checks_the_access_key() {
    let backend = Backend::moto();
    let (table, mut store) = fresh_store(&backend, "authz", None).await;
    assert!(!ok!(store.is_initialized()));
    let mut config = backend.config(&table, None);
    let credentials = Credentials {
        access_key_id: "AKIAUNKNOWNKEY000000".into(),
        ..config.credentials().clone()
    };
    config = config.with_credentials(credentials);
    let mut stranger = open_config(&config).await;
    let err = store_err!(stranger.get("features", "k"));
    assert_eq!(
        match err {
            StoreError::Service(e) => e.code,
            other => panic!("{other:?}"),
        },
        "InvalidClientTokenId"
    );
}
