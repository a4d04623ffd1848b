//! The table as the app serves it: one snapshot of the flags, segments and
//! `$inited` marker, kept in the instance from one request to the next (a
//! host that reuses instances, such as `wasmtime serve
//! --max-instance-reuse-count`, or `jco serve`), read again once it is older
//! than the refresh interval, and served past it while DynamoDB cannot be read.
//!
//! The rule, per request, at monotonic time `now`:
//! - a snapshot younger than `refresh` is served as it is;
//! - otherwise the table is read again (one round trip: both kinds and the
//!   marker), unless a read failed less than the current back-off ago;
//! - when the read fails, the failure is logged once for that read, and the
//!   last snapshot is served while it is younger than `max_stale` (its age
//!   in the answer's `x-snapshot-age-ms` header and in `/status`); past
//!   that, or with no snapshot at all, the answer is a 503;
//! - after a failed read, the next one waits 1 s, then twice as long after
//!   each further failure, up to the refresh interval: an outage never costs
//!   DynamoDB more than one read per instance per back-off, however many
//!   answers are served meanwhile.
//!
//! A snapshot's age counts from the moment its read began, so no answer
//! comes from data older than the refresh interval while reads succeed.

use ld_dynamodb_store::model::{FLAGS_KIND, SEGMENTS_KIND};

use crate::api::{error, etag, FlagSource, Item, Response, UNAVAILABLE};
use crate::settings::Settings;

/// The kinds a snapshot holds, in the order [`FlagSource::read`] returns them.
pub const KINDS: [&str; 2] = [FLAGS_KIND, SEGMENTS_KIND];

/// Every item of both kinds (tombstones included) and the marker, read
/// together.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Read {
    /// Whether the table holds the `$inited` marker.
    pub initialized: bool,
    /// Every flag by key.
    pub flags: Vec<(String, Item)>,
    /// Every segment by key.
    pub segments: Vec<(String, Item)>,
}

/// A body and its ETag, made once per snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body {
    /// The JSON served.
    pub json: Vec<u8>,
    /// Its ETag (quoted).
    pub etag: String,
}

impl Body {
    fn new(json: Vec<u8>) -> Body {
        let etag = etag(&json);
        Body { json, etag }
    }
}

/// One read of the table, ready to serve: the live items sorted by key, and
/// the polling bodies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Monotonic time (ns) at which its read began.
    pub read_at: u64,
    /// Whether the table held the `$inited` marker.
    pub initialized: bool,
    /// Live flags, sorted by key.
    pub flags: Vec<(String, Item)>,
    /// Live segments, sorted by key.
    pub segments: Vec<(String, Item)>,
    /// `/sdk/latest-all`.
    pub all: Body,
    /// `/sdk/latest-flags`.
    pub all_flags: Body,
    /// `/sdk/latest-segments`.
    pub all_segments: Body,
}

impl Snapshot {
    /// The snapshot of a read begun at `read_at`.
    pub fn new(read: Read, read_at: u64) -> Snapshot {
        let live = |mut items: Vec<(String, Item)>| {
            items.retain(|(_, item)| !item.deleted);
            items.sort_by(|a, b| a.0.cmp(&b.0));
            items
        };
        let flags = live(read.flags);
        let segments = live(read.segments);
        let flags_json = collection(&flags);
        let segments_json = collection(&segments);
        let mut all = b"{\"flags\":".to_vec();
        all.extend(&flags_json);
        all.extend(b",\"segments\":");
        all.extend(&segments_json);
        all.push(b'}');
        Snapshot {
            read_at,
            initialized: read.initialized,
            all: Body::new(all),
            all_flags: Body::new(flags_json),
            all_segments: Body::new(segments_json),
            flags,
            segments,
        }
    }

    /// A live flag's JSON.
    pub fn flag(&self, key: &str) -> Option<&str> {
        find(&self.flags, key)
    }

    /// A live segment's JSON.
    pub fn segment(&self, key: &str) -> Option<&str> {
        find(&self.segments, key)
    }
}

fn find<'a>(items: &'a [(String, Item)], key: &str) -> Option<&'a str> {
    items
        .binary_search_by(|(k, _)| k.as_str().cmp(key))
        .ok()
        .map(|i| items[i].1.json.as_str())
}

/// `{"key": item, ...}` of sorted live items; the items' JSON is used as
/// stored.
fn collection(items: &[(String, Item)]) -> Vec<u8> {
    let mut out = vec![b'{'];
    for (i, (key, item)) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend(serde_json::to_string(key).unwrap_or_default().into_bytes());
        out.push(b':');
        out.extend(item.json.as_bytes());
    }
    out.push(b'}');
    out
}

