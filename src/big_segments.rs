//! The Big Segment store: reads the rows the Relay Proxy writes (spec §7).

use crate::config::{Config, Credentials};
use crate::dynamo::request::{self, encode};
use serde::Deserialize;
use std::collections::BTreeSet;

use crate::dynamo::response::{self, Attr};
use crate::dynamo::{Client, Operation};
use crate::error::StoreError;
use crate::schema;
use crate::transport::Platform;

/// Namespace and key base of the metadata row.
pub const METADATA_BASE: &str = "big_segments_metadata";
/// Namespace base of the membership rows (keyed by context hash).
pub const USER_BASE: &str = "big_segments_user";
/// The metadata row: `synchronizedOn` (N) holds the epoch milliseconds of the
/// last synchronization.
#[derive(Deserialize)]
struct MetadataRow {
    #[serde(rename = "synchronizedOn")]
    synchronized_on: Option<Attr>,
}

/// A membership row: the segment references the context is `included` in and
/// `excluded` from (SS).
#[derive(Deserialize)]
struct MembershipRow {
    included: Option<Attr>,
    excluded: Option<Attr>,
}

/// One segment reference of a membership: included (true) or excluded (false).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipEntry {
    /// The segment reference, `<segment-key>.g<generation>`.
    pub segment_ref: String,
    /// Whether the context is included (true) or excluded (false).
    pub included: bool,
}

/// A Big Segment store bound to one table and prefix.
pub struct BigSegmentStore<P> {
    client: Client<P>,
}

impl<P: Platform> BigSegmentStore<P> {
    /// A store with a validated `config`, sending through `platform`; sends nothing.
    pub fn new(config: Config, platform: P) -> Self {
        BigSegmentStore {
            client: Client::new(config, platform),
        }
    }

    /// Signs every later request with `credentials` (validated first).
    pub fn set_credentials(&self, credentials: Credentials) -> Result<(), StoreError> {
        self.client.set_credentials(credentials)
    }

    fn get<T: serde::de::DeserializeOwned>(
        &self,
        namespace: &str,
        key: &str,
    ) -> Result<Option<T>, StoreError> {
        let body = request::get_item(&self.client.config().table, namespace, key);
        response::get_item(&self.client.call(Operation::GetItem, encode(&body))?)
    }

    /// When the Big Segment data was last synchronized, in epoch milliseconds;
    /// `None` when it never was (no row, no attribute, or 0). A `synchronizedOn`
    /// that is not a non-negative integer N also counts as never synchronized
    /// (as in LaunchDarkly's Go store) and is logged.
    pub fn get_metadata(&self) -> Result<Option<u64>, StoreError> {
        let key = schema::prefixed(&self.client.config().prefix, METADATA_BASE);
        let Some(row) = self.get::<MetadataRow>(&key, &key)? else {
            return Ok(None);
        };
        match row.synchronized_on {
            None => Ok(None),
            Some(attr) => match attr.n.as_deref().map(str::parse::<u64>) {
                Some(Ok(0)) => Ok(None),
                Some(Ok(millis)) => Ok(Some(millis)),
                _ => {
                    self.client.platform().log_error(&format!(
                        "synchronizedOn of {key:?} is not a non-negative integer number: treated as never synchronized"
                    ));
                    Ok(None)
                }
            },
        }
    }

