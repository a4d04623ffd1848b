//! `matches` clauses with their regexes compiled once per snapshot.
//!
//! LaunchDarkly's evaluation engine compiles a `matches` clause's pattern
//! again for every value it compares, so a context with a long attribute
//! array costs one compilation per element and pattern. The engine takes no
//! precompiled regex, so this module evaluates `matches` clauses itself, with
//! the same `regex` crate and the same rule, and hands the engine the result:
//!
//! - When a snapshot is parsed, every `matches` clause of a flag rule or a
//!   segment rule gets a number `n`; its patterns are compiled, and the clause
//!   becomes `{"contextKind": "ld-dynamodb.matches", "attribute": "m{n}", "op":
//!   "in", "values": [true], "negate": <as before>}`.
//! - The same pass finds, for each flag, the clauses its evaluation can reach
//!   (its rules, its prerequisites and the segments they match, transitively),
//!   so that the work per evaluation does not grow with the snapshot.
//! - Before an evaluation, [`Matchers::prepare`] reads the attribute of each
//!   clause within the flag's reach (every clause for all-flags-state) from
//!   the context as the engine does (the clause's context kind, then the
//!   attribute reference) and, when the value is present and not null, sets
//!   `m{n}` on a context of kind `ld-dynamodb.matches` added to the context: true
//!   when a string value (or a string element of an array) matches one of the
//!   patterns. An absent or null value sets nothing, so the rewritten clause is
//!   false whatever its `negate`, as the engine's is.
//! - Flags with the same clauses within reach share one set of them; for a
//!   shared context (an [`Rc`] someone else holds too, as
//!   [`crate::ContextCache`]'s) the context built for a set is kept (the last
//!   [`KEPT`]), so evaluating the same context again builds nothing.
//!
//! The added kind is seen by nothing but the rewritten clauses, with one
//! exception: a clause on the `kind` attribute tests every kind of the
//! context. A snapshot with such a clause that the added kind's name could
//! pass (`kind startsWith "ld-"`, say) is left as it is (the engine then
//! compiles as before); `kind in ["user"]` and the like change nothing.

use launchdarkly_server_sdk_evaluation::{
    AttributeValue, Context, ContextBuilder, Kind, MultiContextBuilder, Reference,
};
use regex::Regex;
use serde_json::{json, Value};
use std::cell::RefCell;
use std::collections::HashMap;
use std::ops::Deref;
use std::rc::Rc;

use crate::contexts::AsContext;

/// The context kind that carries the results.
pub const RESULTS_KIND: &str = "ld-dynamodb.matches";

/// The `matches` clauses that read one attribute of one kind: for each, its
/// number and its patterns (`None` for a value that is not a string or not a
/// valid regex, which matches nothing, as in the engine).
#[derive(Debug, Clone)]
struct Matcher {
    kind: Kind,
    attribute: Reference,
    clauses: Vec<(usize, Vec<Option<Regex>>)>,
}

/// The `matches` clauses of one snapshot, by the attribute they read, and
/// which of them each flag can reach.
#[derive(Debug, Clone, Default)]
pub struct Matchers {
    matchers: Vec<Matcher>,
    /// For each flag (by key) that can reach `matches` clauses, through its
    /// rules, its prerequisites and the segments they match, transitively:
    /// those clauses as (matcher, position in its `clauses`), sorted, so that
    /// the clauses of one matcher are together.
    reach: Reach,
    /// The contexts last built for shared contexts, the most recent first.
    built: RefCell<Vec<Built>>,
}

/// How many built contexts a snapshot keeps.
pub const KEPT: usize = 16;

/// The clauses within reach of each flag that has some.
#[derive(Debug, Clone, Default)]
struct Reach {
    /// Where each flag's clauses are in `clauses` (flags with the same
    /// clauses share one entry).
    by_flag: HashMap<String, usize>,
    clauses: Vec<Box<[(usize, usize)]>>,
    /// Every clause, for all-flags-state.
    all: Box<[(usize, usize)]>,
}

/// The set of clauses `all` stands for in a [`Built`].
const ALL: usize = usize::MAX;

