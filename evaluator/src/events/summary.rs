//! The summary event: per flag, a counter per variation and version served,
//! the default and the context kinds, as LaunchDarkly's server SDKs count
//! evaluations between two flushes (js-sdk-common's `EventSummarizer`).

use std::collections::HashMap;

use serde_json::{json, Map, Value};

/// One counter: evaluations of a flag that served the same variation of
/// the same version.
#[derive(Debug, Clone, PartialEq)]
struct Counter {
    variation: Option<usize>,
    /// `None`: the flag was not found.
    version: Option<u64>,
    /// The value first counted.
    value: Option<Value>,
    count: u64,
}

/// One flag's counters, in the order first counted.
#[derive(Debug, Clone, PartialEq)]
struct FlagCounters {
    key: String,
    /// The default of the first evaluation counted.
    default: Value,
    /// The context kinds seen, in the order first seen.
    kinds: Vec<String>,
    counters: Vec<Counter>,
}

/// One evaluation to count.
#[derive(Debug, Clone, Copy)]
pub struct Counted<'a> {
    /// The flag's key.
    pub key: &'a str,
    /// The variation served; `None` for the default.
    pub variation: Option<usize>,
    /// The flag's version; `None` for an unknown flag.
    pub version: Option<u64>,
    /// The value served, when there is one to count.
    pub value: Option<&'a Value>,
    /// The caller's default.
    pub default: &'a Value,
    /// The context's kinds.
    pub kinds: &'a [&'a str],
    /// When it was evaluated, in milliseconds since the Unix epoch.
    pub creation_date: u64,
}

/// The counters since the last summary.
#[derive(Debug, Clone, Default)]
pub struct Summarizer {
    start: u64,
    end: u64,
    flags: Vec<FlagCounters>,
    index: HashMap<String, usize>,
}

impl Summarizer {
    /// Counts one evaluation.
    pub fn count(&mut self, e: Counted<'_>) {
        let at = match self.index.get(e.key) {
            Some(&at) => at,
            None => {
                self.index.insert(e.key.to_string(), self.flags.len());
                self.flags.push(FlagCounters {
                    key: e.key.to_string(),
                    default: e.default.clone(),
                    kinds: Vec::new(),
                    counters: Vec::new(),
                });
                self.flags.len() - 1
            }
        };
        let flag = &mut self.flags[at];
        for kind in e.kinds {
            if !flag.kinds.iter().any(|k| k == kind) {
                flag.kinds.push(kind.to_string());
            }
        }
        match flag
            .counters
            .iter_mut()
            .find(|c| c.variation == e.variation && c.version == e.version)
        {
            Some(counter) => counter.count += 1,
            None => flag.counters.push(Counter {
                variation: e.variation,
                version: e.version,
                value: e.value.cloned(),
                count: 1,
            }),
        }
        if self.start == 0 || e.creation_date < self.start {
            self.start = e.creation_date;
        }
        self.end = self.end.max(e.creation_date);
    }

    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.flags.is_empty()
    }

    /// The summary event of what was counted (`None` when nothing was),
    /// and the counters cleared.
    pub fn take(&mut self) -> Option<Value> {
        if self.is_empty() {
            return None;
        }
        let taken = std::mem::take(self);
        let mut features = Map::new();
        for flag in taken.flags {
            let counters: Vec<Value> = flag.counters.into_iter().map(counter_json).collect();
            features.insert(
                flag.key,
                json!({"default": flag.default, "counters": counters, "contextKinds": flag.kinds}),
            );
        }
        Some(json!({
            "kind": "summary",
            "startDate": taken.start,
            "endDate": taken.end,
            "features": features,
        }))
    }
}

fn counter_json(c: Counter) -> Value {
    let mut out = Map::new();
    if let Some(value) = c.value {
        out.insert("value".into(), value);
    }
    out.insert("count".into(), Value::from(c.count));
    if let Some(variation) = c.variation {
        out.insert("variation".into(), Value::from(variation));
    }
    match c.version {
        Some(version) => out.insert("version".into(), Value::from(version)),
        None => out.insert("unknown".into(), Value::Bool(true)),
    };
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counted<'a>(
        key: &'a str,
        variation: Option<usize>,
        version: Option<u64>,
        value: &'a Value,
        default: &'a Value,
        kinds: &'a [&'a str],
        at: u64,
    ) -> Counted<'a> {
        Counted {
            key,
            variation,
            version,
            value: Some(value),
            default,
            kinds,
            creation_date: at,
        }
    }

    #[test]
    fn counts_per_flag_variation_and_version_with_kinds_and_dates() {
        let mut s = Summarizer::default();
        let (t, f, d) = (json!(true), json!(false), json!("d"));
        s.count(counted("a", Some(0), Some(3), &t, &f, &["user"], 20));
        s.count(counted("a", Some(0), Some(3), &t, &d, &["org"], 10));
        s.count(counted("a", Some(1), Some(3), &f, &f, &["user"], 30));
        s.count(counted("gone", None, None, &d, &d, &["user"], 15));
        let summary = s.take().unwrap();
        assert_eq!(
            summary,
            json!({"kind": "summary", "startDate": 10, "endDate": 30, "features": {
                "a": {"default": false, "contextKinds": ["user", "org"], "counters": [
                    {"value": true, "variation": 0, "version": 3, "count": 2},
                    {"value": false, "variation": 1, "version": 3, "count": 1}]},
                "gone": {"default": "d", "contextKinds": ["user"], "counters": [
                    {"value": "d", "unknown": true, "count": 1}]}}})
        );
        assert!(s.is_empty() && s.take().is_none());
    }
}
