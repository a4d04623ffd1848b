//! The contexts last parsed, by their exact JSON: a client evaluating many
//! flags for one context (the common pattern) has it parsed once.

use std::rc::Rc;

use launchdarkly_server_sdk_evaluation::Context;

use crate::parse_context;

/// A context as an evaluation takes it: one of the caller's, or one shared
/// in an [`Rc`] (as [`ContextCache`] hands them out), for which the snapshot
/// may keep what it builds from it (see [`crate::matches`]).
pub trait AsContext {
    /// The context.
    fn context(&self) -> &Context;

    /// The [`Rc`] the context is shared in, if it is.
    fn shared(&self) -> Option<&Rc<Context>> {
        None
    }
}

impl AsContext for Context {
    fn context(&self) -> &Context {
        self
    }
}

impl AsContext for Rc<Context> {
    fn context(&self) -> &Context {
        self
    }

    fn shared(&self) -> Option<&Rc<Context>> {
        Some(self)
    }
}

/// How many contexts are kept.
const CAPACITY: usize = 4;

/// The longest context JSON kept, in bytes: a larger one is parsed each
/// time, so the cache holds at most `CAPACITY` times this.
const MAX_JSON: usize = 16 * 1024;

/// The last few contexts parsed (4), the most recent first.
#[derive(Debug, Default)]
pub struct ContextCache {
    entries: Vec<(String, Rc<Context>)>,
}

impl ContextCache {
    /// An empty cache.
    pub const fn new() -> ContextCache {
        ContextCache {
            entries: Vec::new(),
        }
    }

    /// [`parse_context`] of `json`, from the cache when the same text was
    /// parsed recently. Errors are not kept.
    pub fn parse(&mut self, json: &str) -> Result<Rc<Context>, String> {
        if let Some(at) = self.entries.iter().position(|(text, _)| text == json) {
            self.entries[..=at].rotate_right(1);
            return Ok(self.entries[0].1.clone());
        }
        let context = Rc::new(parse_context(json)?);
        if json.len() <= MAX_JSON {
            self.entries.truncate(CAPACITY - 1);
            self.entries.insert(0, (json.to_owned(), context.clone()));
        }
        Ok(context)
    }

    /// How many contexts are kept.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cached_context_equals_a_fresh_parse_and_is_shared() {
        let mut cache = ContextCache::new();
        let json = r#"{"kind": "multi", "user": {"key": "u", "name": "Ann"}, "org": {"key": "o"}}"#;
        let first = cache.parse(json).unwrap();
        let again = cache.parse(json).unwrap();
        assert!(
            Rc::ptr_eq(&first, &again),
            "the second parse is the cached one"
        );
        assert_eq!(*again, parse_context(json).unwrap());
        // Another text of the same context is another entry, parsed.
        let spaced = json.replace(", ", ",");
        assert!(!Rc::ptr_eq(&first, &cache.parse(&spaced).unwrap()));
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn the_cache_is_bounded_and_keeps_the_most_recent() {
        let mut cache = ContextCache::new();
        let json = |i: usize| format!(r#"{{"key": "u{i}"}}"#);
        let kept = cache.parse(&json(0)).unwrap();
        for i in 1..CAPACITY + 3 {
            cache.parse(&json(i)).unwrap();
            // u0, used again each time, stays.
            assert!(Rc::ptr_eq(&kept, &cache.parse(&json(0)).unwrap()));
        }
        assert_eq!(cache.len(), CAPACITY);
        let one = cache.parse(&json(1)).unwrap();
        assert_eq!(one.key(), "u1", "evicted, parsed again");
        let huge = format!(r#"{{"key": "k", "pad": "{}"}}"#, "x".repeat(MAX_JSON));
        assert_eq!(cache.parse(&huge).unwrap().key(), "k");
        assert!(cache.entries.iter().all(|(text, _)| text.len() <= MAX_JSON));
    }

    #[test]
    fn errors_are_returned_each_time_and_not_kept() {
        let mut cache = ContextCache::new();
        for _ in 0..2 {
            let e = cache.parse(r#"{"kind": "user"}"#).unwrap_err();
            assert!(e.starts_with("invalid context"), "{e}");
        }
        assert_eq!(cache.len(), 0);
    }
}
