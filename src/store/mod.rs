//! The data store: LaunchDarkly's persistent-store semantics over DynamoDB.
//! Init's parts are beside it: the checks of kinds, keys and items
//! (`input`), the plan of an Init in dependency levels (`init_plan`), the
//! BatchWriteItem window (`batch_writer`) and the per-partition pacer
//! (`pacing`), private modules of this one.

mod batch_writer;
mod init_plan;
mod input;
mod pacing;
#[cfg(test)]
mod pacing_sim;

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;

use crate::config::{Config, Credentials};
use crate::dynamo::request::{self, encode};
use crate::dynamo::response::{self, Row};
use crate::dynamo::{Client, Operation};
use crate::error::StoreError;
use crate::model::{Collection, InitReport, Item, ItemRef, KeyedItem, Snapshot, UpsertOutcome};
use crate::schema::{self, INITED_BASE};
use crate::transport::Platform;
use input::{item_json, validate_key, validate_kind};
use pacing::Pacer;

/// How often and how long `create_table` polls for the table to become active.
const TABLE_POLL_INTERVAL: Duration = Duration::from_millis(250);
const TABLE_POLL_LIMIT: u32 = 240;

/// A data store bound to one table and prefix.
pub struct DataStore<P> {
    client: Client<P>,
}

impl<P: Platform> DataStore<P> {
    /// A store with a validated `config`, sending through `platform`; sends nothing.
    pub fn new(config: Config, platform: P) -> Self {
        DataStore {
            client: Client::new(config, platform),
        }
    }

    /// Signs every later request with `credentials` (validated first).
    pub fn set_credentials(&self, credentials: Credentials) -> Result<(), StoreError> {
        self.client.set_credentials(credentials)
    }

    fn config(&self) -> &Config {
        self.client.config()
    }

    fn namespace(&self, kind: &str) -> String {
        schema::prefixed(&self.config().prefix, kind)
    }

    /// One item with a consistent read.
    pub fn get(&self, kind: &str, key: &str) -> Result<Option<Item>, StoreError> {
        validate_kind(kind)?;
        validate_key(key)?;
        let namespace = self.namespace(kind);
        let body = request::get_item(&self.config().table, &namespace, key);
        let output = self.client.call(Operation::GetItem, encode(&body))?;
        match response::get_item::<Row>(&output)? {
            None => Ok(None),
            Some(row) => Ok(Some(response::stored_item(&namespace, row)?.1)),
        }
    }

    /// Every item of a kind, tombstones included, keyed by the `key` attribute.
    /// A malformed row (no numeric `version`, an empty or missing key, an
    /// `item` that is not a JSON object) is skipped and logged with its key.
    pub fn get_all(&self, kind: &str) -> Result<Vec<KeyedItem>, StoreError> {
        let (mut kinds, _) = self.read(&[kind], false, true)?;
        Ok(kinds.pop().unwrap_or_default())
    }

    /// Every item of each kind and whether the `$inited` marker exists, read
    /// together: the queries of every kind and of the marker are in flight at
    /// once (one round trip when each kind fits in a page).
    pub fn snapshot(&self, kinds: &[&str]) -> Result<Snapshot, StoreError> {
        self.snapshot_with(kinds, true)
    }

    /// [`DataStore::snapshot`], with strongly consistent reads or, when
    /// `consistent` is false, eventually consistent ones (half the read
    /// units; a write may be missed for the replication lag, usually under a
    /// second).
    pub fn snapshot_with(&self, kinds: &[&str], consistent: bool) -> Result<Snapshot, StoreError> {
        let (kinds, initialized) = self.read(kinds, true, consistent)?;
        Ok(Snapshot { initialized, kinds })
    }

