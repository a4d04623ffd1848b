//! The data store: LaunchDarkly's persistent-store semantics over DynamoDB.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use serde_json::Value;

use crate::config::Config;
use crate::dynamo::request::{self, encode, BATCH_WRITE_LIMIT};
use crate::dynamo::response::{self, RawItem};
use crate::dynamo::{Client, Operation};
use crate::error::{ServiceError, StoreError};
use crate::model::{Collection, InitReport, Item, ItemRef, KeyedItem, UpsertOutcome};
use crate::schema::{self, ATTR_KEY, INITED_BASE};
use crate::transport::Platform;

/// Namespace bases the data store never uses as a kind.
const RESERVED_KINDS: &[&str] = &[INITED_BASE, "big_segments_metadata", "big_segments_user"];

/// How often and how long `create_table` polls for the table to become active.
const TABLE_POLL_INTERVAL: Duration = Duration::from_millis(250);
const TABLE_POLL_LIMIT: u32 = 240;

/// A data store bound to one table and prefix.
pub struct DataStore<P> {
    client: Client<P>,
}

/// One kind of an Init, validated: its namespace and items with their JSON to write.
struct KindPlan {
    kind: String,
    namespace: String,
    items: Vec<(String, u64, String)>,
}

impl<P: Platform> DataStore<P> {
    pub fn new(config: Config, platform: P) -> Self {
        DataStore {
            client: Client::new(config, platform),
        }
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
        match response::get_item(&output)? {
            None => Ok(None),
            Some(raw) => Ok(Some(response::stored_item(&namespace, raw)?.1)),
        }
    }

    /// Every item of a kind, tombstones included, keyed by the `key` attribute.
    pub fn get_all(&self, kind: &str) -> Result<Vec<KeyedItem>, StoreError> {
        validate_kind(kind)?;
        let namespace = self.namespace(kind);
        let mut items = Vec::new();
        self.query_all(&namespace, false, |raw| {
            let (key, item) = response::stored_item(&namespace, raw)?;
            items.push(KeyedItem { key, item });
            Ok(())
        })?;
        Ok(items)
    }

    /// Writes the item unless the table holds an equal or newer version.
    pub fn upsert(&self, kind: &str, key: &str, item: &Item) -> Result<UpsertOutcome, StoreError> {
        validate_kind(kind)?;
        validate_key(key)?;
        let json = item_json(key, item)?;
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
            Ok(_) => Ok(UpsertOutcome::Applied),
            Err(e) if e.service_code() == Some("ConditionalCheckFailedException") => {
                Ok(UpsertOutcome::NotNewer)
            }
            Err(e) => Err(e),
        }
    }

    /// Replaces all data of the given kinds; see the WIT documentation of `init`.
    pub fn init(&self, data: &[Collection]) -> Result<InitReport, StoreError> {
        let plans = self.plan_init(data)?;
        let mut report = InitReport::default();
        let mut stale: Vec<(String, BTreeSet<String>)> = Vec::new();
        for plan in &plans {
            let mut existing = BTreeSet::new();
            self.query_all(&plan.namespace, true, |raw| {
                existing.insert(row_key(&plan.namespace, &raw)?);
                Ok(())
            })?;
            stale.push((plan.namespace.clone(), existing));
        }
        for (plan, (_, existing)) in plans.iter().zip(stale.iter_mut()) {
            let mut puts = Vec::with_capacity(plan.items.len());
            for (key, version, json) in &plan.items {
                if schema::fits(&plan.namespace, key, *version, json) {
                    puts.push(request::put_request(request::item(
                        &plan.namespace,
                        key,
                        *version,
                        json,
                    )));
                    existing.remove(key);
                } else {
                    self.client
                        .platform()
                        .log_error(&schema::too_large_message(&plan.namespace, key));
                    report.dropped.push(ItemRef {
                        kind: plan.kind.clone(),
                        key: key.clone(),
                    });
                }
            }
            report.written += puts.len() as u32;
            self.write_batches(puts)?;
        }
        let deletes: Vec<Value> = stale
            .iter()
            .flat_map(|(namespace, keys)| {
                keys.iter()
                    .map(|key| request::delete_request(namespace, key))
            })
            .collect();
        report.deleted = deletes.len() as u32;
        self.write_batches(deletes)?;
        let marker = self.namespace(INITED_BASE);
        self.write_batches(vec![request::put_request(request::key(&marker, &marker))])?;
        Ok(report)
    }

    /// Whether the `$inited` marker exists.
    pub fn is_initialized(&self) -> Result<bool, StoreError> {
        let marker = self.namespace(INITED_BASE);
        let body = request::get_item(&self.config().table, &marker, &marker);
        let output = self.client.call(Operation::GetItem, encode(&body))?;
        Ok(response::get_item(&output)?.is_some())
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

    /// Validates an Init's data and prepares the JSON to write, before any request.
    fn plan_init(&self, data: &[Collection]) -> Result<Vec<KindPlan>, StoreError> {
        let mut plans: Vec<KindPlan> = Vec::with_capacity(data.len());
        for collection in data {
            validate_kind(&collection.kind)?;
            if plans.iter().any(|p| p.kind == collection.kind) {
                return Err(StoreError::InvalidInput(format!(
                    "kind {:?} is given twice",
                    collection.kind
                )));
            }
            // A key given twice keeps its first position and its last value.
            let mut position: HashMap<&str, usize> = HashMap::with_capacity(collection.items.len());
            let mut items: Vec<(String, u64, String)> = Vec::with_capacity(collection.items.len());
            for KeyedItem { key, item } in &collection.items {
                validate_key(key)?;
                let json = item_json(key, item)?;
                match position.get(key.as_str()) {
                    Some(&at) => items[at] = (key.clone(), item.version, json),
                    None => {
                        position.insert(key, items.len());
                        items.push((key.clone(), item.version, json));
                    }
                }
            }
            plans.push(KindPlan {
                kind: collection.kind.clone(),
                namespace: self.namespace(&collection.kind),
                items,
            });
        }
        Ok(plans)
    }

    /// Reads every page of a consistent Query of a namespace.
    fn query_all(
        &self,
        namespace: &str,
        keys_only: bool,
        mut each: impl FnMut(RawItem) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut start: Option<Value> = None;
        loop {
            let body = request::query(&self.config().table, namespace, keys_only, start.as_ref());
            let page = response::query(&self.client.call(Operation::Query, encode(&body))?)?;
            for raw in page.items {
                each(raw)?;
            }
            match page.last_evaluated_key {
                None => return Ok(()),
                Some(next) if start.as_ref() == Some(&next) => {
                    return Err(StoreError::malformed(
                        "Query returned the same LastEvaluatedKey twice",
                    ))
                }
                next => start = next,
            }
        }
    }

    /// Writes the requests with BatchWriteItem in chunks of 25, up to
    /// `init_concurrency` chunks in flight, and re-sends unprocessed items with
    /// backoff until none remain. Returns when every request was written.
    fn write_batches(&self, requests: Vec<Value>) -> Result<(), StoreError> {
        let table = &self.config().table;
        let policy = self.config().retry;
        let mut pending = requests;
        let mut attempt = 1;
        while !pending.is_empty() {
            let mut unprocessed = Vec::new();
            let mut chunks = pending.chunks(BATCH_WRITE_LIMIT).peekable();
            while chunks.peek().is_some() {
                let bodies: Vec<Vec<u8>> = chunks
                    .by_ref()
                    .take(self.config().init_concurrency)
                    .map(|chunk| encode(&request::batch_write(table, chunk.to_vec())))
                    .collect();
                for result in self.client.call_all(Operation::BatchWriteItem, bodies) {
                    unprocessed.extend(response::unprocessed_items(&result?, table)?);
                }
            }
            if unprocessed.is_empty() {
                return Ok(());
            }
            if attempt >= policy.max_attempts {
                return Err(StoreError::Service(ServiceError {
                    code: "UnprocessedItems".into(),
                    message: format!(
                        "BatchWriteItem left {} write request(s) unprocessed after {attempt} attempts",
                        unprocessed.len()
                    ),
                    status: 200,
                    request_id: None,
                    attempts: attempt,
                }));
            }
            attempt += 1;
            self.client.backoff(attempt);
            pending = unprocessed;
        }
        Ok(())
    }
}

