//! Init planning: validates an Init's data before any request and orders each
//! kind's items in dependency levels, so that no flag is written before its
//! prerequisites, and no item before the items of its kind that its
//! `segmentMatch` clauses name.

use std::collections::HashMap;

use serde_json::Value;

use super::input::{item_json, validate_key, validate_kind};
use crate::error::StoreError;
use crate::model::{Collection, KeyedItem, FLAGS_KIND};
use crate::schema;

/// One item to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedItem {
    pub key: String,
    pub version: u64,
    /// The JSON to store (a tombstone for a deleted item).
    pub json: String,
    /// 0 for an item with no dependency in its kind; else 1 + the highest
    /// level of its dependencies.
    pub level: usize,
}

/// One kind of an Init, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindPlan {
    pub kind: String,
    pub namespace: String,
    /// In the order given; a key given twice keeps its first position and its last value.
    pub items: Vec<PlannedItem>,
}

impl KindPlan {
    /// The items grouped by level, lowest first, each group in the given order.
    pub fn levels(&self) -> Vec<Vec<&PlannedItem>> {
        let depth = self.items.iter().map(|i| i.level + 1).max().unwrap_or(0);
        let mut levels: Vec<Vec<&PlannedItem>> = vec![Vec::new(); depth];
        for item in &self.items {
            levels[item.level].push(item);
        }
        levels
    }
}

/// Validates the data of an Init and plans its writes.
pub fn plan(prefix: &str, data: &[Collection]) -> Result<Vec<KindPlan>, StoreError> {
    let mut plans: Vec<KindPlan> = Vec::with_capacity(data.len());
    for collection in data {
        validate_kind(&collection.kind)?;
        if plans.iter().any(|p| p.kind == collection.kind) {
            return Err(StoreError::InvalidInput(format!(
                "kind {:?} is given twice",
                collection.kind
            )));
        }
        let mut position: HashMap<&str, usize> = HashMap::with_capacity(collection.items.len());
        let mut items: Vec<PlannedItem> = Vec::with_capacity(collection.items.len());
        let mut parsed: Vec<Option<Value>> = Vec::with_capacity(collection.items.len());
        for KeyedItem { key, item } in &collection.items {
            validate_key(key)?;
            let (json, value) = item_json(key, item)?;
            let planned = PlannedItem {
                key: key.clone(),
                version: item.version,
                json,
                level: 0,
            };
            match position.get(key.as_str()) {
                Some(&at) => {
                    items[at] = planned;
                    parsed[at] = value;
                }
                None => {
                    position.insert(key, items.len());
                    items.push(planned);
                    parsed.push(value);
                }
            }
        }
        let dependencies: Vec<Vec<usize>> = parsed
            .iter()
            .map(|value| {
                value.as_ref().map_or_else(Vec::new, |v| {
                    dependency_keys(&collection.kind, v)
                        .filter_map(|key| position.get(key).copied())
                        .collect()
                })
            })
            .collect();
        for (item, level) in items.iter_mut().zip(levels(&dependencies)) {
            item.level = level;
        }
        plans.push(KindPlan {
            kind: collection.kind.clone(),
            namespace: schema::prefixed(prefix, &collection.kind),
            items,
        });
    }
    Ok(plans)
}

/// The keys of the same kind an item depends on: a flag's `prerequisites[].key`,
/// and the values of any `segmentMatch` clause of its `rules`.
fn dependency_keys<'a>(kind: &str, item: &'a Value) -> impl Iterator<Item = &'a str> {
    let prerequisites = (kind == FLAGS_KIND)
        .then(|| item.get("prerequisites").and_then(Value::as_array))
        .flatten()
        .into_iter()
        .flatten()
        .filter_map(|p| p.get("key").and_then(Value::as_str));
    let segment_matches = item
        .get("rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|rule| rule.get("clauses").and_then(Value::as_array))
        .flatten()
        .filter(|clause| clause.get("op").and_then(Value::as_str) == Some("segmentMatch"))
        .filter_map(|clause| clause.get("values").and_then(Value::as_array))
        .flatten()
        .filter_map(Value::as_str);
    prerequisites.chain(segment_matches)
}