    /// The items of `kinds`, and with `marker` whether the marker exists (its
    /// namespace queried beside them; false when not asked).
    fn read(
        &self,
        kinds: &[&str],
        marker: bool,
        consistent: bool,
    ) -> Result<(Vec<Vec<KeyedItem>>, bool), StoreError> {
        let mut namespaces = Vec::with_capacity(kinds.len() + 1);
        for kind in kinds {
            validate_kind(kind)?;
            namespaces.push(self.namespace(kind));
        }
        let marker_namespace = self.namespace(INITED_BASE);
        if marker {
            namespaces.push(marker_namespace.clone());
        }
        let queried: Vec<&str> = namespaces.iter().map(String::as_str).collect();
        let mut items: Vec<Vec<KeyedItem>> = vec![Vec::new(); kinds.len()];
        let mut initialized = false;
        self.query_all(&queried, false, consistent, |index, raw| {
            let Some(kind) = items.get_mut(index) else {
                // The marker's namespace: its row is keyed by the namespace.
                initialized |= raw.key.and_then(|k| k.s).as_deref() == Some(&marker_namespace);
                return Ok(());
            };
            // One bad row must not hide every other item: it is logged and skipped.
            match response::stored_item(&namespaces[index], raw) {
                Ok((key, item)) => kind.push(KeyedItem { key, item }),
                Err(e) => self
                    .client
                    .platform()
                    .log_error(&format!("GetAll skipped a malformed row: {e}")),
            }
            Ok(())
        })?;
        Ok((items, initialized))
    }

    /// Writes the item unless the table holds an equal or newer version.
    pub fn upsert(&self, kind: &str, key: &str, item: &Item) -> Result<UpsertOutcome, StoreError> {
        validate_kind(kind)?;
        validate_key(key)?;
        let (json, _) = item_json(key, item)?;
        let namespace = self.namespace(kind);
        if !schema::fits(&namespace, key, item.version, &json) {
            self.client
                .platform()
                .log_error(&schema::too_large_message(&namespace, key));
            return Ok(UpsertOutcome::TooLarge);
        }
        let row = request::item(&namespace, key, item.version, &json);
        let body = request::conditional_put(&self.config().table, row, item.version);
        match self.client.call(Operation::PutItem, encode(&body)) {
            Ok(output) => response::put_item(&output).map(|()| UpsertOutcome::Applied),
            Err(e) if e.service_code() == Some("ConditionalCheckFailedException") => {
                Ok(UpsertOutcome::NotNewer)
            }
            Err(e) => Err(e),
        }
    }

    /// Replaces all data of the given kinds; see the WIT documentation of `init`.
    /// Kinds are written in the order given, each kind's items in dependency
    /// levels (see the private module `init_plan`): a level is sent only once the previous one is
    /// confirmed written.
    pub fn init(&self, data: &[Collection]) -> Result<InitReport, StoreError> {
        let plans = init_plan::plan(&self.config().prefix, data)?;
        let mut report = InitReport::default();
        let namespaces: Vec<&str> = plans.iter().map(|p| p.namespace.as_str()).collect();
        let mut stale: Vec<(String, BTreeSet<String>)> = namespaces
            .iter()
            .map(|ns| (ns.to_string(), BTreeSet::new()))
            .collect();
        self.query_all(&namespaces, true, true, |index, raw| {
            let (namespace, existing) = &mut stale[index];
            existing.insert(response::row_key(namespace, raw.key)?);
            Ok(())
        })?;
        // One pacer per partition key (namespace): a partition that throttles
        // slows only its own writes.
        let limit = self.config().init_concurrency;
        // (A few namespaces: a list is smaller code than a map.)
        let mut pacers: Vec<(String, Pacer)> = Vec::new();
        let take = |pacers: &mut Vec<(String, Pacer)>, namespace: &str| match pacers
            .iter()
            .position(|(ns, _)| ns == namespace)
        {
            Some(at) => pacers.swap_remove(at).1,
            None => Pacer::new(limit),
        };
        for (plan, (_, existing)) in plans.iter().zip(stale.iter_mut()) {
            let mut paced = take(&mut pacers, &plan.namespace);
            for level in plan.levels() {
                let mut puts = Vec::with_capacity(level.len());
                for item in level {
                    if schema::fits(&plan.namespace, &item.key, item.version, &item.json) {
                        puts.push(request::put_request(request::item(
                            &plan.namespace,
                            &item.key,
                            item.version,
                            &item.json,
                        )));
                        existing.remove(&item.key);
                    } else {
                        self.client
                            .platform()
                            .log_error(&schema::too_large_message(&plan.namespace, &item.key));
                        report.dropped.push(ItemRef {
                            kind: plan.kind.clone(),
                            key: item.key.clone(),
                        });
                    }
                }
                report.written += puts.len() as u32;
                batch_writer::write_all(&self.client, &mut paced, puts)?;
            }
            pacers.push((plan.namespace.clone(), paced));
        }
        for (namespace, keys) in &stale {
            let deletes: Vec<Value> = keys
                .iter()
                .map(|key| request::delete_request(namespace, key))
                .collect();
            report.deleted += deletes.len() as u32;
            if !deletes.is_empty() {
                let mut paced = take(&mut pacers, namespace);
                batch_writer::write_all(&self.client, &mut paced, deletes)?;
                pacers.push((namespace.clone(), paced));
            }
        }
        let marker = self.namespace(INITED_BASE);
        batch_writer::write_all(
            &self.client,
            &mut Pacer::new(limit),
            vec![request::put_request(request::key(&marker, &marker))],
        )?;
        Ok(report)
    }