/// How fresh the served data is kept (settings `refresh-interval-ms` and
/// `max-stale-ms`), in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Freshness {
    /// A snapshot older than this is read again; 0: every answer reads.
    pub refresh: u64,
    /// While reads fail, a snapshot is served up to this age; 0: never.
    pub max_stale: u64,
}

/// The first wait after a failed read, in nanoseconds.
const FIRST_BACKOFF: u64 = 1_000_000_000;

/// The snapshot being served, with the source that evaluates against it.
pub struct Current<'a, S> {
    /// The snapshot.
    pub snapshot: &'a Snapshot,
    /// The flag source, loaded with it.
    pub source: &'a mut S,
    /// The snapshot's age, in milliseconds.
    pub age_ms: u64,
    /// Whether the last read failed (the snapshot is older than the refresh
    /// interval).
    pub stale: bool,
}

/// What the app keeps from one request to the next: the flag source opened
/// on its settings, the last snapshot, and when to read again after a
/// failure.
pub struct Edge<S> {
    source: Option<(Settings, S)>,
    snapshot: Option<Snapshot>,
    /// After a failed read: no new read before this time (ns), and the wait
    /// that set it.
    backoff: Option<(u64, u64)>,
    /// The last configuration error met.
    config_error: Option<String>,
}

impl<S> Default for Edge<S> {
    fn default() -> Self {
        Edge {
            source: None,
            snapshot: None,
            backoff: None,
            config_error: None,
        }
    }
}

impl<S> Edge<S> {
    /// Whether `e` differs from the last configuration error met (which it
    /// then becomes).
    pub fn config_error_is_new(&mut self, e: &str) -> bool {
        let new = self.config_error.as_deref() != Some(e);
        if new {
            self.config_error = Some(e.to_string());
        }
        new
    }
}

