//! The state of every flag for one context, as the server SDKs' `allFlagsState`
//! builds it: the JSON a JS client SDK takes as bootstrap data, and the shape
//! the Relay Proxy's `evalx` endpoints answer with.

use std::cell::RefCell;

use launchdarkly_server_sdk_evaluation::{
    evaluate as evaluate_flag, PrerequisiteEvent, PrerequisiteEventRecorder,
};
use serde::Serialize;

use crate::{value_json, AsContext, Data};

/// Which flags are included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    /// Every flag.
    All,
    /// Available to client-side IDs (`usingEnvironmentId`, or the legacy `clientSide`).
    ClientSide,
    /// Available to mobile keys (`usingMobileKey`).
    Mobile,
}

/// The options of `allFlagsState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateOptions {
    /// Which flags are included.
    pub filter: Filter,
    /// Each flag's evaluation reason in its metadata (`withReasons`).
    pub with_reasons: bool,
    /// The version and reason only for flags with events tracked or debugged
    /// (`detailsOnlyForTrackedFlags`).
    pub details_only_for_tracked_flags: bool,
}

/// Collects the keys of the prerequisites one flag evaluated directly.
struct Prerequisites<'a> {
    of: &'a str,
    keys: RefCell<Vec<String>>,
}

impl PrerequisiteEventRecorder for Prerequisites<'_> {
    fn record(&self, event: PrerequisiteEvent) {
        if event.target_flag_key == self.of {
            self.keys.borrow_mut().push(event.prerequisite_flag.key);
        }
    }
}

/// `{"$flagsState": {flag key: metadata}, "$valid": bool, flag key: value,
/// ...}` as JSON text, written in one pass over the flags in key order;
/// `$valid` is false when the data is not initialized (the flags there are
/// still evaluated, as the SDKs do with a store's last known data).
pub fn all_flags_state<C>(data: &Data, context: &C, options: StateOptions) -> String
where
    C: AsContext + ?Sized,
{
    all_flags_state_within(data, context, options, &mut || true).expect("no time budget")
}

/// [`all_flags_state`] within a time budget: `within` is asked before each
/// flag is evaluated, and `None` is the answer once it says no (the work of
/// one request stays bounded whatever the data holds).
pub fn all_flags_state_within<C>(
    data: &Data,
    context: &C,
    options: StateOptions,
    within: &mut dyn FnMut() -> bool,
) -> Option<String>
where
    C: AsContext + ?Sized,
{
    let context = &data.prepare(None, context);
    let mut values = Vec::with_capacity(64 * data.flag_count());
    let mut metadata = Vec::with_capacity(64 * data.flag_count());
    for flag in data.flags() {
        let included = match options.filter {
            Filter::All => true,
            Filter::ClientSide => flag.using_environment_id(),
            Filter::Mobile => flag.using_mobile_key(),
        };
        if !included {
            continue;
        }
        if !within() {
            return None;
        }
        let prerequisites = Prerequisites {
            of: &flag.key,
            keys: RefCell::default(),
        };
        let detail = evaluate_flag(data, flag, context, Some(&prerequisites));
        let experiment = flag.is_experimentation_enabled(&detail.reason);
        let track_events = flag.track_events || experiment;
        let omit_details = options.details_only_for_tracked_flags
            && !track_events
            && !experiment
            && flag.debug_events_until_date.is_none();

        values.push(b',');
        write_json(&mut values, &flag.key);
        values.push(b':');
        match detail.value {
            Some(value) => write_json(&mut values, &value_json(value)),
            None => values.extend(b"null"),
        }

        if !metadata.is_empty() {
            metadata.push(b',');
        }
        write_json(&mut metadata, &flag.key);
        metadata.extend(b":{");
        let mut fields = Fields(&mut metadata, false);
        if let Some(index) = detail.variation_index {
            fields.field("variation", &index);
        }
        if !omit_details {
            fields.field("version", &flag.version);
        }
        if experiment || (options.with_reasons && !omit_details) {
            fields.field("reason", &detail.reason);
        }
        if track_events {
            fields.field("trackEvents", &true);
        }
        if experiment {
            fields.field("trackReason", &true);
        }
        if let Some(until) = flag.debug_events_until_date {
            fields.field("debugEventsUntilDate", &until);
        }
        let keys = prerequisites.keys.into_inner();
        if !keys.is_empty() {
            fields.field("prerequisites", &keys);
        }
        metadata.push(b'}');
    }
    let mut out = Vec::with_capacity(values.len() + metadata.len() + 40);
    out.extend(b"{\"$flagsState\":{");
    out.extend(metadata);
    out.extend(b"},\"$valid\":");
    out.extend(if data.initialized {
        &b"true"[..]
    } else {
        b"false"
    });
    out.extend(values);
    out.push(b'}');
    Some(String::from_utf8(out).expect("serde_json writes UTF-8"))
}

/// Appends the JSON of `value`.
fn write_json(out: &mut Vec<u8>, value: &(impl Serialize + ?Sized)) {
    serde_json::to_writer(out, value).expect("a Vec takes any JSON")
}