    /// Whether the `$inited` marker exists.
    pub fn is_initialized(&self) -> Result<bool, StoreError> {
        let marker = self.namespace(INITED_BASE);
        let body = request::get_item(&self.config().table, &marker, &marker);
        let output = self.client.call(Operation::GetItem, encode(&body))?;
        Ok(response::get_item::<Row>(&output)?.is_some_and(|row| row.key.is_some()))
    }

    /// Whether the marker lookup succeeds.
    pub fn is_available(&self) -> bool {
        self.is_initialized().is_ok()
    }

    /// Creates the table (on-demand capacity) and waits until it is active.
    /// Returns false if it already existed.
    pub fn create_table(&self) -> Result<bool, StoreError> {
        let table = &self.config().table;
        let created = match self.client.call(
            Operation::CreateTable,
            encode(&request::create_table(table)),
        ) {
            Ok(_) => true,
            Err(e) if e.service_code() == Some("ResourceInUseException") => false,
            Err(e) => return Err(e),
        };
        for _ in 0..TABLE_POLL_LIMIT {
            let output = self.client.call(
                Operation::DescribeTable,
                encode(&request::describe_table(table)),
            )?;
            if response::table_status(&output)? == "ACTIVE" {
                return Ok(created);
            }
            self.client.platform().sleep(TABLE_POLL_INTERVAL);
        }
        Err(StoreError::malformed(format!(
            "table {table:?} did not become ACTIVE"
        )))
    }

