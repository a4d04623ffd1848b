//! The shared Big Segment suite (spec §10.3) through the component, against
//! moto (SigV4 on) and dynalite, with rows written in the Relay Proxy's layout.

use ld_dynamodb_host::embed::{context_hash, MembershipEntry};
use ld_dynamodb_tests::*;
use serde_json::json;

fn entries(pairs: &[(&str, bool)]) -> Option<Vec<MembershipEntry>> {
    Some(
        pairs
            .iter()
            .map(|(r, i)| MembershipEntry {
                segment_ref: r.to_string(),
                included: *i,
            })
            .collect(),
    )
}

macro_rules! big_segment_suite {
    ($name:ident, $backend:expr, $prefix:expr) => {
        mod $name {
            use super::*;

            const PREFIX: Option<&str> = $prefix;

            async fn table() -> (Backend, String) {
                let backend = $backend;
                let (table, _) = fresh_store(&backend, "bigseg", PREFIX).await;
                (backend, table)
            }

            #[tokio::test]
            async fn metadata_set_and_unset() {
                let (backend, table) = table().await;
                let mut store = open_big_segments(&backend, &table, PREFIX).await;
                assert_eq!(ok!(store.get_metadata()), None, "never synchronized");
                backend.relay_write(&table, PREFIX, Some(1234567890), &[]);
                assert_eq!(ok!(store.get_metadata()), Some(1234567890));
                backend.relay_write(&table, PREFIX, Some(0), &[]);
                assert_eq!(ok!(store.get_metadata()), None, "0 means never");
            }

            #[tokio::test]
            async fn membership_not_found() {
                let (backend, table) = table().await;
                let mut store = open_big_segments(&backend, &table, PREFIX).await;
                assert_eq!(ok!(store.get_membership("userhash")), None);
            }

            #[tokio::test]
            async fn membership_includes_only_excludes_only_and_both() {
                let (backend, table) = table().await;
                backend.relay_write(
                    &table,
                    PREFIX,
                    None,
                    &[
                        ("inc", &["key1", "key2"], &[]),
                        ("exc", &[], &["key1", "key2"]),
                        ("both", &["key1", "key2"], &["key2", "key3"]),
                    ],
                );
                let mut store = open_big_segments(&backend, &table, PREFIX).await;
                assert_eq!(
                    ok!(store.get_membership("inc")),
                    entries(&[("key1", true), ("key2", true)])
                );
                assert_eq!(
                    ok!(store.get_membership("exc")),
                    entries(&[("key1", false), ("key2", false)])
                );
                let both = ok!(store.get_membership("both"));
                assert_eq!(
                    both,
                    entries(&[("key1", true), ("key2", true), ("key3", false)])
                );
                assert!(!both.unwrap().iter().any(|e| e.segment_ref == "unused-key"));
            }

            #[tokio::test]
            async fn membership_by_real_context_hash() {
                let (backend, table) = table().await;
                let hash = context_hash("user-42");
                backend.relay_write(&table, PREFIX, None, &[(&hash, &["big-seg.g3"], &[])]);
                let mut store = open_big_segments(&backend, &table, PREFIX).await;
                assert_eq!(
                    ok!(store.get_membership(&hash)),
                    entries(&[("big-seg.g3", true)])
                );
            }
        }
    };
}

big_segment_suite!(moto_no_prefix, Backend::moto(), None);
big_segment_suite!(moto_prefix, Backend::moto(), Some("testprefix"));
big_segment_suite!(dynalite_no_prefix, Backend::dynalite(), None);
big_segment_suite!(dynalite_prefix, Backend::dynalite(), Some("app1"));

#[tokio::test]
async fn metadata_of_the_wrong_type_counts_as_never_synchronized_and_is_logged() {
    let backend = Backend::dynalite();
    let (table, _) = fresh_store(&backend, "bigbad", None).await;
    backend.boto(json!([["PutItem", {
        "TableName": table,
        "Item": { "namespace": { "S": "big_segments_metadata" }, "key": { "S": "big_segments_metadata" }, "synchronizedOn": { "S": "soon" } },
    }]]));
    let mut store = open_big_segments(&backend, &table, None).await;
    assert_eq!(store.get_metadata().await.unwrap(), None);
    let stderr = store.instance().stderr();
    assert!(
        stderr.contains("synchronizedOn") && stderr.contains("never synchronized"),
        "{stderr}"
    );
}
