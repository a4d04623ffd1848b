//! LaunchDarkly's Rust server SDK on the component, through
//! `ld_dynamodb_host::launchdarkly::PersistentStoreFactory`, beside
//! LaunchDarkly's Python SDK and its official DynamoDB store on the same tables.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use launchdarkly_server_sdk::{
    AttributeValue, Client, ConfigBuilder, Context, ContextBuilder, Flag,
    NullEventProcessorBuilder, PersistentDataStoreBuilder, Segment, TestData,
};
use serde_json::{json, Value};

use ld_dynamodb_host::launchdarkly::PersistentStoreFactory;
use ld_dynamodb_host::DataStore;
use ld_dynamodb_tests::proxy::{Action, Proxy};
use ld_dynamodb_tests::{collection, runtime, unique_table, Backend};

const COUNTRIES: [&str; 4] = ["de", "us", "jp", "fr"];

/// Thirty flags mixing targets, rules (attribute, segmentMatch, negated and
/// numeric clauses, percentage rollouts), prerequisites, off flags with and
/// without an off variation, and four value types; a deleted flag; and the
/// segment `beta` (included, excluded, a rule).
fn dataset() -> Value {
    let mut features = serde_json::Map::new();
    for i in 0..30u64 {
        let key = format!("flag-{i:02}");
        let variations = match i % 4 {
            0 => json!([true, false]),
            1 => json!(["red", "green", "blue"]),
            2 => json!([1, 2.5, 10]),
            _ => json!([{ "a": 1 }, { "b": [1, 2] }]),
        };
        let n = variations.as_array().unwrap().len() as u64;
        let clause = |attribute: &str, op: &str, values: Value, negate: bool| json!({ "attribute": attribute, "op": op, "values": values, "negate": negate });
        let split = |first: u64| {
            json!({ "variations": [
                { "variation": 0, "weight": first },
                { "variation": 1, "weight": 100_000 - first },
            ] })
        };
        let rules = match i % 5 {
            0 => {
                json!([{ "id": "country", "clauses": [clause("country", "in", json!(["de", "fr"]), false)], "variation": 2 % n, "trackEvents": false }])
            }
            1 => {
                json!([{ "id": "beta", "clauses": [clause("segmentMatch", "segmentMatch", json!(["beta"]), false)], "variation": 1, "trackEvents": false }])
            }
            2 => {
                json!([{ "id": "age", "clauses": [clause("age", "greaterThan", json!([30]), false)], "rollout": split(50_000), "trackEvents": false }])
            }
            3 => {
                json!([{ "id": "not-1", "clauses": [clause("key", "startsWith", json!(["user-1"]), true)], "variation": 1, "trackEvents": false }])
            }
            _ => json!([]),
        };
        let targets = if i % 3 == 0 {
            json!([{ "values": [format!("user-{}", i % 10)], "variation": 1 }])
        } else {
            json!([])
        };
        let prerequisites = if i % 6 == 5 {
            json!([{ "key": format!("flag-{:02}", i - 1), "variation": 0 }])
        } else {
            json!([])
        };
        let fallthrough = if i % 2 == 0 {
            json!({ "variation": 0 })
        } else {
            json!({ "rollout": split(30_000) })
        };
        let off_variation = if i % 8 == 7 {
            Value::Null
        } else {
            json!(n - 1)
        };
        features.insert(
            key.clone(),
            json!({
                "key": key, "version": i + 1, "on": i % 7 != 3,
                "targets": targets, "rules": rules, "prerequisites": prerequisites,
                "fallthrough": fallthrough, "offVariation": off_variation,
                "variations": variations, "salt": format!("salt-{i}"),
                "trackEvents": false, "trackEventsFallthrough": false,
                "debugEventsUntilDate": null, "clientSide": false, "deleted": false,
            }),
        );
    }
    features.insert(
        "deleted-flag".into(),
        json!({ "key": "deleted-flag", "version": 9, "deleted": true }),
    );
    json!({
        "features": features,
        "segments": { "beta": {
            "key": "beta", "version": 3, "included": ["user-1", "user-4"], "excluded": ["user-2"],
            "rules": [{ "id": "jp", "clauses": [{ "attribute": "country", "op": "in", "values": ["jp"], "negate": false }] }],
            "salt": "beta-salt", "deleted": false,
        } },
    })
}

/// Ten contexts: nine users with a country and an age, and one organization.
fn contexts() -> Vec<Value> {
    (0..10)
        .map(|i| {
            json!({
                "key": if i == 9 { "org-9".to_string() } else { format!("user-{i}") },
                "kind": if i == 9 { "org" } else { "user" },
                "attributes": { "country": COUNTRIES[i % 4], "age": 20 + 3 * i },
            })
        })
        .collect()
}