impl Reach {
    /// The clauses within reach of this flag (none when it has none).
    #[cfg(test)]
    fn of(&self, flag: &str) -> Option<&[(usize, usize)]> {
        self.by_flag.get(flag).map(|&i| &self.clauses[i][..])
    }
}

/// The context built for a shared context and one set of clauses (an entry
/// of `Reach::clauses`, or [`ALL`]); `None` when no result applied.
#[derive(Debug, Clone)]
struct Built {
    given: Rc<Context>,
    set: usize,
    with_results: Option<Rc<Context>>,
}

/// The context an evaluation runs with: the one given, or one built with
/// the results of the `matches` clauses.
#[derive(Debug, Clone)]
pub enum Prepared<'a> {
    /// The context given (no result applies).
    Given(&'a Context),
    /// The context given with the results, in a context of kind [`RESULTS_KIND`].
    Built(Rc<Context>),
}

impl Deref for Prepared<'_> {
    type Target = Context;

    fn deref(&self) -> &Context {
        match self {
            Prepared::Given(context) => context,
            Prepared::Built(context) => context,
        }
    }
}

/// What one flag or segment JSON holds for the reach of its flag: its own
/// `matches` clauses, the flags it requires and the segments it matches.
#[derive(Debug, Default)]
struct Links {
    clauses: Vec<(usize, usize)>,
    flags: Vec<String>,
    segments: Vec<String>,
}

impl Links {
    /// The prerequisites and `segmentMatch` values of a flag or segment JSON.
    fn of(item: &Value) -> Links {
        let keys = |values: Option<&Value>| -> Vec<String> {
            values
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        };
        let flags = item
            .get("prerequisites")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| p.get("key")?.as_str().map(str::to_owned))
            .collect();
        let segments = item
            .get("rules")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|rule| rule.get("clauses")?.as_array())
            .flatten()
            .filter(|c| c.get("op").and_then(Value::as_str) == Some("segmentMatch"))
            .flat_map(|c| keys(c.get("values")))
            .collect();
        Links {
            clauses: Vec::new(),
            flags,
            segments,
        }
    }
}

/// The clauses of every rule of a flag or segment JSON.
fn clauses(item: &mut Value) -> impl Iterator<Item = &mut Value> {
    item.get_mut("rules")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(|rule| rule.get_mut("clauses").and_then(Value::as_array_mut))
        .flatten()
}

/// Whether a clause tests the `kind` attribute in a way the added kind
/// could change: the engine matches such a clause when any kind of the
/// context passes its operator, so one that [`RESULTS_KIND`] passes (or whose
/// operator is not a string comparison, to stay on the safe side) would see
/// the added kind.
fn sees_results_kind(clause: &Value) -> bool {
    if !matches!(
        clause.get("attribute").and_then(Value::as_str),
        Some("kind" | "/kind")
    ) {
        return false;
    }
    let values = clause.get("values").and_then(Value::as_array);
    let passes = |test: &dyn Fn(&str) -> bool| {
        values
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .any(test)
    };
    match clause.get("op").and_then(Value::as_str) {
        Some("in") => passes(&|v| v == RESULTS_KIND),
        Some("startsWith") => passes(&|v| RESULTS_KIND.starts_with(v)),
        Some("endsWith") => passes(&|v| RESULTS_KIND.ends_with(v)),
        Some("contains") => passes(&|v| RESULTS_KIND.contains(v)),
        Some("matches") => passes(&|v| Regex::new(v).is_ok_and(|re| re.is_match(RESULTS_KIND))),
        _ => true,
    }
}

/// The engine's reference for a clause: an attribute reference with a
/// `contextKind`, else a plain attribute name of the user kind (a name that
/// begins with `/` escaped as a one-part reference).
fn reference(clause: &Value) -> Option<(Kind, Reference)> {
    let attribute = clause.get("attribute")?.as_str()?;
    match clause.get("contextKind") {
        Some(kind) => {
            let kind: Kind = serde_json::from_value(kind.clone()).ok()?;
            Some((kind, Reference::new(attribute)))
        }
        None if attribute.starts_with('/') => Some((
            Kind::default(),
            Reference::new(format!(
                "/{}",
                attribute.replace('~', "~0").replace('/', "~1")
            )),
        )),
        None => Some((Kind::default(), Reference::new(attribute))),
    }
}

