//! Private attributes: the context as an event carries it, with the private
//! attributes taken out and named in `_meta.redactedAttributes`, as
//! LaunchDarkly's SDKs write it (js-sdk-common's `ContextFilter`): the
//! settings' `allAttributesPrivate` and `privateAttributes`, and the context's
//! own `_meta.privateAttributes` (a legacy user's `privateAttributeNames`).

use serde_json::{Map, Value};

/// An attribute reference: `/a/b` (a path, `~1` for `/` and `~0` for `~`
/// inside a name) or a plain name.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reference {
    /// The path; empty for an invalid reference, which matches nothing.
    path: Vec<String>,
    /// How a redaction by it is named.
    name: String,
}

impl Reference {
    /// A reference as settings and `_meta.privateAttributes` write it.
    fn parse(text: &str) -> Reference {
        let invalid = text.is_empty()
            || text == "/"
            || text.contains("//")
            || text.ends_with('~')
            || (text.starts_with('/') && bad_escape(text));
        let path = if invalid {
            Vec::new()
        } else if let Some(rest) = text.strip_prefix('/') {
            rest.split('/').map(unescape).collect()
        } else {
            vec![text.to_string()]
        };
        Reference {
            path,
            name: text.to_string(),
        }
    }

    /// A plain attribute name (a legacy user's `privateAttributeNames`, or
    /// every attribute when all are private).
    fn literal(name: &str) -> Reference {
        let path = if name.is_empty() {
            Vec::new()
        } else {
            vec![name.to_string()]
        };
        let name = if name.starts_with('/') {
            format!("/{}", name.replace('~', "~0").replace('/', "~1"))
        } else {
            name.to_string()
        };
        Reference { path, name }
    }

    fn is(&self, path: &[&str]) -> bool {
        self.path.len() == path.len() && self.path.iter().zip(path).all(|(a, b)| a == b)
    }
}

/// A `~` not followed by `0` or `1`.
fn bad_escape(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes
        .iter()
        .enumerate()
        .any(|(i, &b)| b == b'~' && !matches!(bytes.get(i + 1), Some(b'0' | b'1')))
}

/// `~1` to `/` and `~0` to `~`; a component that starts with `~` is kept
/// as written, as js-sdk-common's `unescape` does.
fn unescape(component: &str) -> String {
    if component.starts_with('~') {
        component.to_string()
    } else {
        component.replace("~1", "/").replace("~0", "~")
    }
}

/// Attributes that are never redacted.
const PROTECTED: [&str; 4] = ["key", "kind", "_meta", "anonymous"];
/// A legacy user's built-in attributes, written as strings.
const LEGACY_BUILT_INS: [&str; 7] = [
    "name",
    "ip",
    "firstName",
    "lastName",
    "email",
    "avatar",
    "country",
];

/// The privacy settings.
#[derive(Debug, Clone, Default)]
pub struct Privacy {
    all_private: bool,
    private: Vec<Reference>,
}

/// One kind of a context: its kind, attributes and own private references.
struct Single {
    kind: String,
    attributes: Map<String, Value>,
    private: Vec<Reference>,
}

impl Privacy {
    /// The settings: every attribute private, or these references.
    pub fn new(all_attributes_private: bool, private_attributes: &[String]) -> Privacy {
        Privacy {
            all_private: all_attributes_private,
            private: private_attributes
                .iter()
                .map(|r| Reference::parse(r))
                .collect(),
        }
    }

    /// The context JSON (valid: the evaluator parsed it) as an event carries
    /// it. `redact_anonymous`: an anonymous kind's attributes are all
    /// private (feature events do this).
    pub fn filter(&self, context: &Value, redact_anonymous: bool) -> Value {
        let (multi, kinds) = singles(context);
        let mut filtered = kinds.into_iter().map(|single| {
            (
                single.kind.clone(),
                self.single(single, redact_anonymous, multi),
            )
        });
        if !multi {
            return filtered.next().map(|(_, c)| c).unwrap_or(Value::Null);
        }
        let mut out = Map::new();
        out.insert("kind".into(), Value::from("multi"));
        out.extend(filtered);
        Value::Object(out)
    }

