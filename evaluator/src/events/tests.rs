//! The event processor against the server SDKs' rules, event by event.

use serde_json::{json, Value};

use super::*;
use crate::{evaluate_recording, parse_context};

fn data(initialized: bool) -> Data {
    let flag = |key: &str, extra: Value| {
        let mut flag = json!({
            "key": key, "version": 7, "on": true, "salt": "s",
            "variations": ["a", "b", "c"], "offVariation": 1,
            "fallthrough": {"variation": 0},
            "rules": [{"id": "r0", "variation": 2, "trackEvents": false,
                       "clauses": [{"attribute": "email", "op": "endsWith", "values": ["@t.com"], "negate": false}]},
                      {"id": "r1", "variation": 1, "trackEvents": true,
                       "clauses": [{"attribute": "email", "op": "endsWith", "values": ["@r.com"], "negate": false}]}],
        });
        for (k, v) in extra.as_object().unwrap() {
            flag[k] = v.clone();
        }
        (key.to_string(), flag.to_string())
    };
    let flags = vec![
        flag("plain", json!({})),
        flag("tracked", json!({"trackEvents": true})),
        flag(
            "fallthrough-tracked",
            json!({"trackEventsFallthrough": true}),
        ),
        flag(
            "experiment",
            json!({"fallthrough": {"rollout": {"kind": "experiment", "seed": 1,
                "variations": [{"variation": 0, "weight": 100000}, {"variation": 1, "weight": 0}]}}}),
        ),
        flag("debugged", json!({"debugEventsUntilDate": 2_000})),
        flag(
            "unsummarized",
            json!({"excludeFromSummaries": true, "trackEvents": true}),
        ),
        flag(
            "unsampled",
            json!({"samplingRatio": 0, "trackEvents": true}),
        ),
        flag(
            "with-prereq",
            json!({"prerequisites": [{"key": "tracked", "variation": 0}]}),
        ),
    ];
    Data::from_json(initialized, flags, vec![]).0
}

/// Evaluates through the engine and records the evaluation.
fn eval(events: &mut Events, data: &Data, key: &str, context_json: &str, now: u64) -> Evaluation {
    let context = parse_context(context_json).unwrap();
    let prerequisites = Prerequisites::default();
    let evaluation = evaluate_recording(data, key, &context, json!("dflt"), Some(&prerequisites));
    let evaluated = Evaluated {
        flag_key: key,
        default: &json!("dflt"),
        evaluation: &evaluation,
        prerequisites: prerequisites.into_events(),
    };
    events.evaluation(
        data,
        &EventContext::new(&context, context_json),
        evaluated,
        now,
    );
    evaluation
}

fn payload(events: &mut Events) -> Vec<Value> {
    events.take_payload().0.unwrap_or_default()
}

fn kinds(payload: &[Value]) -> Vec<&str> {
    payload
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect()
}

const USER: &str = r#"{"kind":"user","key":"u1","email":"x@t.com","name":"N"}"#;

#[test]
fn an_untracked_flag_gives_an_index_event_and_a_summary_counter_only() {
    let data = data(true);
    let mut events = Events::new(EventSettings::default());
    eval(
        &mut events,
        &data,
        "plain",
        r#"{"kind":"user","key":"u1"}"#,
        1_000,
    );
    eval(
        &mut events,
        &data,
        "plain",
        r#"{"kind":"user","key":"u1"}"#,
        1_005,
    );
    let out = payload(&mut events);
    assert_eq!(kinds(&out), ["index", "summary"]);
    assert_eq!(
        out[0],
        json!({"kind": "index", "creationDate": 1_000, "context": {"kind": "user", "key": "u1"}})
    );
    assert_eq!(
        out[1],
        json!({"kind": "summary", "startDate": 1_000, "endDate": 1_005, "features": {"plain": {
            "default": "dflt", "contextKinds": ["user"],
            "counters": [{"value": "a", "variation": 0, "version": 7, "count": 2}]}}})
    );
    assert!(events.is_empty() && events.take_payload().0.is_none());
}