impl Matchers {
    /// Rewrites the `matches` clauses of these flags and segments (JSON
    /// values, before the engine parses them, beside their keys) as the
    /// module says, unless one of them has a clause on `kind`, and finds the
    /// clauses each flag can reach.
    pub fn rewrite(
        flag_keys: &[String],
        flags: &mut [Value],
        segment_keys: &[String],
        segments: &mut [Value],
    ) -> Matchers {
        let kind_clause = flags
            .iter_mut()
            .chain(segments.iter_mut())
            .any(|item| clauses(item).any(|c| sees_results_kind(c)));
        if kind_clause {
            return Matchers::default();
        }
        let mut matchers: Vec<Matcher> = Vec::new();
        let mut links: Vec<Links> = Vec::with_capacity(flags.len() + segments.len());
        let mut count = 0;
        for item in flags.iter_mut().chain(segments.iter_mut()) {
            let mut own = Links::of(item);
            for clause in clauses(item) {
                let well_formed = clause.get("op").and_then(Value::as_str) == Some("matches")
                    && clause.get("values").is_some_and(Value::is_array)
                    && clause.get("negate").is_none_or(Value::is_boolean);
                if !well_formed {
                    // Another operator, or a clause the engine refuses: as it is.
                    continue;
                }
                let Some((kind, attribute)) = reference(clause) else {
                    continue;
                };
                if !attribute.is_valid() {
                    // The engine answers a malformed flag: leave it to it.
                    continue;
                }
                let patterns = clause
                    .get("values")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(|v| v.as_str().and_then(|p| Regex::new(p).ok()))
                    .collect();
                let negate = clause.get("negate").cloned().unwrap_or(Value::Bool(false));
                *clause = json!({
                    "contextKind": RESULTS_KIND,
                    "attribute": format!("m{count}"),
                    "op": "in",
                    "values": [true],
                    "negate": negate,
                });
                let same = matchers
                    .iter()
                    .position(|m| m.kind == kind && m.attribute == attribute);
                let matcher = same.unwrap_or_else(|| {
                    matchers.push(Matcher {
                        kind,
                        attribute,
                        clauses: Vec::new(),
                    });
                    matchers.len() - 1
                });
                own.clauses.push((matcher, matchers[matcher].clauses.len()));
                matchers[matcher].clauses.push((count, patterns));
                count += 1;
            }
            links.push(own);
        }
        let reach = if matchers.is_empty() {
            Reach::default()
        } else {
            let segment_links = links.split_off(flags.len());
            reach(flag_keys, &links, segment_keys, &segment_links)
        };
        Matchers {
            matchers,
            reach,
            built: RefCell::default(),
        }
    }