/// The `key` attribute of a row returned by Init's key scan.
fn row_key(namespace: &str, raw: &RawItem) -> Result<String, StoreError> {
    response::string_attr(raw, ATTR_KEY)
        .map(str::to_string)
        .ok_or_else(|| {
            StoreError::malformed(format!(
                "an item in {namespace:?} has no string key attribute"
            ))
        })
}

fn validate_kind(kind: &str) -> Result<(), StoreError> {
    if kind.is_empty() {
        return Err(StoreError::InvalidInput("kind must not be empty".into()));
    }
    if RESERVED_KINDS.contains(&kind) {
        return Err(StoreError::InvalidInput(format!(
            "{kind:?} is reserved and cannot be used as a kind"
        )));
    }
    Ok(())
}

fn validate_key(key: &str) -> Result<(), StoreError> {
    if key.is_empty() {
        return Err(StoreError::InvalidInput(
            "item key must not be empty".into(),
        ));
    }
    Ok(())
}

/// The JSON to store for an item: a tombstone for a deleted item, otherwise the
/// item's JSON after checking that it is an object whose `key` and `version`
/// match the arguments.
fn item_json(key: &str, item: &Item) -> Result<String, StoreError> {
    if item.deleted {
        return Ok(schema::tombstone_json(key, item.version));
    }
    let invalid = |why: String| Err(StoreError::InvalidInput(format!("item {key:?}: {why}")));
    let parsed: Value = match serde_json::from_str(&item.json) {
        Ok(v) => v,
        Err(e) => return invalid(format!("not valid JSON: {e}")),
    };
    let Some(object) = parsed.as_object() else {
        return invalid("JSON is not an object".into());
    };
    match object.get("key") {
        Some(Value::String(k)) if k == key => {}
        Some(Value::String(k)) => return invalid(format!("its \"key\" is {k:?}, not {key:?}")),
        _ => return invalid("JSON has no string \"key\"".into()),
    }
    match object.get("version").and_then(Value::as_u64) {
        Some(v) if v == item.version => {}
        Some(v) => return invalid(format!("its \"version\" is {v}, not {}", item.version)),
        None => return invalid("JSON has no non-negative integer \"version\"".into()),
    }
    Ok(item.json.clone())
}