fn sdk_context(spec: &Value) -> Context {
    let mut builder = ContextBuilder::new(spec["key"].as_str().unwrap());
    builder.kind(spec["kind"].as_str().unwrap());
    for (name, value) in spec["attributes"].as_object().unwrap() {
        let value = match value {
            Value::String(s) => AttributeValue::String(s.clone()),
            Value::Number(n) => AttributeValue::Number(n.as_f64().unwrap()),
            other => panic!("unexpected attribute {other}"),
        };
        builder.set_value(name, value);
    }
    builder.build().unwrap()
}

/// Numbers compared as numbers (the SDKs write 1 and 1.0 differently).
fn normalized(value: Value) -> Value {
    match value {
        Value::Number(n) => json!(n.as_f64().unwrap()),
        Value::Array(a) => Value::Array(a.into_iter().map(normalized).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, normalized(v))).collect()),
        other => other,
    }
}

async fn store(backend: &Backend, table: &str) -> DataStore {
    backend
        .data_store(table)
        .build(runtime().clone())
        .await
        .expect("opens")
}

/// A new table on dynalite, and a store on it.
async fn fresh_table(label: &str) -> (Backend, String, DataStore) {
    let backend = Backend::dynalite();
    let table = unique_table(label);
    let admin = store(&backend, &table).await;
    admin.create_table().await.unwrap();
    (backend, table, admin)
}