impl<S: FlagSource> Edge<S> {
    /// The snapshot to answer from at `now` (monotonic ns), read again as the
    /// module's rule says; the flag source is opened the first time, and
    /// again if the settings change. `Err` is the 503 to answer, with its
    /// cause logged.
    pub fn current(
        &mut self,
        settings: &Settings,
        now: u64,
        open: impl FnOnce() -> Result<S, String>,
        log: &mut dyn FnMut(&str),
    ) -> Result<Current<'_, S>, Response> {
        let where_ = settings.describe();
        if self.source.as_ref().is_none_or(|(s, _)| s != settings) {
            *self = Edge::default();
            let source = open().map_err(|e| {
                log(&format!(
                    "edge-flags: cannot open the data store ({where_}): {e}"
                ));
                error(503, UNAVAILABLE)
            })?;
            self.source = Some((settings.clone(), source));
        }
        let freshness = settings.freshness;
        let age = |s: &Snapshot| now.saturating_sub(s.read_at);
        let fresh = self
            .snapshot
            .as_ref()
            .is_some_and(|s| freshness.refresh > 0 && age(s) < freshness.refresh);
        let waiting = self.backoff.is_some_and(|(until, _)| now < until);
        let Some((_, source)) = self.source.as_mut() else {
            unreachable!("opened above")
        };
        let mut stale = false;
        if !fresh {
            if waiting {
                stale = true;
            } else {
                match source.read() {
                    Ok(read) => {
                        let snapshot = Snapshot::new(read, now);
                        source.load(&snapshot);
                        self.snapshot = Some(snapshot);
                        self.backoff = None;
                    }
                    Err(e) => {
                        stale = true;
                        let wait = self.backoff.map_or(FIRST_BACKOFF, |(_, wait)| {
                            (wait * 2).min(freshness.refresh.max(FIRST_BACKOFF))
                        });
                        self.backoff = Some((now + wait, wait));
                        let serving = match &self.snapshot {
                            Some(s) if age(s) < freshness.max_stale => {
                                format!("serving the snapshot read {} ms ago", age(s) / 1_000_000)
                            }
                            _ => "answering 503".to_string(),
                        };
                        log(&format!(
                            "edge-flags: the data store failed ({where_}): {e}; {serving} \
                             until a read succeeds (next in {} ms)",
                            wait / 1_000_000
                        ));
                    }
                }
            }
        }
        match &self.snapshot {
            Some(snapshot) if !stale || age(snapshot) < freshness.max_stale => Ok(Current {
                snapshot,
                source,
                age_ms: age(snapshot) / 1_000_000,
                stale,
            }),
            _ => Err(error(503, UNAVAILABLE)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evalx::{EvalFailure, Filter};
    use crate::settings::Auth;
    use std::cell::RefCell;
    use std::rc::Rc;

    const MS: u64 = 1_000_000;

    /// A source whose reads follow a script: `Ok(version)` gives one flag of
    /// that version, `Err` fails. It counts reads and loads.
    struct Scripted {
        reads: Rc<RefCell<Vec<Result<u64, String>>>>,
        count: Rc<RefCell<(usize, usize)>>,
    }

    impl FlagSource for Scripted {
        fn read(&mut self) -> Result<Read, String> {
            self.count.borrow_mut().0 += 1;
            let next = self.reads.borrow_mut().remove(0);
            next.map(|version| Read {
                initialized: true,
                flags: vec![
                    (
                        "f".into(),
                        Item {
                            version,
                            deleted: false,
                            json: format!("{{\"key\":\"f\",\"version\":{version}}}"),
                        },
                    ),
                    (
                        "gone".into(),
                        Item {
                            version: 1,
                            deleted: true,
                            json: String::new(),
                        },
                    ),
                ],
                segments: Vec::new(),
            })
        }
        fn load(&mut self, _: &Snapshot) {
            self.count.borrow_mut().1 += 1;
        }
        fn all_flags_state(&mut self, _: &str, _: Filter, _: bool) -> Result<String, EvalFailure> {
            unreachable!()
        }
        fn secure_mode_hash(&mut self, _: &str, _: &str) -> Result<String, EvalFailure> {
            unreachable!()
        }
    }

    fn settings(refresh_ms: u64, max_stale_ms: u64) -> Settings {
        Settings {
            table: "t".into(),
            prefix: None,
            region: "us-east-1".into(),
            endpoint: None,
            access_key_id: String::new(),
            secret_access_key: String::new(),
            session_token: None,
            auth: Auth::None,
            client_side_id: None,
            mobile_key: None,
            secure_mode_key: None,
            freshness: Freshness {
                refresh: refresh_ms * MS,
                max_stale: max_stale_ms * MS,
            },
            access_log: false,
            consistent_reads: false,
            request_budget_ms: 2_000,
        }
    }

    type Reads = Rc<RefCell<Vec<Result<u64, String>>>>;
    type Counts = Rc<RefCell<(usize, usize)>>;

    /// An edge opened on `settings` at time 0 (its first read done).
    fn edge(
        script: Vec<Result<u64, String>>,
        settings: &Settings,
    ) -> (Edge<Scripted>, Reads, Counts) {
        let reads = Rc::new(RefCell::new(script));
        let count = Rc::new(RefCell::new((0, 0)));
        let mut edge = Edge::default();
        let source = Scripted {
            reads: reads.clone(),
            count: count.clone(),
        };
        // Opened with the first call.
        let mut first = Some(source);
        let _ = edge.current(settings, 0, || Ok(first.take().unwrap()), &mut |_| {});
        (edge, reads, count)
    }

    /// (version served, age ms, stale), or the status of the error.
    type Served = Result<(u64, u64, bool), u16>;

    /// What is served at `now_ms`, and the log lines beside.
    fn at(edge: &mut Edge<Scripted>, settings: &Settings, now_ms: u64) -> (Served, Vec<String>) {
        let mut log = Vec::new();
        let result = edge
            .current(
                settings,
                now_ms * MS,
                || unreachable!("opened once"),
                &mut |l| log.push(l.to_string()),
            )
            .map(|c| {
                let v: serde_json::Value =
                    serde_json::from_str(c.snapshot.flag("f").unwrap()).unwrap();
                (v["version"].as_u64().unwrap(), c.age_ms, c.stale)
            })
            .map_err(|r| r.status);
        (result, log)
    }

    #[test]
    fn one_read_per_refresh_interval_and_the_bodies_hold_live_items_only() {
        let s = settings(15_000, 60_000);
        let (mut e, _, count) = edge(vec![Ok(1), Ok(2)], &s);
        for ms in [1, 5_000, 14_999] {
            assert_eq!(at(&mut e, &s, ms).0, Ok((1, ms, false)));
        }
        assert_eq!(*count.borrow(), (1, 1));
        assert_eq!(at(&mut e, &s, 15_000).0, Ok((2, 0, false)));
        assert_eq!(*count.borrow(), (2, 2));
        let snapshot = e.snapshot.as_ref().unwrap();
        assert_eq!(
            String::from_utf8(snapshot.all.json.clone()).unwrap(),
            r#"{"flags":{"f":{"key":"f","version":2}},"segments":{}}"#
        );
        assert_eq!(snapshot.all.etag, etag(&snapshot.all.json));
        assert_eq!(snapshot.flag("gone"), None);
    }

    #[test]
    fn a_failed_read_serves_the_last_snapshot_logs_once_and_backs_off() {
        let s = settings(15_000, 60_000);
        let (mut e, reads, count) = edge(
            vec![
                Ok(1),
                Err("boom".into()),
                Err("boom".into()),
                Err("boom".into()),
                Ok(3),
            ],
            &s,
        );
        // The read at 15 s fails: the snapshot of 0 s is served, stale.
        let (r, log) = at(&mut e, &s, 15_000);
        assert_eq!(r, Ok((1, 15_000, true)));
        assert_eq!(log.len(), 1, "{log:?}");
        assert!(
            log[0].contains("boom") && log[0].contains("serving the snapshot read 15000 ms ago"),
            "{log:?}"
        );
        // Within the back-off (1 s): no read, no log.
        for ms in [15_001, 15_500, 15_999] {
            let (r, log) = at(&mut e, &s, ms);
            assert_eq!(r, Ok((1, ms, true)));
            assert!(log.is_empty());
        }
        assert_eq!(count.borrow().0, 2);
        // Then 1 s, 2 s, 4 s... between reads.
        assert!(at(&mut e, &s, 16_000).1[0].contains("next in 2000 ms"));
        assert_eq!(at(&mut e, &s, 17_999).1.len(), 0);
        assert!(at(&mut e, &s, 18_000).1[0].contains("next in 4000 ms"));
        assert_eq!(count.borrow().0, 4);
        // Recovery.
        assert_eq!(at(&mut e, &s, 22_000).0, Ok((3, 0, false)));
        assert!(reads.borrow().is_empty());
    }

    #[test]
    fn past_the_maximum_age_or_with_no_snapshot_the_answer_is_503() {
        let s = settings(15_000, 20_000);
        let (mut e, _, _) = edge(
            vec![
                Ok(1),
                Err("boom".into()),
                Err("boom".into()),
                Err("boom".into()),
            ],
            &s,
        );
        assert_eq!(at(&mut e, &s, 15_000).0, Ok((1, 15_000, true)));
        let (r, log) = at(&mut e, &s, 19_999);
        assert_eq!(r, Ok((1, 19_999, true)));
        assert!(log[0].contains("serving the snapshot"), "{log:?}");
        // Past the maximum age, within the back-off: 503, no read.
        assert_eq!(at(&mut e, &s, 20_000), (Err(503), vec![]));
        let (r, log) = at(&mut e, &s, 21_999);
        assert_eq!(r, Err(503));
        assert!(log[0].contains("answering 503"), "{log:?}");

        let (mut fresh, _, count) = edge(vec![Err("down".into()), Err("down".into())], &s);
        assert_eq!(at(&mut fresh, &s, 10).0, Err(503));
        // The failed first read holds back the next for 1 s.
        assert_eq!(count.borrow().0, 1);
        assert_eq!(at(&mut fresh, &s, 1_000).0, Err(503));
        assert_eq!(count.borrow().0, 2);
    }

    #[test]
    fn a_refresh_interval_of_zero_reads_for_every_answer() {
        let s = settings(0, 0);
        let (mut e, _, count) = edge(vec![Ok(1), Ok(2), Ok(3)], &s);
        assert_eq!(at(&mut e, &s, 0).0, Ok((2, 0, false)));
        assert_eq!(at(&mut e, &s, 0).0, Ok((3, 0, false)));
        assert_eq!(count.borrow().0, 3);
    }

    #[test]
    fn new_settings_open_a_new_source_and_drop_the_snapshot() {
        let (mut e, _, _) = edge(vec![Ok(1)], &settings(15_000, 60_000));
        let mut opened = 0;
        let other = settings(1_000, 1_000);
        let reads = Rc::new(RefCell::new(vec![Ok(7)]));
        let r = e.current(
            &other,
            10 * MS,
            || {
                opened += 1;
                Ok(Scripted {
                    reads: reads.clone(),
                    count: Rc::default(),
                })
            },
            &mut |_| {},
        );
        assert_eq!(r.map(|c| c.snapshot.flags[0].1.version).ok(), Some(7));
        assert_eq!(opened, 1);
    }
}