    /// The context to evaluate `flag` with (every flag when `None`, as
    /// all-flags-state does): `context` with the results of the `matches`
    /// clauses within the flag's reach whose value it has, in a context of
    /// kind [`RESULTS_KIND`]; `context` itself, not copied, when there is none.
    /// For a shared context the context built is kept (see the module).
    pub fn prepare<'a, C>(&self, flag: Option<&str>, context: &'a C) -> Prepared<'a>
    where
        C: AsContext + ?Sized,
    {
        let given = context.context();
        if self.matchers.is_empty() {
            return Prepared::Given(given);
        }
        let (set, clauses) = match flag {
            Some(key) => match self.reach.by_flag.get(key) {
                Some(&set) => (set, &self.reach.clauses[set][..]),
                None => return Prepared::Given(given),
            },
            None => (ALL, &self.reach.all[..]),
        };
        let prepared =
            |built: Option<Rc<Context>>| built.map_or(Prepared::Given(given), Prepared::Built);
        // A context no one else holds cannot come again: nothing to keep.
        let Some(shared) = context.shared().filter(|rc| Rc::strong_count(rc) > 1) else {
            return prepared(self.results(given, clauses).map(Rc::new));
        };
        let mut built = self.built.borrow_mut();
        let at = built
            .iter()
            .position(|b| b.set == set && Rc::ptr_eq(&b.given, shared));
        if let Some(at) = at {
            built[..=at].rotate_right(1);
            return prepared(built[0].with_results.clone());
        }
        let with_results = self.results(given, clauses).map(Rc::new);
        built.truncate(KEPT - 1);
        built.insert(
            0,
            Built {
                given: shared.clone(),
                set,
                with_results: with_results.clone(),
            },
        );
        prepared(with_results)
    }

    /// `context` with the results of these clauses (matcher, position), the
    /// clauses of one matcher together; `None` when none applies.
    fn results(&self, context: &Context, clauses: &[(usize, usize)]) -> Option<Context> {
        let mut results = ContextBuilder::new("results");
        results.kind(RESULTS_KIND);
        let mut any = false;
        // The attribute of the matcher last read: (matcher, its value).
        let mut read: Option<(usize, Option<AttributeValue>)> = None;
        for &(m, c) in clauses {
            let matcher = &self.matchers[m];
            if read.as_ref().is_none_or(|(last, _)| *last != m) {
                let value = context
                    .as_kind(&matcher.kind)
                    .and_then(|c| c.get_value(&matcher.attribute));
                read = Some((m, value));
            }
            let Some((_, Some(value))) = &read else {
                continue;
            };
            let (n, patterns) = &matcher.clauses[c];
            let matched = match value {
                AttributeValue::Null => continue,
                AttributeValue::Array(values) => values.iter().any(|v| matches(patterns, v)),
                other => matches(patterns, other),
            };
            results.set_bool(&format!("m{n}"), matched);
            any = true;
        }
        if !any {
            return None;
        }
        let results = results.build().ok()?;
        MultiContextBuilder::of(vec![context.clone(), results])
            .build()
            .ok()
    }
}

/// For each flag key, the `matches` clauses its evaluation can reach: its
/// own, and those of the flags it requires and the segments it matches,
/// transitively (cycles included: the engine refuses them, any superset of
/// the clauses it reads gives its results). Flags and segments that share a
/// key pool their links. Flags with none are left out.
fn reach(
    flag_keys: &[String],
    flags: &[Links],
    segment_keys: &[String],
    segments: &[Links],
) -> Reach {
    let (flag_index, segment_index) = (by_key(flag_keys), by_key(segment_keys));
    let mut all: Vec<(usize, usize)> = flags
        .iter()
        .chain(segments)
        .flat_map(|links| links.clauses.iter().copied())
        .collect();
    all.sort_unstable();
    let mut reach = Reach {
        all: all.into_boxed_slice(),
        ..Reach::default()
    };
    // Whether each flag and segment was visited for the flag at hand.
    let mut seen = (vec![false; flags.len()], vec![false; segments.len()]);
    let mut visited = Vec::new();
    // Each set of clauses once, with where it is in `reach.clauses`.
    let mut sets: HashMap<Box<[(usize, usize)]>, usize> = HashMap::new();
    for same_key in flag_index.chunk_by(|a, b| a.0 == b.0) {
        let mut pending: Vec<&Links> = Vec::new();
        for &(_, i) in same_key {
            seen.0[i] = true;
            visited.push((true, i));
            pending.push(&flags[i]);
        }
        let mut clauses = Vec::new();
        while let Some(links) = pending.pop() {
            clauses.extend_from_slice(&links.clauses);
            for flag in &links.flags {
                for &(_, i) in with_key(&flag_index, flag) {
                    if !std::mem::replace(&mut seen.0[i], true) {
                        visited.push((true, i));
                        pending.push(&flags[i]);
                    }
                }
            }
            for segment in &links.segments {
                for &(_, i) in with_key(&segment_index, segment) {
                    if !std::mem::replace(&mut seen.1[i], true) {
                        visited.push((false, i));
                        pending.push(&segments[i]);
                    }
                }
            }
        }
        for (flag, i) in visited.drain(..) {
            if flag {
                seen.0[i] = false;
            } else {
                seen.1[i] = false;
            }
        }
        if !clauses.is_empty() {
            clauses.sort_unstable();
            clauses.dedup();
            let clauses = clauses.into_boxed_slice();
            let set = *sets.entry(clauses.clone()).or_insert_with(|| {
                reach.clauses.push(clauses);
                reach.clauses.len() - 1
            });
            reach.by_flag.insert(same_key[0].0.to_owned(), set);
        }
    }
    reach
}

