//! The flags and segments of one snapshot, as LaunchDarkly's evaluation
//! engine reads them (its `Store`).

use std::collections::HashMap;

use launchdarkly_server_sdk_evaluation::{Flag, Segment, Store};
use serde_json::Value;

use crate::contexts::AsContext;
use crate::matches::{Matchers, Prepared};

/// Flags and segments parsed from the store's items, and whether the data is
/// initialized.
#[derive(Debug, Clone, Default)]
pub struct Data {
    /// Whether the store was initialized (its `$inited` marker): when not,
    /// evaluations answer `CLIENT_NOT_READY`.
    pub initialized: bool,
    /// The flags, sorted by key.
    flags: Vec<Flag>,
    /// Where each flag is in `flags`.
    index: HashMap<String, usize>,
    segments: HashMap<String, Segment>,
    /// The `matches` clauses, evaluated before the engine runs.
    pub(crate) matchers: Matchers,
}

impl Data {
    /// Parses the JSON of each live item; `(key, json)` pairs, deleted items
    /// left out by the caller. An item the engine cannot parse is left out
    /// too (its key and why are returned, for the log), as the SDKs skip it.
    /// Fields that LaunchDarkly always writes but other writers may leave out
    /// (a flag's `targets`, `rules`, `prerequisites`, a rule's `trackEvents`)
    /// default to empty or false, as the JavaScript and Python SDKs read them.
    pub fn from_json(
        initialized: bool,
        flags: Vec<(String, String)>,
        segments: Vec<(String, String)>,
    ) -> (Data, Vec<String>) {
        Self::parse(initialized, flags, segments, true)
    }

    /// [`Data::from_json`] with the `matches` clauses left to the engine,
    /// which compiles their patterns at each comparison: the reference the
    /// pre-pass ([`crate::matches`]) is tested against.
    pub fn from_json_without_prepass(
        initialized: bool,
        flags: Vec<(String, String)>,
        segments: Vec<(String, String)>,
    ) -> (Data, Vec<String>) {
        Self::parse(initialized, flags, segments, false)
    }

    /// [`Data::from_json`], with the `matches` clauses compiled once
    /// ([`crate::matches`]) or, when `rewrite` is false, left to the engine.
    fn parse(
        initialized: bool,
        flags: Vec<(String, String)>,
        segments: Vec<(String, String)>,
        rewrite: bool,
    ) -> (Data, Vec<String>) {
        let mut skipped = Vec::new();
        let (flag_keys, mut flags) = json_values(flags, "flag", &mut skipped);
        let (segment_keys, mut segments) = json_values(segments, "segment", &mut skipped);
        flags.iter_mut().for_each(fill_flag_defaults);
        let matchers = if rewrite {
            Matchers::rewrite(&flag_keys, &mut flags, &segment_keys, &mut segments)
        } else {
            Matchers::default()
        };
        let flags: HashMap<String, Flag> = parse(flag_keys, flags, "flag", &mut skipped);
        let segments = parse(segment_keys, segments, "segment", &mut skipped);
        let mut flags: Vec<(String, Flag)> = flags.into_iter().collect();
        flags.sort_by(|a, b| a.0.cmp(&b.0));
        let index = flags
            .iter()
            .enumerate()
            .map(|(i, (key, _))| (key.clone(), i))
            .collect();
        (
            Data {
                initialized,
                flags: flags.into_iter().map(|(_, flag)| flag).collect(),
                index,
                segments,
                matchers,
            },
            skipped,
        )
    }

    /// The context the engine evaluates `flag` (every flag when `None`)
    /// with for `context`: with the results of the `matches` clauses within
    /// its reach ([`Matchers::prepare`], kept for a shared context);
    /// `context` itself when none applies.
    pub fn prepare<'a, C>(&self, flag: Option<&str>, context: &'a C) -> Prepared<'a>
    where
        C: AsContext + ?Sized,
    {
        self.matchers.prepare(flag, context)
    }

    /// The flags, sorted by key.
    pub fn flags(&self) -> impl Iterator<Item = &Flag> {
        self.flags.iter()
    }

    /// How many flags there are.
    pub fn flag_count(&self) -> usize {
        self.flags.len()
    }

    /// One flag.
    pub fn flag(&self, key: &str) -> Option<&Flag> {
        self.index.get(key).map(|&i| &self.flags[i])
    }
}

/// Each item's JSON, parsed; an item that is not JSON is left out and named.
fn json_values(
    items: Vec<(String, String)>,
    what: &str,
    skipped: &mut Vec<String>,
) -> (Vec<String>, Vec<Value>) {
    items
        .into_iter()
        .filter_map(|(key, json)| match serde_json::from_str(&json) {
            Ok(value) => Some((key, value)),
            Err(e) => {
                skipped.push(format!("{what} {key:?} cannot be evaluated: {e}"));
                None
            }
        })
        .unzip()
}

/// Each value as the engine's model; one it cannot parse is left out and named.
fn parse<T: serde::de::DeserializeOwned>(
    keys: Vec<String>,
    values: Vec<Value>,
    what: &str,
    skipped: &mut Vec<String>,
) -> HashMap<String, T> {
    keys.into_iter()
        .zip(values)
        .filter_map(|(key, value)| match serde_json::from_value(value) {
            Ok(item) => Some((key, item)),
            Err(e) => {
                skipped.push(format!("{what} {key:?} cannot be evaluated: {e}"));
                None
            }
        })
        .collect()
}

/// Adds the fields a flag may lack but the engine requires.
fn fill_flag_defaults(flag: &mut Value) {
    let Some(fields) = flag.as_object_mut() else {
        return;
    };
    for list in ["targets", "rules", "prerequisites"] {
        fields
            .entry(list)
            .or_insert_with(|| Value::Array(Vec::new()));
    }
    if let Some(Value::Array(rules)) = fields.get_mut("rules") {
        for rule in rules.iter_mut().filter_map(Value::as_object_mut) {
            rule.entry("trackEvents").or_insert(Value::Bool(false));
        }
    }
}

impl Store for Data {
    fn flag(&self, flag_key: &str) -> Option<Flag> {
        Data::flag(self, flag_key).cloned()
    }

    fn segment(&self, segment_key: &str) -> Option<Segment> {
        self.segments.get(segment_key).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unparseable_items_are_left_out_and_named() {
        let (data, skipped) = Data::from_json(
            true,
            vec![
                ("ok".into(), r#"{"key":"ok","version":1,"on":false,"variations":[true],"offVariation":0,"fallthrough":{"variation":0},"salt":"s"}"#.into()),
                ("bad".into(), r#"{"key":"bad","version":"one"}"#.into()),
            ],
            vec![],
        );
        // "ok" lacks targets, rules and prerequisites: they default to empty.
        assert!(data.flag("ok").is_some() && data.flag("bad").is_none());
        assert_eq!(skipped.len(), 1);
        assert!(skipped[0].contains("flag \"bad\""), "{skipped:?}");
    }

    #[test]
    fn the_legacy_client_side_field_counts_as_the_environment_id_and_mobile_is_on() {
        let (data, _) = Data::from_json(
            true,
            vec![("legacy".into(), r#"{"key":"legacy","version":1,"on":false,"variations":[true],"offVariation":0,"fallthrough":{"variation":0},"salt":"s","clientSide":true}"#.into())],
            vec![],
        );
        let flag = data.flag("legacy").unwrap();
        // LaunchDarkly's rule for flags without `clientSideAvailability`.
        assert!(flag.using_environment_id() && flag.using_mobile_key());
    }
}