/// The fields of one JSON object being written: the buffer, and whether a
/// field was written (so the next one needs a comma).
struct Fields<'a>(&'a mut Vec<u8>, bool);

impl Fields<'_> {
    fn field(&mut self, name: &str, value: &(impl Serialize + ?Sized)) {
        if self.1 {
            self.0.push(b',');
        }
        self.1 = true;
        write_json(self.0, name);
        self.0.push(b':');
        write_json(self.0, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_context;
    use serde_json::{json, Value};

    fn flag(key: &str, extra: Value) -> (String, String) {
        let mut flag = json!({"key": key, "version": 4, "on": true, "salt": "s",
            "variations": ["a", "b"], "offVariation": 1, "fallthrough": {"variation": 0},
            "trackEvents": false, "targets": [], "rules": [], "prerequisites": [],
            "clientSideAvailability": {"usingEnvironmentId": false, "usingMobileKey": false}});
        for (k, v) in extra.as_object().unwrap() {
            flag[k] = v.clone();
        }
        (key.to_string(), flag.to_string())
    }

    fn state(options: StateOptions) -> Value {
        let (data, _) = Data::from_json(
            true,
            vec![
                flag(
                    "plain",
                    json!({"clientSideAvailability": {"usingEnvironmentId": true, "usingMobileKey": false}}),
                ),
                flag(
                    "mobile",
                    json!({"clientSideAvailability": {"usingEnvironmentId": false, "usingMobileKey": true}}),
                ),
                flag("tracked", json!({"trackEvents": true})),
                flag("experiment", json!({"trackEventsFallthrough": true})),
                flag(
                    "debugged",
                    json!({"debugEventsUntilDate": 1_900_000_000_000u64}),
                ),
                flag(
                    "needs",
                    json!({"prerequisites": [{"key": "plain", "variation": 0}]}),
                ),
            ],
            vec![],
        );
        let context = parse_context(r#"{"key": "u"}"#).unwrap();
        serde_json::from_str(&all_flags_state(&data, &context, options)).unwrap()
    }

    const ALL: StateOptions = StateOptions {
        filter: Filter::All,
        with_reasons: false,
        details_only_for_tracked_flags: false,
    };

    #[test]
    fn the_budget_is_asked_before_each_flag_and_ends_the_answer() {
        let (data, _) = Data::from_json(
            true,
            vec![flag("a", json!({})), flag("b", json!({}))],
            vec![],
        );
        let context = parse_context(r#"{"key": "u"}"#).unwrap();
        let mut asked = 0;
        let allow = |n: usize| {
            move || {
                asked += 1;
                asked <= n
            }
        };
        assert_eq!(
            all_flags_state_within(&data, &context, ALL, &mut allow(1)),
            None
        );
        let whole = all_flags_state_within(&data, &context, ALL, &mut allow(2));
        assert_eq!(
            whole.as_deref(),
            Some(&*all_flags_state(&data, &context, ALL))
        );
    }

    #[test]
    fn values_and_metadata_follow_the_sdks() {
        let s = state(ALL);
        assert_eq!(s["plain"], "a");
        assert_eq!(s["$valid"], true);
        let meta = &s["$flagsState"];
        assert_eq!(meta["plain"], json!({"variation": 0, "version": 4}));
        assert_eq!(
            meta["tracked"],
            json!({"variation": 0, "version": 4, "trackEvents": true})
        );
        // An experiment (fallthrough tracked) always carries its reason.
        assert_eq!(
            meta["experiment"],
            json!({"variation": 0, "version": 4, "trackEvents": true, "trackReason": true,
                   "reason": {"kind": "FALLTHROUGH"}})
        );
        assert_eq!(meta["needs"]["prerequisites"], json!(["plain"]));
        assert_eq!(
            meta["debugged"]["debugEventsUntilDate"],
            1_900_000_000_000u64
        );
    }

    #[test]
    fn filters_reasons_and_tracked_only_details() {
        let client = state(StateOptions {
            filter: Filter::ClientSide,
            ..ALL
        });
        let keys: Vec<&String> = client["$flagsState"].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["plain"]);
        let mobile = state(StateOptions {
            filter: Filter::Mobile,
            ..ALL
        });
        let keys: Vec<&String> = mobile["$flagsState"].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["mobile"]);
        let reasons = state(StateOptions {
            with_reasons: true,
            ..ALL
        });
        assert_eq!(
            reasons["$flagsState"]["plain"]["reason"],
            json!({"kind": "FALLTHROUGH"})
        );
        let tracked = state(StateOptions {
            with_reasons: true,
            details_only_for_tracked_flags: true,
            ..ALL
        });
        let meta = &tracked["$flagsState"];
        assert_eq!(
            meta["plain"],
            json!({"variation": 0}),
            "untracked: no version or reason"
        );
        assert!(meta["tracked"]["version"].is_number() && meta["tracked"]["reason"].is_object());
        assert!(meta["debugged"]["version"].is_number());
    }
}