#[test]
fn tracked_flags_rules_fallthroughs_and_experiments_give_feature_events_with_reasons() {
    let data = data(true);
    let mut events = Events::new(EventSettings::default());
    eval(&mut events, &data, "tracked", USER, 10);
    let out = payload(&mut events);
    assert_eq!(kinds(&out), ["index", "feature", "summary"]);
    assert_eq!(
        out[1],
        json!({"kind": "feature", "creationDate": 10, "key": "tracked", "value": "c",
               "default": "dflt", "variation": 2, "version": 7,
               "reason": {"kind": "RULE_MATCH", "ruleIndex": 0, "ruleId": "r0"},
               "context": {"kind": "user", "key": "u1", "email": "x@t.com", "name": "N"}})
    );
    // A rule with trackEvents.
    let tracked_rule = r#"{"kind":"user","key":"u2","email":"y@r.com"}"#;
    eval(&mut events, &data, "plain", tracked_rule, 11);
    // A rule without: nothing.
    eval(&mut events, &data, "plain", USER, 12);
    // The fallthrough of a flag that tracks it, and not of one that does not.
    eval(
        &mut events,
        &data,
        "fallthrough-tracked",
        r#"{"key":"u3"}"#,
        13,
    );
    eval(&mut events, &data, "plain", r#"{"key":"u3"}"#, 14);
    // An experiment's fallthrough: in the experiment.
    eval(&mut events, &data, "experiment", r#"{"key":"u3"}"#, 15);
    let out = payload(&mut events);
    let features: Vec<(&str, &Value)> = out
        .iter()
        .filter(|e| e["kind"] == "feature")
        .map(|e| (e["key"].as_str().unwrap(), &e["reason"]))
        .collect();
    assert_eq!(
        features,
        [
            (
                "plain",
                &json!({"kind": "RULE_MATCH", "ruleIndex": 1, "ruleId": "r1"})
            ),
            ("fallthrough-tracked", &json!({"kind": "FALLTHROUGH"})),
            (
                "experiment",
                &json!({"kind": "FALLTHROUGH", "inExperiment": true})
            ),
        ]
    );
}

#[test]
fn debug_events_last_until_the_date_and_show_anonymous_contexts_whole() {
    let data = data(true);
    let mut events = Events::new(EventSettings::default());
    let anonymous = r#"{"kind":"user","key":"a1","anonymous":true,"name":"Anon"}"#;
    eval(&mut events, &data, "debugged", anonymous, 1_999);
    eval(&mut events, &data, "debugged", anonymous, 2_000);
    eval(&mut events, &data, "tracked", anonymous, 2_001);
    let out = payload(&mut events);
    assert_eq!(kinds(&out), ["index", "debug", "feature", "summary"]);
    let whole = json!({"kind": "user", "key": "a1", "anonymous": true, "name": "Anon"});
    assert_eq!(out[0]["context"], whole);
    assert_eq!(out[1]["context"], whole);
    assert_eq!(
        out[2]["context"],
        json!({"kind": "user", "key": "a1", "anonymous": true,
               "_meta": {"redactedAttributes": ["name"]}})
    );
}

#[test]
fn contexts_are_indexed_once_per_window_and_capacity() {
    let data = data(true);
    let settings = EventSettings {
        context_keys_capacity: 2,
        context_keys_flush_interval_ms: 100,
        ..EventSettings::default()
    };
    let mut events = Events::new(settings);
    let user = |k: &str| format!(r#"{{"kind":"user","key":"{k}"}}"#);
    for (key, at) in [
        ("a", 0),
        ("a", 50),
        ("b", 60),
        ("a", 70),
        ("c", 80),
        ("b", 90),
    ] {
        eval(&mut events, &data, "plain", &user(key), at);
    }
    // b was the least recently used when c came: forgotten, so seen again.
    let indexed = |out: &[Value]| -> Vec<String> {
        out.iter()
            .filter(|e| e["kind"] == "index")
            .map(|e| e["context"]["key"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(indexed(&payload(&mut events)), ["a", "b", "c", "b"]);
    // A new window forgets everything.
    eval(&mut events, &data, "plain", &user("b"), 99);
    eval(&mut events, &data, "plain", &user("b"), 100);
    assert_eq!(indexed(&payload(&mut events)), ["b"]);
    // The same key of another kind is another context.
    eval(
        &mut events,
        &data,
        "plain",
        r#"{"kind":"org","key":"b"}"#,
        101,
    );
    assert_eq!(indexed(&payload(&mut events)), ["b"]);
}

#[test]
fn prerequisites_are_reported_before_the_flag_with_prereq_of_and_a_null_default() {
    let data = data(true);
    let mut events = Events::new(EventSettings::default());
    let evaluation = eval(&mut events, &data, "with-prereq", r#"{"key":"u9"}"#, 5);
    // tracked served "a" (the fallthrough, variation 0): the prerequisite passes.
    assert_eq!(evaluation.value, json!("a"));
    let out = payload(&mut events);
    assert_eq!(kinds(&out), ["index", "feature", "summary"]);
    assert_eq!(
        out[1],
        json!({"kind": "feature", "creationDate": 5, "key": "tracked", "value": "a",
               "default": null, "variation": 0, "version": 7, "prereqOf": "with-prereq",
               "reason": {"kind": "FALLTHROUGH"},
               "context": {"key": "u9", "kind": "user"}})
    );
    let features = &out[2]["features"];
    assert_eq!(features["tracked"]["default"], Value::Null);
    assert_eq!(features["with-prereq"]["counters"][0]["count"], 1);
}

#[test]
fn unknown_flags_are_counted_as_unknown_and_nothing_is_recorded_without_data() {
    let mut events = Events::new(EventSettings::default());
    eval(&mut events, &data(true), "missing", USER, 3);
    let out = payload(&mut events);
    assert_eq!(kinds(&out), ["index", "summary"]);
    assert_eq!(
        out[1]["features"]["missing"],
        json!({"default": "dflt", "contextKinds": ["user"],
               "counters": [{"value": "dflt", "unknown": true, "count": 1}]})
    );
    eval(&mut events, &data(false), "plain", r#"{"key":"new"}"#, 4);
    assert!(events.is_empty());
}

#[test]
fn excluded_and_unsampled_flags_and_multi_kind_contexts() {
    let data = data(true);
    let mut events = Events::new(EventSettings::default());
    let multi = r#"{"kind":"multi","user":{"key":"u"},"org":{"key":"o","name":"Acme"}}"#;
    eval(&mut events, &data, "unsummarized", multi, 1);
    eval(&mut events, &data, "unsampled", multi, 2);
    let out = payload(&mut events);
    assert_eq!(kinds(&out), ["index", "feature", "summary"]);
    assert_eq!(out[1]["key"], "unsummarized");
    assert_eq!(
        out[0]["context"],
        json!({"kind": "multi", "user": {"key": "u"}, "org": {"key": "o", "name": "Acme"}})
    );
    let summary = &out[2]["features"];
    assert!(summary.get("unsummarized").is_none());
    let mut kinds: Vec<&str> = summary["unsampled"]["contextKinds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    kinds.sort();
    assert_eq!(kinds, ["org", "user"]);
}

#[test]
fn track_and_identify() {
    let mut events = Events::new(EventSettings::new_private(&["name"]));
    let json = USER;
    let context = parse_context(json).unwrap();
    let context = EventContext::new(&context, json);
    events.identify(&context, 1);
    events.track("bought", &context, Some(json!({"sku": 1})), Some(9.5), 2);
    events.track("viewed", &context, None, Some(3.0), 3);
    events.track("nan", &context, None, Some(f64::NAN), 4);
    let out = payload(&mut events);
    // The identify event counts as the context's sighting: no index event.
    assert_eq!(kinds(&out), ["identify", "custom", "custom", "custom"]);
    let redacted = json!({"kind": "user", "key": "u1", "email": "x@t.com",
                          "_meta": {"redactedAttributes": ["name"]}});
    assert_eq!(
        out[0],
        json!({"kind": "identify", "creationDate": 1, "context": redacted})
    );
    assert_eq!(
        out[1],
        json!({"kind": "custom", "creationDate": 2, "key": "bought", "data": {"sku": 1},
               "metricValue": 9.5, "context": redacted})
    );
    assert_eq!(out[2]["metricValue"].to_string(), "3");
    assert!(out[3].get("metricValue").is_none());
    // An anonymous context: whole in its index event, key only in custom events.
    let json = r#"{"kind":"user","key":"a","anonymous":true,"nick":"N"}"#;
    let anonymous = parse_context(json).unwrap();
    let anonymous = EventContext::new(&anonymous, json);
    events.track("t", &anonymous, None, None, 5);
    let out = payload(&mut events);
    assert_eq!(kinds(&out), ["index", "custom"]);
    assert_eq!(out[0]["context"]["nick"], "N");
    assert!(out[1]["context"].get("nick").is_none());
}

#[test]
fn a_full_queue_drops_and_counts_but_the_summary_still_counts() {
    let data = data(true);
    let settings = EventSettings {
        capacity: 2,
        ..EventSettings::default()
    };
    let mut events = Events::new(settings);
    for i in 0..5 {
        eval(
            &mut events,
            &data,
            "tracked",
            &format!(r#"{{"key":"u{i}"}}"#),
            i,
        );
    }
    let (out, dropped) = events.take_payload();
    let out = out.unwrap();
    // 10 events (an index and a feature event each), 2 kept; the summary comes on top.
    assert_eq!((out.len(), dropped), (3, 8));
    assert_eq!(out[2]["features"]["tracked"]["counters"][0]["count"], 5);
    assert_eq!(events.take_payload().1, 0);
}

impl EventSettings {
    fn new_private(names: &[&str]) -> EventSettings {
        EventSettings {
            private_attributes: names.iter().map(|n| n.to_string()).collect(),
            ..EventSettings::default()
        }
    }
}

#[test]
fn a_context_seen_by_all_flags_is_indexed_once_and_counts_nothing() {
    let mut events = Events::new(EventSettings::default());
    let context = parse_context(USER).unwrap();
    let context = EventContext::new(&context, USER);
    events.context_seen(&context, 1);
    events.context_seen(&context, 2);
    let out = payload(&mut events);
    assert_eq!(kinds(&out), ["index"]);
    assert_eq!(out[0]["context"]["key"], "u1");
}

#[test]
fn context_keys_stay_bounded_when_keys_repeat_and_evict_the_least_recently_used() {
    let mut keys = ContextKeys::default();
    for i in 0..10_000u64 {
        keys.first_sight("same", 3, u64::MAX, i);
    }
    assert!(keys.order.len() <= 6 && keys.used.len() == 1);
    // a, b, c fill it; a used again; d evicts b (the least recently used).
    for key in ["a", "b", "c", "a", "d"] {
        keys.first_sight(key, 3, u64::MAX, 1);
    }
    let mut kept: Vec<&str> = keys.used.keys().map(String::as_str).collect();
    kept.sort();
    assert_eq!(kept, ["a", "c", "d"]);
}