    /// The context's memberships, sorted by reference; `None` when the context
    /// has no row. A reference in both sets counts as included.
    pub fn get_membership(
        &self,
        context_hash: &str,
    ) -> Result<Option<Vec<MembershipEntry>>, StoreError> {
        if context_hash.is_empty() {
            return Err(StoreError::InvalidInput(
                "context hash must not be empty".into(),
            ));
        }
        let namespace = schema::prefixed(&self.client.config().prefix, USER_BASE);
        let Some(row) = self.get::<MembershipRow>(&namespace, context_hash)? else {
            return Ok(None);
        };
        let set = |attr: Option<Attr>| attr.and_then(|a| a.ss).unwrap_or_default();
        let included = set(row.included);
        // A set built by insertion orders the references (the component has
        // no sort of its own to spare).
        let mut refs = BTreeSet::new();
        for segment_ref in set(row.excluded)
            .into_iter()
            .chain(included.iter().cloned())
        {
            refs.insert(segment_ref);
        }
        Ok(Some(
            refs.into_iter()
                .map(|segment_ref| MembershipEntry {
                    included: included.contains(&segment_ref),
                    segment_ref,
                })
                .collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{config, ok, Answer, FakePlatform, Sent};

    fn store(
        answer: impl FnMut(&Sent) -> Answer,
    ) -> BigSegmentStore<FakePlatform<impl FnMut(&Sent) -> Answer>> {
        BigSegmentStore::new(config("app", 3, 8), FakePlatform::new(answer))
    }

    #[test]
    fn metadata_reads_synchronized_on_with_a_consistent_get() {
        let s = store(|_| {
            ok(r#"{"Item":{"synchronizedOn":{"N":"1234567890"},"lastVersion":{"S":"x"}}}"#)
        });
        assert_eq!(s.get_metadata().unwrap(), Some(1_234_567_890));
        let sent = s.client.platform().sent.borrow();
        assert_eq!(
            sent[0].body["Key"]["namespace"]["S"],
            "app:big_segments_metadata"
        );
        assert_eq!(sent[0].body["Key"]["key"]["S"], "app:big_segments_metadata");
        assert_eq!(sent[0].body["ConsistentRead"], true);
    }

    #[test]
    fn missing_or_zero_metadata_means_never_synchronized() {
        for body in [
            "{}",
            r#"{"Item":{"key":{"S":"k"}}}"#,
            r#"{"Item":{"synchronizedOn":{"N":"0"}}}"#,
        ] {
            assert_eq!(
                store(move |_| ok(body)).get_metadata().unwrap(),
                None,
                "{body}"
            );
        }
        for body in [
            r#"{"Item":{"synchronizedOn":{"S":"12"}}}"#,
            r#"{"Item":{"synchronizedOn":{"N":"1.5"}}}"#,
        ] {
            let s = store(move |_| ok(body));
            assert_eq!(s.get_metadata().unwrap(), None, "{body}");
            let logs = s.client.platform().logs.borrow();
            assert_eq!(logs.len(), 1, "{body}");
            assert!(logs[0].contains("synchronizedOn"), "{}", logs[0]);
        }
    }

    #[test]
    fn membership_is_sorted_and_includes_win_over_excludes() {
        let s = store(|_| {
            ok(
                r#"{"Item":{"included":{"SS":["key2","key1"]},"excluded":{"SS":["key3","key2","key0"]}}}"#,
            )
        });
        let entries = s.get_membership("hash==").unwrap().unwrap();
        let pairs: Vec<(&str, bool)> = entries
            .iter()
            .map(|e| (e.segment_ref.as_str(), e.included))
            .collect();
        assert_eq!(
            pairs,
            [
                ("key0", false),
                ("key1", true),
                ("key2", true),
                ("key3", false)
            ]
        );
        let sent = s.client.platform().sent.borrow();
        assert_eq!(
            sent[0].body["Key"]["namespace"]["S"],
            "app:big_segments_user"
        );
        assert_eq!(sent[0].body["Key"]["key"]["S"], "hash==");
    }

    #[test]
    fn missing_membership_row_is_none_and_a_row_without_sets_is_empty() {
        assert_eq!(store(|_| ok("{}")).get_membership("h").unwrap(), None);
        let empty = store(|_| ok(r#"{"Item":{"included":{"S":"not a set"}}}"#))
            .get_membership("h")
            .unwrap();
        assert_eq!(empty, Some(vec![]));
        assert!(matches!(
            store(|_| ok("{}")).get_membership(""),
            Err(StoreError::InvalidInput(_))
        ));
    }
}