    /// Reads every page of Queries of the namespaces (strongly consistent
    /// with `consistent`), the next pages of all namespaces in flight
    /// together; `each` gets the namespace's index and each row. Only one page
    /// per namespace is held at a time.
    fn query_all(
        &self,
        namespaces: &[&str],
        keys_only: bool,
        consistent: bool,
        mut each: impl FnMut(usize, Row) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let table = &self.config().table;
        let mut pending: Vec<(usize, Option<Value>)> =
            (0..namespaces.len()).map(|i| (i, None)).collect();
        while !pending.is_empty() {
            let bodies = pending
                .iter()
                .map(|(i, start)| {
                    encode(&request::query(
                        table,
                        namespaces[*i],
                        keys_only,
                        consistent,
                        start.as_ref(),
                    ))
                })
                .collect();
            let results = self.client.call_all(Operation::Query, bodies);
            let mut next = Vec::new();
            for ((index, start), result) in pending.into_iter().zip(results) {
                let page = response::query(&result?)?;
                for raw in page.items {
                    each(index, raw)?;
                }
                match page.last_evaluated_key {
                    None => {}
                    Some(key) if start.as_ref() == Some(&key) => {
                        return Err(StoreError::malformed(
                            "Query returned the same LastEvaluatedKey twice",
                        ))
                    }
                    key => next.push((index, key)),
                }
            }
            pending = next;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{config, error, ok, Answer, FakePlatform, Sent};
    use crate::transport::TransportFailure;
    use serde_json::json;

    fn flag(key: &str, version: u64) -> KeyedItem {
        KeyedItem {
            key: key.into(),
            item: Item {
                version,
                deleted: false,
                json: json!({ "key": key, "version": version }).to_string(),
            },
        }
    }

    fn coll(kind: &str, items: Vec<KeyedItem>) -> Collection {
        Collection {
            kind: kind.into(),
            items,
        }
    }

    /// Answers a Query with the given existing keys, one page.
    fn existing(sent: &Sent, keys: &[&str]) -> Answer {
        let ns = sent.body["KeyConditions"]["namespace"]["AttributeValueList"][0]["S"]
            .as_str()
            .unwrap();
        let items: Vec<Value> = keys
            .iter()
            .map(|k| json!({ "namespace": { "S": ns }, "key": { "S": k } }))
            .collect();
        ok(&json!({ "Items": items, "Count": items.len() }).to_string())
    }

    fn batch_requests(sent: &Sent) -> Vec<Value> {
        sent.body["RequestItems"]["tbl"].as_array().unwrap().clone()
    }

    /// The keys put by each BatchWriteItem sent, in order.
    fn put_keys(sent: &[Sent]) -> Vec<Vec<String>> {
        sent.iter()
            .filter(|s| s.op == "BatchWriteItem")
            .map(|s| {
                batch_requests(s)
                    .iter()
                    .filter_map(|r| r["PutRequest"]["Item"]["key"]["S"].as_str())
                    .map(str::to_string)
                    .collect()
            })
            .collect()
    }

    #[test]
    fn init_writes_kinds_in_order_then_deletes_then_the_marker() {
        let platform = FakePlatform::new(|sent: &Sent| match sent.op.as_str() {
            "Query" => existing(sent, &["old", "s1"]),
            _ => ok("{}"),
        });
        let store = DataStore::new(config("p", 3, 8), platform);
        let report = store
            .init(&[
                coll("segments", vec![flag("s1", 1)]),
                coll("features", vec![flag("f1", 2), flag("f2", 3)]),
            ])
            .unwrap();
        assert_eq!(
            report,
            InitReport {
                written: 3,
                deleted: 3,
                dropped: vec![]
            }
        );
        let sent = store.client.platform().sent.borrow().clone();
        let ops: Vec<&str> = sent.iter().map(|s| s.op.as_str()).collect();
        assert_eq!(
            ops,
            [
                "Query",
                "Query",
                "BatchWriteItem",
                "BatchWriteItem",
                "BatchWriteItem",
                "BatchWriteItem",
                "BatchWriteItem"
            ]
        );
        for query in &sent[..2] {
            assert_eq!(query.body["ProjectionExpression"], "#namespace, #key");
            assert_eq!(query.body["ConsistentRead"], true);
        }
        assert_eq!(
            sent[0].body["KeyConditions"]["namespace"]["AttributeValueList"][0]["S"],
            "p:segments"
        );
        let segments = batch_requests(&sent[2]);
        assert_eq!(
            segments[0]["PutRequest"]["Item"]["namespace"]["S"],
            "p:segments"
        );
        let flags = batch_requests(&sent[3]);
        let keys: Vec<&str> = flags
            .iter()
            .map(|r| r["PutRequest"]["Item"]["key"]["S"].as_str().unwrap())
            .collect();
        assert_eq!(keys, ["f1", "f2"]);
        // Deletes go per partition key (each paced on its own).
        assert_eq!(
            batch_requests(&sent[4]),
            vec![
                json!({ "DeleteRequest": { "Key": { "namespace": { "S": "p:segments" }, "key": { "S": "old" } } } }),
            ]
        );
        assert_eq!(
            batch_requests(&sent[5]),
            vec![
                json!({ "DeleteRequest": { "Key": { "namespace": { "S": "p:features" }, "key": { "S": "old" } } } }),
                json!({ "DeleteRequest": { "Key": { "namespace": { "S": "p:features" }, "key": { "S": "s1" } } } }),
            ]
        );
        assert_eq!(
            batch_requests(&sent[6]),
            vec![
                json!({ "PutRequest": { "Item": { "namespace": { "S": "p:$inited" }, "key": { "S": "p:$inited" } } } })
            ]
        );
    }

    #[test]
    fn init_batches_by_25_with_bounded_concurrency() {
        let platform = FakePlatform::new(|sent: &Sent| match sent.op.as_str() {
            "Query" => existing(sent, &[]),
            _ => ok("{}"),
        });
        let store = DataStore::new(config("", 3, 2), platform);
        let items: Vec<_> = (0..130).map(|i| flag(&format!("k{i:03}"), 1)).collect();
        store.init(&[coll("features", items)]).unwrap();
        let platform = store.client.platform();
        let sizes: Vec<usize> = platform
            .sent
            .borrow()
            .iter()
            .filter(|s| s.op == "BatchWriteItem")
            .map(|s| batch_requests(s).len())
            .collect();
        assert_eq!(sizes, [25, 25, 25, 25, 25, 5, 1]);
        // The Query, then 2 batches in flight at each answer (the window),
        // then the last batch and the marker alone.
        assert_eq!(*platform.rounds.borrow(), [1, 2, 2, 2, 2, 2, 1, 1]);
    }

    #[test]
    fn init_writes_each_dependency_level_after_the_previous_is_confirmed() {
        // "c" needs "b", which needs "a"; the first answer leaves "a" unprocessed
        // once, so "b" may go only after "a" is re-sent and confirmed.
        let mut first = true;
        let platform = FakePlatform::new(move |sent: &Sent| match sent.op.as_str() {
            "Query" => existing(sent, &[]),
            "BatchWriteItem" if first => {
                first = false;
                let requests = batch_requests(sent);
                let a = requests
                    .iter()
                    .find(|r| r["PutRequest"]["Item"]["key"]["S"] == "a")
                    .expect("level 0 holds a")
                    .clone();
                ok(&json!({ "UnprocessedItems": { "tbl": [a] } }).to_string())
            }
            _ => ok("{}"),
        });
        let store = DataStore::new(config("", 3, 8), platform);
        let with_prerequisite = |key: &str, on: &str| {
            KeyedItem {
            key: key.into(),
            item: Item {
                version: 1,
                deleted: false,
                json: json!({ "key": key, "version": 1, "prerequisites": [{ "key": on, "variation": 0 }] })
                    .to_string(),
            },
        }
        };
        let data = [coll(
            "features",
            vec![
                with_prerequisite("c", "b"),
                with_prerequisite("b", "a"),
                flag("a", 1),
                flag("z", 1),
            ],
        )];
        let report = store.init(&data).unwrap();
        assert_eq!(report.written, 4);
        assert_eq!(
            put_keys(&store.client.platform().sent.borrow()),
            [
                vec!["a", "z"],
                vec!["a"],
                vec!["b"],
                vec!["c"],
                vec!["$inited"]
            ]
        );
    }

    #[test]
    fn unprocessed_items_are_resent_until_none_remain() {
        let mut batch_calls = 0;
        let platform = FakePlatform::new(move |sent: &Sent| match sent.op.as_str() {
            "Query" => existing(sent, &[]),
            _ => {
                batch_calls += 1;
                let requests = batch_requests(sent);
                if batch_calls <= 2 && requests.len() > 1 {
                    // Leave the last two requests unprocessed.
                    let left = &requests[requests.len() - 2..];
                    ok(&json!({ "UnprocessedItems": { "tbl": left } }).to_string())
                } else {
                    ok(r#"{"UnprocessedItems":{}}"#)
                }
            }
        });
        let store = DataStore::new(config("", 5, 8), platform);
        store
            .init(&[coll(
                "features",
                vec![flag("a", 1), flag("b", 1), flag("c", 1)],
            )])
            .unwrap();
        let platform = store.client.platform();
        let sent = platform.sent.borrow();
        assert_eq!(
            put_keys(&sent),
            [
                vec!["a", "b", "c"],
                vec!["b", "c"],
                vec!["b", "c"],
                vec!["$inited"]
            ]
        );
        // The first partial answer starts the pacer's probe: one request at a
        // time, re-sent at once (no rate yet to wait for).
        assert!(platform.rounds.borrow().iter().all(|&n| n == 1));
    }

    #[test]
    fn init_fails_without_the_marker_when_no_item_is_accepted_for_the_limit() {
        let platform = FakePlatform::new(|sent: &Sent| match sent.op.as_str() {
            "Query" => existing(sent, &[]),
            _ => ok(&json!({ "UnprocessedItems": { "tbl": batch_requests(sent) } }).to_string()),
        });
        // 10 s without progress (`testing::config`), on the fake clock.
        let store = DataStore::new(config("", 3, 8), platform);
        let err = store
            .init(&[coll("features", vec![flag("a", 1)])])
            .unwrap_err();
        match err {
            StoreError::Service(e) => {
                assert_eq!(e.code, "UnprocessedItems");
                assert!(
                    e.message.contains("accepted no item for 10000 ms")
                        && e.message.contains("1 write request(s) were not written"),
                    "{}",
                    e.message
                );
            }
            other => panic!("{other:?}"),
        }
        let platform = store.client.platform();
        let elapsed = platform.clock.get();
        assert!(
            elapsed >= Duration::from_secs(10) && elapsed < Duration::from_secs(11),
            "gave up after {elapsed:?}"
        );
        let sent = platform.sent.borrow();
        assert!(
            sent.iter().all(|s| !s.body.to_string().contains("$inited")),
            "the marker is never sent"
        );
        // Paced while refused: far fewer requests than one per millisecond.
        assert!(sent.len() < 500, "{} requests", sent.len());
    }

    #[test]
    fn a_slow_partition_that_keeps_accepting_never_fails_the_init() {
        // Accepts one item per answer, whatever it is sent: 2,000 items take
        // far longer than the no-progress limit, and all are written.
        let platform = FakePlatform::new(|sent: &Sent| match sent.op.as_str() {
            "Query" => existing(sent, &[]),
            _ => {
                let requests = batch_requests(sent);
                ok(&json!({ "UnprocessedItems": { "tbl": &requests[1..] } }).to_string())
            }
        });
        let mut config = config("", 3, 8);
        config.init_no_progress = Duration::from_millis(50);
        let store = DataStore::new(config, platform);
        let items: Vec<_> = (0..2000).map(|i| flag(&format!("k{i:04}"), 1)).collect();
        store.init(&[coll("features", items)]).unwrap();
        let platform = store.client.platform();
        let written: BTreeSet<String> = put_keys(&platform.sent.borrow())
            .into_iter()
            .flatten()
            .collect();
        assert_eq!(written.len(), 2001, "every item and the marker");
        assert!(platform.clock.get() > Duration::from_millis(50));
    }

    #[test]
    fn a_failed_batch_stops_init_before_the_marker() {
        let platform = FakePlatform::new(|sent: &Sent| match sent.op.as_str() {
            "Query" => existing(sent, &["stale"]),
            _ => error(400, "ValidationException"),
        });
        let store = DataStore::new(config("", 3, 8), platform);
        let err = store
            .init(&[coll("features", vec![flag("a", 1)])])
            .unwrap_err();
        assert_eq!(err.service_code(), Some("ValidationException"));
        assert_eq!(
            store.client.platform().ops(),
            ["Query", "BatchWriteItem"],
            "not retried, nothing after"
        );
    }

    #[test]
    fn throttling_is_retried_with_backoff_then_reported_with_attempts() {
        let mut calls = 0;
        let platform = FakePlatform::new(move |_: &Sent| {
            calls += 1;
            if calls < 3 {
                error(400, "ProvisionedThroughputExceededException")
            } else {
                ok(r#"{"Item":{"namespace":{"S":"$inited"},"key":{"S":"$inited"}}}"#)
            }
        });
        let store = DataStore::new(config("", 5, 8), platform);
        assert!(store.is_initialized().unwrap());
        let platform = store.client.platform();
        assert_eq!(platform.ops().len(), 3);
        let sleeps = platform.sleeps.borrow();
        assert_eq!(sleeps.len(), 2);
        assert!(sleeps[0] <= Duration::from_millis(10) && sleeps[1] <= Duration::from_millis(20));

        let store = DataStore::new(
            config("", 4, 8),
            FakePlatform::new(|_: &Sent| error(503, "ServiceUnavailable")),
        );
        match store.get("features", "k").unwrap_err() {
            StoreError::Service(e) => assert_eq!(
                (e.code.as_str(), e.attempts, e.status),
                ("ServiceUnavailable", 4, 503)
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn transport_failures_are_retried_only_when_retryable() {
        let refused = |retryable| TransportFailure {
            code: "connection-refused".into(),
            detail: None,
            retryable,
        };
        let store = DataStore::new(
            config("", 3, 8),
            FakePlatform::new(move |_: &Sent| Err(refused(true))),
        );
        match store.get("features", "k").unwrap_err() {
            StoreError::Transport(t) => {
                assert_eq!((t.code.as_str(), t.attempts), ("connection-refused", 3))
            }
            other => panic!("{other:?}"),
        }
        assert!(!store.is_available());
        let store = DataStore::new(
            config("", 3, 8),
            FakePlatform::new(move |_: &Sent| Err(refused(false))),
        );
        assert!(
            matches!(store.get("features", "k"), Err(StoreError::Transport(t)) if t.attempts == 1)
        );
    }

    #[test]
    fn upsert_sends_the_conditional_put_and_maps_the_condition_failure() {
        let store = DataStore::new(
            config("env", 3, 8),
            FakePlatform::new(|_: &Sent| error(400, "ConditionalCheckFailedException")),
        );
        let outcome = store.upsert("features", "f", &flag("f", 5).item).unwrap();
        assert_eq!(outcome, UpsertOutcome::NotNewer);
        let sent = store.client.platform().sent.borrow();
        assert_eq!(sent.len(), 1, "a condition failure is not retried");
        assert_eq!(sent[0].op, "PutItem");
        assert_eq!(sent[0].body["Item"]["namespace"]["S"], "env:features");
        assert_eq!(
            sent[0].body["ExpressionAttributeValues"][":version"]["N"],
            "5"
        );
    }

    #[test]
    fn upsert_too_large_logs_and_sends_nothing() {
        let store = DataStore::new(config("", 3, 8), FakePlatform::new(|_: &Sent| ok("{}")));
        let big = json!({ "key": "big", "version": 1, "pad": "x".repeat(400_000) }).to_string();
        let outcome = store
            .upsert(
                "features",
                "big",
                &Item {
                    version: 1,
                    deleted: false,
                    json: big,
                },
            )
            .unwrap();
        assert_eq!(outcome, UpsertOutcome::TooLarge);
        let platform = store.client.platform();
        assert!(platform.sent.borrow().is_empty());
        assert_eq!(
            *platform.logs.borrow(),
            ["The item \"big\" in \"features\" was too large to store in DynamoDB and was dropped"]
        );
    }

    #[test]
    fn get_all_follows_pages_and_stops_on_a_repeated_key() {
        let mut page = 0;
        let platform = FakePlatform::new(move |sent: &Sent| {
            page += 1;
            let start = sent.body.get("ExclusiveStartKey").cloned();
            match page {
                1 => ok(
                    r#"{"Items":[{"key":{"S":"a"},"version":{"N":"1"},"item":{"S":"{}"}}],"LastEvaluatedKey":{"key":{"S":"a"}}}"#,
                ),
                2 => {
                    assert_eq!(start.unwrap()["key"]["S"], "a");
                    ok(r#"{"Items":[{"key":{"S":"b"},"version":{"N":"2"},"item":{"S":"null"}}]}"#)
                }
                _ => ok(r#"{"Items":[],"LastEvaluatedKey":{"key":{"S":"z"}}}"#),
            }
        });
        let store = DataStore::new(config("", 3, 8), platform);
        let all = store.get_all("features").unwrap();
        assert_eq!(all.len(), 2);
        assert!(all[1].item.deleted);
        let err = store.get_all("features").unwrap_err();
        assert!(
            matches!(err, StoreError::MalformedResponse(m) if m.contains("same LastEvaluatedKey"))
        );
    }

    #[test]
    fn a_snapshot_queries_every_kind_and_the_marker_in_one_round() {
        let platform = FakePlatform::new(|sent: &Sent| {
            let ns = sent.body["KeyConditions"]["namespace"]["AttributeValueList"][0]["S"]
                .as_str()
                .unwrap()
                .to_string();
            let row = |key: &str| {
                json!({"namespace": {"S": ns}, "key": {"S": key}, "version": {"N": "2"},
                                        "item": {"S": format!("{{\"key\":\"{key}\",\"version\":2}}")}})
            };
            let items = match ns.as_str() {
                "p:features" => vec![row("f1"), row("f2")],
                "p:segments" => vec![row("s1")],
                "p:$inited" => vec![json!({"namespace": {"S": ns}, "key": {"S": "p:$inited"}})],
                other => panic!("{other}"),
            };
            ok(&json!({ "Items": items }).to_string())
        });
        let store = DataStore::new(config("p", 3, 8), platform);
        let snapshot = store.snapshot(&["features", "segments"]).unwrap();
        assert!(snapshot.initialized);
        let keys: Vec<Vec<&str>> = snapshot
            .kinds
            .iter()
            .map(|items| items.iter().map(|k| k.key.as_str()).collect())
            .collect();
        assert_eq!(keys, [vec!["f1", "f2"], vec!["s1"]]);
        // The three queries went out together, in one round.
        assert_eq!(*store.client.platform().rounds.borrow(), [3]);
        assert!(store.snapshot(&["bad:kind"]).is_err());
    }

    #[test]
    fn get_all_skips_and_logs_malformed_rows() {
        let platform = FakePlatform::new(|_: &Sent| {
            ok(r#"{"Items":[
                {"key":{"S":"good1"},"version":{"N":"1"},"item":{"S":"{}"}},
                {"key":{"S":"noversion"},"item":{"S":"{}"}},
                {"key":{"S":"textversion"},"version":{"N":"x1"},"item":{"S":"{}"}},
                {"key":{"S":""},"version":{"N":"1"},"item":{"S":"{}"}},
                {"key":{"S":"notobject"},"version":{"N":"1"},"item":{"S":"[1]"}},
                {"key":{"S":"good2"},"version":{"N":"2"},"item":{"S":"{}"}}
            ]}"#)
        });
        let store = DataStore::new(config("", 3, 8), platform);
        let all = store.get_all("features").unwrap();
        let keys: Vec<&str> = all.iter().map(|k| k.key.as_str()).collect();
        assert_eq!(keys, ["good1", "good2"]);
        let logs = store.client.platform().logs.borrow();
        assert_eq!(logs.len(), 4, "{logs:?}");
        for (log, key) in logs
            .iter()
            .zip(["noversion", "textversion", "\"\"", "notobject"])
        {
            assert!(
                log.contains("skipped a malformed row") && log.contains(key),
                "{log}"
            );
        }
    }

    #[test]
    fn invalid_kinds_keys_and_duplicate_kinds_are_rejected_without_requests() {
        let store = DataStore::new(config("", 3, 8), FakePlatform::new(|_: &Sent| ok("{}")));
        assert!(matches!(
            store.get("", "k"),
            Err(StoreError::InvalidInput(_))
        ));
        assert!(matches!(
            store.get("$inited", "k"),
            Err(StoreError::InvalidInput(_))
        ));
        assert!(matches!(
            store.get("features", ""),
            Err(StoreError::InvalidInput(_))
        ));
        let twice = store.init(&[coll("features", vec![]), coll("features", vec![])]);
        assert!(matches!(twice, Err(StoreError::InvalidInput(m)) if m.contains("given twice")));
        assert!(store.client.platform().sent.borrow().is_empty());
    }

    #[test]
    fn a_key_given_twice_is_written_once_with_its_last_value() {
        let platform = FakePlatform::new(|sent: &Sent| match sent.op.as_str() {
            "Query" => existing(sent, &[]),
            _ => ok("{}"),
        });
        let store = DataStore::new(config("", 3, 8), platform);
        let report = store
            .init(&[coll(
                "features",
                vec![flag("a", 1), flag("b", 1), flag("a", 2)],
            )])
            .unwrap();
        assert_eq!(report.written, 2);
        let sent = store.client.platform().sent.borrow();
        let puts = batch_requests(&sent[1]);
        assert_eq!(puts[0]["PutRequest"]["Item"]["version"]["N"], "2");
        assert_eq!(puts[1]["PutRequest"]["Item"]["key"]["S"], "b");
    }

    #[test]
    fn set_credentials_signs_later_requests_and_refuses_empty_ones() {
        let platform = FakePlatform::new(|_: &Sent| ok("{}"));
        let store = DataStore::new(config("", 1, 1), platform);
        store.get("features", "a").unwrap();
        let rotated = Credentials {
            access_key_id: "AKIDROTATED".into(),
            secret_access_key: "rotated-secret".into(),
            session_token: Some(String::new()),
        };
        store.set_credentials(rotated).unwrap();
        store.get("features", "a").unwrap();
        let empty = Credentials {
            access_key_id: " ".into(),
            secret_access_key: "s".into(),
            session_token: None,
        };
        assert_eq!(
            store.set_credentials(empty),
            Err(StoreError::InvalidConfig(
                "access key id is required".into()
            ))
        );
        store.get("features", "a").unwrap();
        let keys: Vec<String> = store
            .client
            .platform()
            .sent
            .borrow()
            .iter()
            .map(|s| {
                let credential = s.authorization.split("Credential=").nth(1).unwrap();
                credential.split('/').next().unwrap().to_string()
            })
            .collect();
        assert_eq!(keys, ["AKID", "AKIDROTATED", "AKIDROTATED"]);
        // An empty session token is dropped, not sent.
        assert!(!store.client.platform().sent.borrow()[1]
            .authorization
            .contains("x-amz-security-token"));
    }
}