    fn single(&self, single: Single, redact_anonymous: bool, in_multi: bool) -> Value {
        let Single {
            kind,
            mut attributes,
            private,
        } = single;
        let all = self.all_private
            || (redact_anonymous && attributes.get("anonymous") == Some(&Value::Bool(true)));
        let references: Vec<Reference> = if all {
            attributes.keys().map(|k| Reference::literal(k)).collect()
        } else {
            self.private.iter().cloned().chain(private).collect()
        };
        let references: Vec<Reference> = references
            .into_iter()
            .filter(|r| !PROTECTED.iter().any(|p| r.is(&[p])))
            .collect();
        if !in_multi {
            attributes.insert("kind".into(), Value::from(kind));
        }
        let mut redacted = Vec::new();
        let mut out = redact(&attributes, &references, &mut Vec::new(), &mut redacted);
        redacted.sort();
        let mut meta = match out.remove("_meta") {
            Some(Value::Object(meta)) => meta,
            _ => Map::new(),
        };
        meta.remove("privateAttributes");
        if !redacted.is_empty() {
            meta.insert(
                "redactedAttributes".into(),
                redacted.into_iter().map(Value::from).collect(),
            );
        }
        if !meta.is_empty() {
            out.insert("_meta".into(), Value::Object(meta));
        }
        Value::Object(out)
    }
}

/// A copy of `object` without the attributes `references` name (nested
/// objects walked, arrays copied whole); their names go to `redacted`.
fn redact<'a>(
    object: &'a Map<String, Value>,
    references: &[Reference],
    path: &mut Vec<&'a str>,
    redacted: &mut Vec<String>,
) -> Map<String, Value> {
    let mut out = Map::new();
    for (name, value) in object {
        path.push(name);
        if let Some(reference) = references.iter().find(|r| r.is(path)) {
            redacted.push(reference.name.clone());
        } else if let Value::Object(inner) = value {
            out.insert(
                name.clone(),
                Value::Object(redact(inner, references, path, redacted)),
            );
        } else {
            out.insert(name.clone(), value.clone());
        }
        path.pop();
    }
    out
}

/// The references of a `_meta.privateAttributes` list.
fn meta_private(attributes: &Map<String, Value>) -> Vec<Reference> {
    attributes
        .get("_meta")
        .and_then(|m| m.get("privateAttributes"))
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(Value::as_str)
                .map(Reference::parse)
                .collect()
        })
        .unwrap_or_default()
}

/// The kinds of a context, and whether it is multi-kind (a multi-kind
/// context of one kind is that kind's single context, as the SDKs read it).
fn singles(context: &Value) -> (bool, Vec<Single>) {
    let empty = Map::new();
    let fields = context.as_object().unwrap_or(&empty);
    match fields.get("kind") {
        Some(Value::String(kind)) if kind == "multi" => {
            let kinds: Vec<Single> = fields
                .iter()
                .filter(|(k, _)| *k != "kind")
                .filter_map(|(kind, value)| {
                    let attributes = value.as_object()?.clone();
                    Some(Single {
                        kind: kind.clone(),
                        private: meta_private(&attributes),
                        attributes,
                    })
                })
                .collect();
            (kinds.len() > 1, kinds)
        }
        Some(Value::String(kind)) => (
            false,
            vec![Single {
                kind: kind.clone(),
                private: meta_private(fields),
                attributes: fields.clone(),
            }],
        ),
        _ => (false, vec![legacy_user(fields)]),
    }
}

