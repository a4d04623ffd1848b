//! Fuzzing context parsing and evaluation natively: any JSON (and any text)
//! as a context, over the parity and pathological data sets, is parsed or
//! refused with an error, evaluated without a panic, and the `matches`
//! pre-pass answers what the engine answers alone. `PROPTEST_CASES` sets the
//! number of contexts (256 by default; BENCHMARKS.md's "Fuzzing" names the
//! long run).

use ld_dynamodb_evaluator::{all_flags_state, evaluate, parse_context, Data, Filter, StateOptions};
use proptest::prelude::*;
use serde_json::Value;

/// Items as `(key, json)`.
type Items = Vec<(String, String)>;

/// A data set of `tests/data/`, as `(flags, segments)`.
fn items(file: &str) -> (Items, Items) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data")
        .join(file);
    let data: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let kind = |name: &str| {
        data[name]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect()
    };
    (kind("flags"), kind("segments"))
}

/// Each data set with the `matches` pre-pass, and without it (the engine
/// alone).
fn data_sets() -> Vec<(Data, Data)> {
    ["parity.json", "pathological.json"]
        .into_iter()
        .map(|file| {
            let (flags, segments) = items(file);
            (
                Data::from_json(true, flags.clone(), segments.clone()).0,
                Data::from_json_without_prepass(true, flags, segments).0,
            )
        })
        .collect()
}

/// Contexts near LaunchDarkly's shapes: kinds, keys, attributes the data
/// sets test (email, groups, name, address), of any JSON type.
fn context() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i32>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "[a-z@.]{0,12}|admin-[a-z]{0,4}|Par[a-z]{0,4}|\\PC{0,8}".prop_map(Value::from),
    ];
    let value = leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::from),
            prop::collection::btree_map("city|street|\\PC{0,4}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    let single = prop::collection::btree_map(
        "kind|key|email|groups|name|address|anonymous|_meta|custom|\\PC{0,6}",
        value,
        0..8,
    )
    .prop_map(|m| Value::Object(m.into_iter().collect()));
    prop_oneof![
        single.clone(),
        prop::collection::btree_map("kind|user|org|multi|\\PC{0,4}", single, 0..4).prop_map(|m| {
            let mut m: serde_json::Map<String, Value> = m.into_iter().collect();
            m.insert("kind".into(), Value::from("multi"));
            Value::Object(m)
        }),
    ]
}

proptest! {
    #[test]
    fn any_context_is_refused_or_evaluated_without_a_panic(
        context in prop_oneof![context().prop_map(|c| c.to_string()), "\\PC{0,40}"],
    ) {
        for (data, engine) in data_sets() {
            let Ok(parsed) = parse_context(&context) else { continue };
            for filter in [Filter::All, Filter::ClientSide, Filter::Mobile] {
                let options = StateOptions { filter, with_reasons: true, details_only_for_tracked_flags: false };
                let state: Value = serde_json::from_str(&all_flags_state(&data, &parsed, options)).unwrap();
                prop_assert_eq!(&state["$valid"], &Value::Bool(true));
                let alone: Value = serde_json::from_str(&all_flags_state(&engine, &parsed, options)).unwrap();
                prop_assert_eq!(&state, &alone);
            }
            for flag in data.flags() {
                let ours = evaluate(&data, &flag.key, &parsed, Value::Null);
                prop_assert_eq!(ours, evaluate(&engine, &flag.key, &parsed, Value::Null));
            }
        }
    }
}