/// A started SDK client on `store` with the given cache setting.
pub(crate) fn sdk_client(
    store: DataStore,
    cache: Option<Duration>,
    data: Option<&TestData>,
) -> Client {
    let mut persistent =
        PersistentDataStoreBuilder::new(Arc::new(PersistentStoreFactory::new(store)));
    match cache {
        Some(ttl) => persistent.cache_time(ttl),
        None => persistent.no_caching(),
    };
    let mut config = ConfigBuilder::new("sdk-key-for-tests")
        .data_store(&persistent)
        .event_processor(&NullEventProcessorBuilder::new());
    config = match data {
        Some(test_data) => config.data_source(test_data),
        None => config.daemon_mode(true),
    };
    let client = Client::build(config.build().unwrap()).unwrap();
    client.start_with_default_executor();
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evaluations_equal_the_python_sdk_on_a_table_the_python_store_initialized() {
    let (backend, table, _) = fresh_table("parity").await;
    let data = dataset();
    backend.ld_python(&table, Some("app"), json!([["init", data]]));

    let mut flags: Vec<String> = data["features"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    flags.push("missing-flag".into());
    let contexts = contexts();
    let python = backend.ld_python(&table, Some("app"), json!([["evaluate", flags, contexts]]));

    let ours = backend
        .data_store(&table)
        .prefix("app")
        .build(runtime().clone())
        .await
        .unwrap();
    let client = sdk_client(ours, None, None);
    let mut rust = BTreeMap::new();
    for flag in &flags {
        let by_context: BTreeMap<String, Value> = contexts
            .iter()
            .map(|c| {
                let value = client.json_variation(&sdk_context(c), flag, Value::Null);
                (c["key"].as_str().unwrap().to_string(), value)
            })
            .collect();
        rust.insert(flag.clone(), by_context);
    }
    client.close();
    let rust = normalized(serde_json::to_value(&rust).unwrap());
    let python = normalized(python[0].clone());
    assert_eq!(rust, python);

    // The data exercises what it claims: values vary, the deleted and the
    // missing flag give the default, an off flag gives its off variation,
    // the segment rule matches its members.
    assert_eq!(rust["deleted-flag"]["user-0"], Value::Null);
    assert_eq!(rust["missing-flag"]["user-0"], Value::Null);
    assert_eq!(rust["flag-03"]["user-5"], json!({ "b": [1.0, 2.0] }));
    assert_eq!(rust["flag-01"]["user-1"], json!("green"));
    let distinct: std::collections::BTreeSet<String> = rust
        .as_object()
        .unwrap()
        .values()
        .flat_map(|by| by.as_object().unwrap().values().map(Value::to_string))
        .collect();
    assert!(distinct.len() >= 8, "{distinct:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_from_test_data_are_read_by_the_python_store() {
    let (backend, table, _) = fresh_table("writes").await;
    let data = dataset();
    let test_data = TestData::new();
    let live = data["features"]
        .as_object()
        .unwrap()
        .values()
        // Without rollouts: the Rust SDK serializes weights as floats
        // (30000.0), which the Python SDK refuses to read.
        .filter(|f| f["deleted"] == json!(false) && !f.to_string().contains("rollout"));
    for flag in live.take(6) {
        test_data.use_preconfigured_flag(serde_json::from_value::<Flag>(flag.clone()).unwrap());
    }
    test_data.use_preconfigured_segment(
        serde_json::from_value::<Segment>(data["segments"]["beta"].clone()).unwrap(),
    );
    let client = sdk_client(
        store(&backend, &table).await,
        Some(Duration::from_secs(30)),
        Some(&test_data),
    );
    assert_eq!(
        client
            .wait_for_initialization(Duration::from_secs(10))
            .await,
        Some(true)
    );

    // Init went through our store: the Python store sees it initialized, with
    // every flag (TestData numbers versions from 1) and the segment.
    let read = backend.ld_python(
        &table,
        None,
        json!([
            ["initialized"],
            ["all", "features"],
            ["get", "segments", "beta"]
        ]),
    );
    assert_eq!(read[0], json!(true));
    let python_flags = read[1].as_object().unwrap();
    assert_eq!(python_flags.len(), 6);
    for (key, flag) in python_flags {
        assert_eq!(flag["version"], json!(1), "{key}");
        assert_eq!(
            normalized(flag["variations"].clone()),
            normalized(data["features"][key]["variations"].clone())
        );
    }
    assert_eq!(read[2]["included"], json!(["user-1", "user-4"]));

    // An update is an upsert through our store.
    let mut changed = data["features"]["flag-00"].clone();
    changed["on"] = json!(false);
    test_data.use_preconfigured_flag(serde_json::from_value::<Flag>(changed).unwrap());
    let read = backend.ld_python(&table, None, json!([["get", "features", "flag-00"]]));
    assert_eq!(read[0]["version"], json!(2));
    assert_eq!(read[0]["on"], json!(false));
    client.close();
}

/// GetItem requests for one flag that reached the proxy.
fn reads_of(proxy: &Proxy, key: &str) -> usize {
    proxy
        .exchanges()
        .iter()
        .filter(|e| e.request.op == "GetItem" && e.request.json()["Key"]["key"]["S"] == key)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_serves_items_for_its_ttl_and_no_cache_reads_every_time() {
    let (backend, table, admin) = fresh_table("cache").await;
    let flag = |version: u64, serve: u64| {
        let json = json!({
            "key": "cached", "version": version, "on": true, "targets": [], "rules": [],
            "prerequisites": [], "fallthrough": { "variation": serve }, "offVariation": 0,
            "variations": ["one", "two", "three"], "salt": "s", "deleted": false,
        });
        ld_dynamodb_host::data::keyed_item(&json).unwrap()
    };
    admin
        .init(&[collection("features", vec![flag(1, 0)])])
        .await
        .unwrap();
    let proxy = Proxy::start(&backend.endpoint, |_| Action::Forward).await;
    let through_proxy = || {
        backend
            .data_store(&table)
            .endpoint(&proxy.endpoint)
            .build(runtime().clone())
    };
    // Long enough for the checks below to run within it on a loaded machine.
    let ttl = Duration::from_secs(5);
    let cached = sdk_client(through_proxy().await.unwrap(), Some(ttl), None);
    let uncached = sdk_client(through_proxy().await.unwrap(), None, None);
    let user = ContextBuilder::new("u").build().unwrap();
    let value = |client: &Client| client.str_variation(&user, "cached", "default".into());

    assert_eq!(value(&cached), "one");
    let cached_at = std::time::Instant::now();
    assert_eq!(value(&uncached), "one");
    assert_eq!(reads_of(&proxy, "cached"), 2);

    // A write behind the SDKs' back.
    let newer = flag(2, 1);
    admin
        .upsert("features", "cached", &newer.item)
        .await
        .unwrap();
    for _ in 0..3 {
        assert_eq!(value(&uncached), "two", "no cache: every call reads");
        assert_eq!(
            value(&cached),
            "one",
            "within the TTL the cached item is served"
        );
    }
    assert!(
        cached_at.elapsed() < ttl,
        "the checks above ran within the TTL"
    );
    assert_eq!(reads_of(&proxy, "cached"), 2 + 3);

    tokio::time::sleep(ttl + Duration::from_millis(300)).await;
    assert_eq!(
        value(&cached),
        "two",
        "after the TTL the item is read again"
    );
    assert_eq!(reads_of(&proxy, "cached"), 2 + 3 + 1);
    cached.close();
    uncached.close();
}

#[test]
fn the_sdk_differences_docs_rust_md_names() {
    let data = dataset();
    // flag-00 has a rule; without `trackEvents` the Rust SDK refuses it.
    let mut flag = data["features"]["flag-00"].clone();
    flag["rules"][0]
        .as_object_mut()
        .unwrap()
        .remove("trackEvents");
    assert!(serde_json::from_value::<Flag>(flag).is_err());
    // flag-01 falls through to a rollout; the SDK writes its weights as floats.
    let flag: Flag = serde_json::from_value(data["features"]["flag-01"].clone()).unwrap();
    let written = serde_json::to_string(&flag).unwrap();
    assert!(written.contains("\"weight\":30000.0"), "{written}");
}