/// A legacy user (`{"key": ..., "custom": {...}, "privateAttributeNames":
/// [...]}`) as the user context the SDKs make of it.
fn legacy_user(user: &Map<String, Value>) -> Single {
    let mut attributes = user
        .get("custom")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let key = match user.get("key") {
        Some(Value::String(key)) => key.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    attributes.insert("key".into(), Value::from(key));
    match user.get("anonymous") {
        None | Some(Value::Null) => {}
        Some(anonymous) => {
            let truthy = !matches!(anonymous, Value::Bool(false))
                && anonymous != &Value::from(0)
                && anonymous != &Value::from("");
            attributes.insert("anonymous".into(), Value::Bool(truthy));
        }
    }
    for name in LEGACY_BUILT_INS {
        match user.get(name) {
            None | Some(Value::Null) => {}
            Some(Value::String(text)) => {
                attributes.insert(name.into(), Value::from(text.as_str()));
            }
            Some(other) => {
                attributes.insert(name.into(), Value::from(other.to_string()));
            }
        }
    }
    let private = user
        .get("privateAttributeNames")
        .and_then(Value::as_array)
        .map(|names| {
            names
                .iter()
                .filter_map(Value::as_str)
                .map(Reference::literal)
                .collect()
        })
        .unwrap_or_default();
    Single {
        kind: "user".into(),
        attributes,
        private,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn filter(privacy: &Privacy, context: Value) -> Value {
        privacy.filter(&context, false)
    }

    #[test]
    fn settings_and_the_contexts_own_private_attributes_are_redacted_and_named() {
        let privacy = Privacy::new(false, &["email".into(), "/address/street".into()]);
        let out = filter(
            &privacy,
            json!({"kind": "user", "key": "u", "email": "a@b", "name": "A",
                   "address": {"street": "1 Main", "city": "X"}, "phone": "1",
                   "_meta": {"privateAttributes": ["phone", "key"]}}),
        );
        assert_eq!(
            out,
            json!({"kind": "user", "key": "u", "name": "A", "address": {"city": "X"},
                   "_meta": {"redactedAttributes": ["/address/street", "email", "phone"]}})
        );
    }

    #[test]
    fn all_attributes_private_keeps_only_key_kind_and_anonymous() {
        let privacy = Privacy::new(true, &[]);
        let out = filter(
            &privacy,
            json!({"kind": "org", "key": "o", "anonymous": false, "name": "Acme", "tier": 2}),
        );
        assert_eq!(
            out,
            json!({"kind": "org", "key": "o", "anonymous": false,
                   "_meta": {"redactedAttributes": ["name", "tier"]}})
        );
    }

    #[test]
    fn anonymous_contexts_are_redacted_only_when_asked() {
        let privacy = Privacy::default();
        let context = json!({"kind": "user", "key": "u", "anonymous": true, "name": "A"});
        assert_eq!(privacy.filter(&context, false), context);
        assert_eq!(
            privacy.filter(&context, true),
            json!({"kind": "user", "key": "u", "anonymous": true,
                   "_meta": {"redactedAttributes": ["name"]}})
        );
    }

    #[test]
    fn multi_kind_contexts_are_filtered_per_kind_without_a_kind_inside() {
        let privacy = Privacy::new(false, &["name".into()]);
        let out = filter(
            &privacy,
            json!({"kind": "multi",
                   "user": {"key": "u", "name": "A", "email": "e", "_meta": {"privateAttributes": ["email"]}},
                   "org": {"key": "o", "name": "Acme", "plan": "pro"}}),
        );
        assert_eq!(
            out,
            json!({"kind": "multi",
                   "user": {"key": "u", "_meta": {"redactedAttributes": ["email", "name"]}},
                   "org": {"key": "o", "plan": "pro", "_meta": {"redactedAttributes": ["name"]}}})
        );
        // One kind in a multi-kind context: that kind's context.
        let one = filter(&privacy, json!({"kind": "multi", "org": {"key": "o"}}));
        assert_eq!(one, json!({"kind": "org", "key": "o"}));
    }

    #[test]
    fn legacy_users_become_user_contexts_with_literal_private_names() {
        let privacy = Privacy::default();
        let out = filter(
            &privacy,
            json!({"key": "u", "name": "A", "country": 5, "anonymous": null,
                   "custom": {"/odd": 1, "plan": "pro"},
                   "privateAttributeNames": ["/odd", "name"]}),
        );
        assert_eq!(
            out,
            json!({"kind": "user", "key": "u", "country": "5", "plan": "pro",
                   "_meta": {"redactedAttributes": ["/~1odd", "name"]}})
        );
    }

    #[test]
    fn references_unescape_and_invalid_ones_match_nothing() {
        assert_eq!(Reference::parse("/a~1b/c~0d").path, vec!["a/b", "c~d"]);
        assert_eq!(Reference::parse("plain/name").path, vec!["plain/name"]);
        for bad in ["", "/", "/a//b", "/a~2", "/a~"] {
            assert!(Reference::parse(bad).path.is_empty(), "{bad}");
        }
        let privacy = Privacy::new(false, &["/".into(), "/a//b".into()]);
        let context = json!({"kind": "user", "key": "u", "a": {"b": 1}});
        assert_eq!(filter(&privacy, context.clone()), context);
    }
}