/// The level of each node of a dependency graph (edges by index). A cycle,
/// which LaunchDarkly never produces, is cut where it closes: no input makes
/// this loop forever or recurse deeply.
fn levels(dependencies: &[Vec<usize>]) -> Vec<usize> {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        New,
        Visiting,
        Done,
    }
    let mut state = vec![State::New; dependencies.len()];
    let mut level = vec![0usize; dependencies.len()];
    for root in 0..dependencies.len() {
        if state[root] != State::New {
            continue;
        }
        // Depth-first, iteratively: (node, index of the next dependency to visit).
        let mut stack = vec![(root, 0usize)];
        state[root] = State::Visiting;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            if let Some(&dep) = dependencies[node].get(*next) {
                *next += 1;
                match state[dep] {
                    State::New => {
                        state[dep] = State::Visiting;
                        stack.push((dep, 0));
                    }
                    State::Done => level[node] = level[node].max(level[dep] + 1),
                    // A cycle (or a self-reference): this edge is ignored.
                    State::Visiting => {}
                }
            } else {
                state[node] = State::Done;
                stack.pop();
                if let Some(&(parent, _)) = stack.last() {
                    level[parent] = level[parent].max(level[node] + 1);
                }
            }
        }
    }
    level
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Item;
    use serde_json::json;

    fn item(value: Value) -> KeyedItem {
        KeyedItem {
            key: value["key"].as_str().unwrap().into(),
            item: Item {
                version: value["version"].as_u64().unwrap(),
                deleted: false,
                json: value.to_string(),
            },
        }
    }

    fn flag(key: &str, prerequisites: &[&str]) -> KeyedItem {
        let prerequisites: Vec<Value> = prerequisites
            .iter()
            .map(|p| json!({"key": p, "variation": 0}))
            .collect();
        item(json!({"key": key, "version": 1, "prerequisites": prerequisites}))
    }

    fn levels_of(plan: &KindPlan) -> Vec<(&str, usize)> {
        plan.items
            .iter()
            .map(|i| (i.key.as_str(), i.level))
            .collect()
    }

    #[test]
    fn flags_are_levelled_by_prerequisites_given_in_any_order() {
        let data = [Collection {
            kind: "features".into(),
            items: vec![
                flag("c", &["b"]),
                flag("b", &["a"]),
                flag("a", &[]),
                flag("d", &["a", "c", "missing"]),
                flag("e", &[]),
            ],
        }];
        let plans = plan("p", &data).unwrap();
        assert_eq!(plans[0].namespace, "p:features");
        assert_eq!(
            levels_of(&plans[0]),
            [("c", 2), ("b", 1), ("a", 0), ("d", 3), ("e", 0)]
        );
        let keys: Vec<Vec<&str>> = plans[0]
            .levels()
            .iter()
            .map(|l| l.iter().map(|i| i.key.as_str()).collect())
            .collect();
        assert_eq!(keys, [vec!["a", "e"], vec!["b"], vec!["c"], vec!["d"]]);
    }

    #[test]
    fn segment_match_clauses_name_dependencies_in_the_same_kind() {
        let nested = json!({"key": "outer", "version": 1, "rules": [
            {"clauses": [{"attribute": "key", "op": "in", "values": ["inner"]}]},
            {"clauses": [{"attribute": "", "op": "segmentMatch", "values": ["inner", "elsewhere"]}]}
        ]});
        let data = [Collection {
            kind: "segments".into(),
            items: vec![item(nested), item(json!({"key": "inner", "version": 2}))],
        }];
        let plans = plan("", &data).unwrap();
        assert_eq!(levels_of(&plans[0]), [("outer", 1), ("inner", 0)]);
        // Prerequisites count only for flags.
        let data = [Collection {
            kind: "other".into(),
            items: vec![flag("x", &["y"]), flag("y", &[])],
        }];
        assert_eq!(
            levels_of(&plan("", &data).unwrap()[0]),
            [("x", 0), ("y", 0)]
        );
    }

    #[test]
    fn cycles_and_deep_chains_terminate() {
        let data = [Collection {
            kind: "features".into(),
            items: vec![flag("a", &["b"]), flag("b", &["a"]), flag("s", &["s"])],
        }];
        let plans = plan("", &data).unwrap();
        assert_eq!(levels_of(&plans[0]), [("a", 1), ("b", 0), ("s", 0)]);
        // A chain of 20,000 prerequisites neither recurses nor loops.
        let n = 20_000;
        let items: Vec<KeyedItem> = (0..n)
            .map(|i| {
                let key = format!("f{i}");
                if i == 0 {
                    flag(&key, &[])
                } else {
                    flag(&key, &[&format!("f{}", i - 1)])
                }
            })
            .rev()
            .collect();
        let data = [Collection {
            kind: "features".into(),
            items,
        }];
        let plans = plan("", &data).unwrap();
        assert_eq!(plans[0].levels().len(), n);
        assert_eq!(plans[0].items[0].level, n - 1);
    }

    #[test]
    fn a_key_given_twice_keeps_its_first_position_and_last_value() {
        let data = [Collection {
            kind: "features".into(),
            items: vec![flag("a", &["b"]), flag("b", &[]), flag("a", &[])],
        }];
        let plans = plan("", &data).unwrap();
        assert_eq!(levels_of(&plans[0]), [("a", 0), ("b", 0)]);
    }
}