/// The keys with where each is in `keys`, sorted by key.
fn by_key(keys: &[String]) -> Vec<(&str, usize)> {
    let mut index: Vec<(&str, usize)> = keys.iter().map(String::as_str).zip(0..).collect();
    index.sort_unstable();
    index
}

/// The entries of a [`by_key`] index with this key.
fn with_key<'a>(index: &'a [(&str, usize)], key: &str) -> &'a [(&'a str, usize)] {
    let start = index.partition_point(|(k, _)| *k < key);
    let end = start + index[start..].partition_point(|(k, _)| *k == key);
    &index[start..end]
}

/// Whether a string value matches one of `patterns` (other values match
/// none, as the engine's string operators say).
fn matches(patterns: &[Option<Regex>], value: &AttributeValue) -> bool {
    value
        .as_str()
        .is_some_and(|text| patterns.iter().flatten().any(|p| p.is_match(text)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{evaluate, parse_context, reason_json, Data};

    /// A flag whose rules each test one `matches` clause, and a segment with
    /// one, rewritten and not.
    fn flag(clauses: &[Value]) -> Value {
        let rules: Vec<Value> = clauses
            .iter()
            .enumerate()
            .map(|(i, c)| json!({"id": format!("r{i}"), "variation": i + 1, "clauses": [c]}))
            .collect();
        let variations: Vec<Value> = (0..=clauses.len()).map(|i| json!(i)).collect();
        json!({"key": "f", "version": 1, "on": true, "salt": "s", "rules": rules,
               "fallthrough": {"variation": 0}, "offVariation": 0, "variations": variations})
    }

    /// These items parsed, the `matches` clauses rewritten or (the oracle)
    /// left to the engine; none skipped.
    fn parsed(
        flags: Vec<(String, String)>,
        segments: Vec<(String, String)>,
        rewrite: bool,
    ) -> Data {
        let (data, skipped) = if rewrite {
            Data::from_json(true, flags, segments)
        } else {
            Data::from_json_without_prepass(true, flags, segments)
        };
        assert!(skipped.is_empty(), "{skipped:?}");
        data
    }

    /// `flag` as "f", a flag "g" on segment `segment`, with the `matches`
    /// clauses rewritten or (the oracle) left to the engine.
    fn data(flag: &Value, segment: &Value, rewrite: bool) -> Data {
        let g = json!({"key": "g", "version": 1, "on": true, "salt": "s",
            "rules": [{"id": "in-segment", "variation": 1, "clauses": [
                {"attribute": "key", "op": "segmentMatch", "values": ["s"]}]}],
            "fallthrough": {"variation": 0}, "offVariation": 0, "variations": [false, true]});
        let flags = vec![("f".into(), flag.to_string()), ("g".into(), g.to_string())];
        let segments = vec![("s".into(), segment.to_string())];
        parsed(flags, segments, rewrite)
    }

    #[test]
    fn results_equal_the_engines_for_every_shape_of_value() {
        let clauses = [
            json!({"attribute": "email", "op": "matches", "values": ["^[a-z]+@example\\.com$"]}),
            json!({"contextKind": "user", "attribute": "/groups", "op": "matches",
                   "values": ["adm.n", "(bad"], "negate": true}),
            json!({"contextKind": "org", "attribute": "/address/city", "op": "matches", "values": ["^Par"]}),
            json!({"attribute": "/odd", "op": "matches", "values": [5, "x"]}),
            json!({"contextKind": "user", "attribute": "key", "op": "matches", "values": ["^k"]}),
        ];
        let segment = json!({"key": "s", "version": 1, "salt": "s", "included": [], "excluded": [],
            "rules": [{"id": "sr", "clauses": [
                {"contextKind": "user", "attribute": "name", "op": "matches", "values": ["^Ann"]}]}]});
        let rewritten = data(&flag(&clauses), &segment, true);
        let engine = data(&flag(&clauses), &segment, false);
        assert!(!rewritten.matchers.matchers.is_empty());
        let contexts = [
            json!({"key": "u", "email": "ann@example.com"}),
            json!({"key": "u", "email": "ANN@example.com", "name": "Ann"}),
            json!({"key": "u", "email": null}),
            json!({"kind": "user", "key": "u", "email": 7}),
            json!({"kind": "user", "key": "u", "groups": ["staff", "admin"]}),
            json!({"kind": "user", "key": "u", "groups": ["staff", 3, null]}),
            json!({"kind": "user", "key": "u", "groups": []}),
            json!({"kind": "user", "key": "u", "groups": "admin"}),
            json!({"kind": "org", "key": "o", "address": {"city": "Paris"}}),
            json!({"kind": "multi", "user": {"key": "k1", "name": "Annie"},
                   "org": {"key": "o", "address": {"city": "Lyon"}}}),
            json!({"kind": "user", "key": "u", "/odd": "x", "odd": "x"}),
            json!({"key": "u", "custom": {"/odd": "x"}}),
            json!({"kind": "device", "key": "d"}),
        ];
        let mut served = std::collections::BTreeSet::new();
        for context in contexts {
            let context = parse_context(&context.to_string()).unwrap();
            for key in ["f", "g"] {
                let ours = evaluate(&rewritten, key, &context, json!(null));
                let theirs = evaluate(&engine, key, &context, json!(null));
                assert_eq!(
                    (&ours.value, ours.variation_index, reason_json(&ours.reason)),
                    (
                        &theirs.value,
                        theirs.variation_index,
                        reason_json(&theirs.reason)
                    ),
                    "{key} for {context:?}"
                );
                served.insert((key, ours.variation_index));
            }
        }
        // Every rule, the fallthrough and the segment both ways were reached.
        assert_eq!(served.len(), clauses.len() + 1 + 2, "{served:?}");
    }

    /// Flags and segments whose `matches` clauses are reached only through
    /// prerequisites, segments and segments within segments, a cycle of
    /// prerequisites, and a flag that reaches none.
    fn linked(rewrite: bool) -> Data {
        let on = |key: &str, rules: Value, prerequisites: Value| {
            let flag = json!({"key": key, "version": 1, "on": true, "salt": "s",
                "rules": rules, "prerequisites": prerequisites,
                "fallthrough": {"variation": 0}, "offVariation": 0, "variations": [false, true]});
            (key.to_string(), flag.to_string())
        };
        let rule = |clause: Value| json!([{"id": "r", "variation": 1, "clauses": [clause]}]);
        let matches = |attribute: &str, pattern: &str| json!({"attribute": attribute, "op": "matches", "values": [pattern]});
        let in_segment =
            |key: &str| json!({"attribute": "key", "op": "segmentMatch", "values": [key]});
        let flags = vec![
            on("top", json!([]), json!([{"key": "middle", "variation": 1}])),
            on("middle", rule(in_segment("outer")), json!([])),
            on("own", rule(matches("email", "@corp$")), json!([])),
            on(
                "plain",
                rule(json!({"attribute": "key", "op": "in", "values": ["u"]})),
                json!([]),
            ),
            on(
                "loop-a",
                rule(matches("name", "^A")),
                json!([{"key": "loop-b", "variation": 1}]),
            ),
            on(
                "loop-b",
                json!([]),
                json!([{"key": "loop-a", "variation": 1}]),
            ),
            on(
                "missing",
                json!([]),
                json!([{"key": "gone", "variation": 1}]),
            ),
        ];
        let segment = |key: &str, clause: Value| {
            let segment = json!({"key": key, "version": 1, "salt": "s", "included": [],
                "excluded": [], "rules": [{"id": "sr", "clauses": [clause]}]});
            (key.to_string(), segment.to_string())
        };
        let segments = vec![
            segment("outer", in_segment("inner")),
            segment("inner", matches("country", "^f")),
        ];
        parsed(flags, segments, rewrite)
    }

    /// The flags of [`linked`].
    const LINKED: [&str; 7] = [
        "top", "middle", "own", "plain", "loop-a", "loop-b", "missing",
    ];

    /// Asserts that `key` answers the same in both (data, context), and
    /// returns the reason.
    fn same_answer(
        key: &str,
        (ours, context): (&Data, &(impl AsContext + ?Sized)),
        (engine, engine_context): (&Data, &Context),
    ) -> Value {
        let a = evaluate(ours, key, context, json!(null));
        let b = evaluate(engine, key, engine_context, json!(null));
        assert_eq!(
            (&a.value, a.variation_index, reason_json(&a.reason)),
            (&b.value, b.variation_index, reason_json(&b.reason)),
            "{key} for {engine_context:?}"
        );
        reason_json(&a.reason)
    }

    #[test]
    fn each_flag_prepares_only_the_clauses_within_its_reach() {
        let data = linked(true);
        let reach = |key: &str| -> Vec<usize> {
            let clauses = data.matchers.reach.of(key).unwrap_or(&[]);
            clauses
                .iter()
                .map(|&(m, c)| data.matchers.matchers[m].clauses[c].0)
                .collect()
        };
        // Numbered in order: own's, loop-a's, then the segment inner's.
        assert_eq!(reach("own"), [0]);
        assert_eq!(reach("top"), [2], "through middle, outer and inner");
        assert_eq!(reach("middle"), [2]);
        assert_eq!(reach("loop-a"), [1]);
        assert_eq!(reach("loop-b"), [1]);
        assert_eq!(reach("plain"), [] as [usize; 0]);
        assert_eq!(reach("missing"), [] as [usize; 0]);

        let context =
            parse_context(r#"{"key": "u", "email": "a@corp", "name": "Ann", "country": "fr"}"#)
                .unwrap();
        for key in ["plain", "missing", "no-such-flag"] {
            assert!(
                matches!(data.prepare(Some(key), &context), Prepared::Given(_)),
                "{key}: the context itself, not a copy"
            );
        }
        let values = |prepared: &Context| -> Vec<Option<AttributeValue>> {
            let kind = Kind::try_from(RESULTS_KIND).unwrap();
            let results = prepared.as_kind(&kind);
            (0..3)
                .map(|n| results.and_then(|r| r.get_value(&Reference::new(format!("m{n}")))))
                .collect()
        };
        let yes = Some(AttributeValue::Bool(true));
        assert_eq!(
            values(&data.prepare(Some("top"), &context)),
            [None, None, yes.clone()]
        );
        assert_eq!(
            values(&data.prepare(Some("own"), &context)),
            [yes.clone(), None, None]
        );
        // Every clause for all-flags-state.
        assert_eq!(
            values(&data.prepare(None, &context)),
            [yes.clone(), yes.clone(), yes]
        );
    }

    #[test]
    fn results_through_prerequisites_and_segments_equal_the_engines() {
        let (ours, engine) = (linked(true), linked(false));
        let contexts = [
            json!({"key": "u", "email": "a@corp", "name": "Ann", "country": "fr"}),
            json!({"key": "u", "email": "a@home", "name": "Bob", "country": "de"}),
            json!({"kind": "multi", "user": {"key": "u", "country": "fi"}, "org": {"key": "o"}}),
            json!({"kind": "org", "key": "o", "country": "fr"}),
        ];
        let mut served = std::collections::BTreeSet::new();
        for context in contexts {
            let context = parse_context(&context.to_string()).unwrap();
            for key in LINKED {
                let reason = same_answer(key, (&ours, &context), (&engine, &context));
                served.insert((key, reason["kind"].to_string()));
            }
        }
        // The rules matched and not, the prerequisites failed, the cycle an error.
        for (key, kind) in [
            ("top", "FALLTHROUGH"),
            ("top", "PREREQUISITE_FAILED"),
            ("own", "RULE_MATCH"),
            ("own", "FALLTHROUGH"),
            ("loop-a", "ERROR"),
            ("missing", "PREREQUISITE_FAILED"),
        ] {
            let kind = format!("{kind:?}");
            assert!(
                served.contains(&(key, kind.clone())),
                "{key} {kind}: {served:?}"
            );
        }
    }

    #[test]
    fn a_shared_context_is_built_once_per_set_of_clauses_and_gives_the_same_results() {
        let (ours, engine) = (linked(true), linked(false));
        let json = r#"{"key": "u", "email": "a@corp", "name": "Ann", "country": "fr"}"#;
        let shared = Rc::new(parse_context(json).unwrap());
        let _cache = shared.clone(); // held elsewhere too, as the context cache does
        let built = |flag: Option<&str>| match ours.prepare(flag, &shared) {
            Prepared::Built(context) => context,
            Prepared::Given(_) => panic!("{flag:?}: no results built"),
        };
        let top = built(Some("top"));
        assert!(Rc::ptr_eq(&top, &built(Some("top"))), "kept");
        assert!(
            Rc::ptr_eq(&top, &built(Some("middle"))),
            "top and middle reach the same clause: one set"
        );
        let own = built(Some("own"));
        assert!(!Rc::ptr_eq(&top, &own));
        assert!(Rc::ptr_eq(&built(None), &built(None)));
        assert_eq!(ours.matchers.built.borrow().len(), 3);
        // What was kept is what a context of no one else builds.
        let alone = parse_context(json).unwrap();
        for flag in [Some("top"), Some("own"), None] {
            assert_eq!(*built(flag), *ours.prepare(flag, &alone));
        }
        // A context held by no one else is not kept.
        ours.prepare(Some("own"), &Rc::new(parse_context(json).unwrap()));
        assert_eq!(ours.matchers.built.borrow().len(), 3);
        // Evaluated twice through what was kept: the engine's answers.
        for _ in 0..2 {
            for key in LINKED {
                same_answer(key, (&ours, &shared), (&engine, &alone));
            }
        }
    }

    #[test]
    fn the_contexts_kept_are_bounded_and_the_most_recent() {
        let data = linked(true);
        let contexts: Vec<Rc<Context>> = (0..KEPT + 4)
            .map(|i| {
                Rc::new(parse_context(&format!(r#"{{"key": "u{i}", "email": "a@corp"}}"#)).unwrap())
            })
            .collect();
        let _held = contexts.clone();
        let first = |context: &Rc<Context>| match data.prepare(Some("own"), context) {
            Prepared::Built(built) => built,
            Prepared::Given(_) => panic!("no results built"),
        };
        let kept = first(&contexts[0]);
        for context in &contexts[1..] {
            first(context);
            // Used again each time, the first stays.
            assert!(Rc::ptr_eq(&kept, &first(&contexts[0])));
        }
        assert_eq!(data.matchers.built.borrow().len(), KEPT);
        let given = |b: &Built| b.given.key().to_owned();
        let keys: Vec<String> = data.matchers.built.borrow().iter().map(given).collect();
        assert_eq!(keys[0], "u0");
        assert!(
            !keys.contains(&"u1".to_owned()),
            "the least recent left: {keys:?}"
        );
    }

    #[test]
    fn a_clause_on_kind_that_the_added_kind_cannot_pass_keeps_the_rewrite() {
        let kind = |op: &str, value: &str| json!({"contextKind": "user", "attribute": "kind", "op": op, "values": [value]});
        for (clause, sees) in [
            (kind("in", "user"), false),
            (kind("in", RESULTS_KIND), true),
            (kind("startsWith", "ld-"), true),
            (kind("startsWith", "org"), false),
            (kind("endsWith", "matches"), true),
            (kind("contains", "dynamo"), true),
            (kind("matches", "^u"), false),
            (kind("matches", "s$"), true),
            (kind("semVerEqual", "1.0.0"), true),
            (
                json!({"attribute": "email", "op": "in", "values": ["ld-dynamodb.matches"]}),
                false,
            ),
        ] {
            assert_eq!(sees_results_kind(&clause), sees, "{clause}");
        }
    }

    #[test]
    fn a_clause_on_kind_leaves_the_snapshot_to_the_engine() {
        let clauses = [
            json!({"attribute": "email", "op": "matches", "values": ["x"]}),
            json!({"contextKind": "user", "attribute": "kind", "op": "startsWith", "values": ["ld-"]}),
        ];
        let segment = json!({"key": "s", "version": 1, "salt": "s", "included": [], "excluded": [], "rules": []});
        let data = data(&flag(&clauses), &segment, true);
        assert!(data.matchers.matchers.is_empty());
        let context = parse_context(r#"{"key": "u", "email": "x"}"#).unwrap();
        assert_eq!(evaluate(&data, "f", &context, json!(null)).value, json!(1));
    }
}
