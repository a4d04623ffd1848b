//! The app's HTTP API over a flag source, as plain Rust: LaunchDarkly's
//! server-side polling routes (routing, the SDK-key check, ETag revalidation,
//! the JSON shapes) here, the evaluation routes in [`crate::evalx`]. The
//! component glue maps `wasi:http` onto it.

use serde_json::json;

use crate::evalx::{self, EvalFailure, Filter};
use crate::settings::{Auth, Settings};
use crate::snapshot::{Edge, Read, Snapshot};

/// A stored item, as the store returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The item's version.
    pub version: u64,
    /// Whether it is a tombstone.
    pub deleted: bool,
    /// Its JSON, as LaunchDarkly's SDKs store it.
    pub json: String,
}

/// Where flags and segments come from, and where they are evaluated (the
/// data store and the flag evaluator in the component). Errors are messages
/// that carry no secret.
pub trait FlagSource {
    /// Both kinds and the marker, in one round trip.
    fn read(&mut self) -> Result<Read, String>;
    /// Makes the evaluator evaluate against this snapshot from now on.
    fn load(&mut self, snapshot: &Snapshot);
    /// LaunchDarkly's `allFlagsState` JSON of the flags `filter` admits for
    /// a context (the evaluator's `all-flags-state`), over the loaded
    /// snapshot.
    fn all_flags_state(
        &mut self,
        context_json: &str,
        filter: Filter,
        with_reasons: bool,
    ) -> Result<String, EvalFailure>;
    /// The secure-mode hash of a context under `sdk_key`.
    fn secure_mode_hash(
        &mut self,
        context_json: &str,
        sdk_key: &str,
    ) -> Result<String, EvalFailure>;
}

/// What the handler reads of a request.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// The method, upper case (`GET`, `REPORT`).
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query, without the `?`.
    pub query: Option<String>,
    /// The `Authorization` header's bytes.
    pub authorization: Option<Vec<u8>>,
    /// The `If-None-Match` header.
    pub if_none_match: Option<String>,
    /// The `Origin` header (CORS).
    pub origin: Option<String>,
    /// The `Content-Type` header.
    pub content_type: Option<String>,
    /// The body of a REPORT (read up to [`evalx::MAX_BODY`] + 1 bytes);
    /// empty for other methods.
    pub body: Vec<u8>,
}

/// A response to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The HTTP status.
    pub status: u16,
    /// Header names and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// The endpoints served.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    All,
    Flags,
    Flag(String),
    Segments,
    Segment(String),
    Status,
}

fn route(path: &str) -> Option<Route> {
    let path = path.strip_suffix('/').unwrap_or(path);
    match path {
        "/sdk/latest-all" => return Some(Route::All),
        "/sdk/latest-flags" => return Some(Route::Flags),
        "/sdk/latest-segments" => return Some(Route::Segments),
        "/status" => return Some(Route::Status),
        _ => {}
    }
    let key = |prefix: &str| {
        path.strip_prefix(prefix)
            .filter(|k| !k.is_empty() && !k.contains('/'))
            .and_then(percent_decode)
    };
    key("/sdk/latest-flags/")
        .map(Route::Flag)
        .or_else(|| key("/sdk/latest-segments/").map(Route::Segment))
}

/// `%XX` escapes decoded; `None` for a bad escape or bytes that are not UTF-8.
pub(crate) fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Whether two byte strings are equal, in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A strong ETag of a body: FNV-1a 64 of its bytes, quoted.
pub fn etag(body: &[u8]) -> String {
    let hash = body.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("\"{hash:016x}\"")
}

pub(crate) fn json_response(status: u16, body: &serde_json::Value) -> Response {
    Response {
        status,
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.to_string().into_bytes(),
    }
}

pub(crate) fn error(status: u16, message: &str) -> Response {
    json_response(status, &json!({ "error": message }))
}

/// The body of a 503 whose cause is in the log: a response never carries the
/// store's error text (table names, request ids, configuration).
pub(crate) const UNAVAILABLE: &str = "the data store is unavailable; the server's log says why";
pub(crate) const NOT_CONFIGURED: &str = "the server is not configured; its log says why";

/// Answers one request at monotonic time `now` (ns). `settings` is the
/// configuration read for this request, or why it is invalid (a 503 for
/// every route, never an open door); `edge` is what the app keeps between
/// requests, and `open` gives it the flag source the first time. `log`
/// receives what a response does not show: causes of 503s and configuration
/// errors.
pub fn handle<S: FlagSource>(
    request: &Request,
    settings: Result<&Settings, &str>,
    edge: &mut Edge<S>,
    now: u64,
    open: impl FnOnce() -> Result<S, String>,
    log: &mut dyn FnMut(&str),
) -> Response {
    let head = request.method == "HEAD";
    let mut response = respond(request, settings, edge, now, open, log);
    if head {
        // As GET, without the body (HTTP caches revalidate with HEAD).
        response.body.clear();
    }
    response
}

fn respond<S: FlagSource>(
    request: &Request,
    settings: Result<&Settings, &str>,
    edge: &mut Edge<S>,
    now: u64,
    open: impl FnOnce() -> Result<S, String>,
    log: &mut dyn FnMut(&str),
) -> Response {
    if let Some(route) = evalx::route(&request.path) {
        return evalx::respond(request, &route, settings, edge, now, open, log);
    }
    if request.method != "GET" && request.method != "HEAD" {
        let mut response = error(405, "only GET and HEAD are supported");
        response.headers.push(("allow".into(), "GET, HEAD".into()));
        return response;
    }
    let Some(route) = route(&request.path) else {
        return error(404, "not found");
    };
    let settings = match settings {
        Ok(settings) => settings,
        Err(e) => return not_configured(edge, e, log),
    };
    let keyed = matches!(settings.auth, Auth::SdkKey(_));
    let mut response = polling(request, &route, settings, edge, now, open, log);
    if keyed {
        private(&mut response);
    }
    response
}

/// The 503 of an invalid configuration; its cause is logged the first time
/// this instance meets it (a reused instance meets it on every request).
pub(crate) fn not_configured<S>(
    edge: &mut Edge<S>,
    e: &str,
    log: &mut dyn FnMut(&str),
) -> Response {
    if edge.config_error_is_new(e) {
        log(&format!("edge-flags: invalid configuration: {e}"));
    }
    error(503, NOT_CONFIGURED)
}

/// Marks an answer that depends on the request's key: no shared cache may
/// keep it, and a private one keys it by `Authorization`.
pub(crate) fn private(response: &mut Response) {
    response
        .headers
        .push(("cache-control".into(), "private".into()));
    response
        .headers
        .push(("vary".into(), "Authorization".into()));
}

fn polling<S: FlagSource>(
    request: &Request,
    route: &Route,
    settings: &Settings,
    edge: &mut Edge<S>,
    now: u64,
    open: impl FnOnce() -> Result<S, String>,
    log: &mut dyn FnMut(&str),
) -> Response {
    if let Auth::SdkKey(key) = &settings.auth {
        let given = request.authorization.as_deref().unwrap_or_default();
        if !constant_time_eq(given, key.as_bytes()) {
            return error(
                401,
                "the Authorization header does not hold a valid SDK key",
            );
        }
    }
    let current = match edge.current(settings, now, open, log) {
        Ok(current) => current,
        Err(response) => {
            if *route == Route::Status {
                return json_response(503, &json!({ "initialized": false, "available": false }));
            }
            return response;
        }
    };
    let snapshot = current.snapshot;
    let mut response = if *route == Route::Status {
        json_response(
            200,
            &json!({
                "initialized": snapshot.initialized,
                "available": !current.stale,
                "snapshotAgeMs": current.age_ms,
            }),
        )
    } else if !snapshot.initialized {
        not_initialized(&settings.describe(), log)
    } else {
        let item = |json: Option<&str>| {
            json.map(|json| {
                let json = json.as_bytes().to_vec();
                let tag = etag(&json);
                (json, tag)
            })
        };
        let body = match route {
            Route::All => Some((snapshot.all.json.clone(), snapshot.all.etag.clone())),
            Route::Flags => Some((
                snapshot.all_flags.json.clone(),
                snapshot.all_flags.etag.clone(),
            )),
            Route::Segments => Some((
                snapshot.all_segments.json.clone(),
                snapshot.all_segments.etag.clone(),
            )),
            Route::Flag(key) => item(snapshot.flag(key)),
            Route::Segment(key) => item(snapshot.segment(key)),
            Route::Status => unreachable!("answered above"),
        };
        match body {
            Some((body, tag)) => revalidate(request, body, tag),
            None => error(404, "not found"),
        }
    };
    age_header(&mut response, current.age_ms);
    response
}

/// The snapshot's age in an answer made from it.
pub(crate) fn age_header(response: &mut Response, age_ms: u64) {
    response
        .headers
        .push(("x-snapshot-age-ms".into(), age_ms.to_string()));
}

/// The 503 of a table without the `$inited` marker under the prefix; the log
/// names where the data was read and how to load it.
pub(crate) fn not_initialized(where_: &str, log: &mut dyn FnMut(&str)) -> Response {
    log(&format!(
        "edge-flags: the data store is not initialized ({where_}): no $inited marker \
         under that prefix; load data with `ld-dynamodb init`, or check the prefix"
    ));
    error(503, "the data store is not initialized")
}

/// A 200 with `body` as JSON and its ETag `tag`, or a 304 when the
/// request's `If-None-Match` holds that tag.
pub(crate) fn revalidate(request: &Request, body: Vec<u8>, tag: String) -> Response {
    let matches = request.if_none_match.as_deref().is_some_and(|header| {
        header
            .split(',')
            .map(|t| t.trim().trim_start_matches("W/"))
            .any(|t| t == tag || t == "*")
    });
    if matches {
        return Response {
            status: 304,
            headers: vec![("etag".into(), tag)],
            body: Vec::new(),
        };
    }
    Response {
        status: 200,
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("etag".into(), tag),
        ],
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Fake {
        read: Read,
        fail: Option<String>,
    }

    impl FlagSource for Fake {
        fn read(&mut self) -> Result<Read, String> {
            match &self.fail {
                Some(e) => Err(e.clone()),
                None => Ok(self.read.clone()),
            }
        }
        fn load(&mut self, _: &Snapshot) {}
        fn all_flags_state(&mut self, _: &str, _: Filter, _: bool) -> Result<String, EvalFailure> {
            unreachable!("the polling routes do not evaluate")
        }
        fn secure_mode_hash(&mut self, _: &str, _: &str) -> Result<String, EvalFailure> {
            unreachable!("the polling routes do not evaluate")
        }
    }

    fn item(key: &str, version: u64, deleted: bool) -> (String, Item) {
        (
            key.to_string(),
            Item {
                version,
                deleted,
                json: format!("{{\"key\":\"{key}\",\"version\":{version}}}"),
            },
        )
    }

    fn fake() -> Fake {
        Fake {
            read: Read {
                initialized: true,
                flags: vec![
                    item("b", 2, false),
                    item("a", 1, false),
                    item("gone", 3, true),
                ],
                segments: vec![item("s", 4, false)],
            },
            fail: None,
        }
    }

    fn settings(auth: Auth) -> Settings {
        Settings {
            table: "flags".into(),
            prefix: Some("edge".into()),
            region: "us-east-1".into(),
            endpoint: None,
            access_key_id: "AKID".into(),
            secret_access_key: "s3cr3t".into(),
            session_token: None,
            auth,
            client_side_id: None,
            mobile_key: None,
            secure_mode_key: None,
            freshness: crate::snapshot::Freshness {
                refresh: 0,
                max_stale: 0,
            },
            access_log: false,
            consistent_reads: false,
            request_budget_ms: 2_000,
        }
    }

    /// `handle` with the given auth; the log lines are returned beside.
    fn call(request: &Request, auth: Auth, source: Result<Fake, String>) -> (Response, String) {
        let mut log = String::new();
        let settings = settings(auth);
        let r = handle(
            request,
            Ok(&settings),
            &mut Edge::default(),
            0,
            || source,
            &mut |line| {
                log.push_str(line);
                log.push('\n');
            },
        );
        (r, log)
    }

    fn open(request: &Request) -> Response {
        call(request, Auth::None, Ok(fake())).0
    }

    fn get(path: &str) -> Request {
        Request {
            method: "GET".into(),
            path: path.into(),
            ..Request::default()
        }
    }

    fn header<'a>(r: &'a Response, name: &str) -> Option<&'a str> {
        r.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn body(r: &Response) -> serde_json::Value {
        serde_json::from_slice(&r.body).unwrap()
    }

    #[test]
    fn serves_the_polling_shapes_without_deleted_items() {
        let r = open(&get("/sdk/latest-all"));
        assert_eq!(r.status, 200);
        assert_eq!(
            body(&r),
            json!({"flags": {"a": {"key":"a","version":1}, "b": {"key":"b","version":2}},
                   "segments": {"s": {"key":"s","version":4}}})
        );
        let r = open(&get("/sdk/latest-flags"));
        assert_eq!(body(&r).as_object().unwrap().len(), 2);
        let r = open(&get("/sdk/latest-segments/s"));
        assert_eq!(body(&r), json!({"key":"s","version":4}));
        let r = open(&get("/sdk/latest-flags/gone"));
        assert_eq!(r.status, 404);
        let r = open(&get("/sdk/latest-flags/absent"));
        assert_eq!(r.status, 404);
        let r = open(&get("/elsewhere"));
        assert_eq!(r.status, 404);
        let r = open(&get("/status"));
        assert_eq!(
            body(&r),
            json!({"initialized": true, "available": true, "snapshotAgeMs": 0})
        );
        assert_eq!(header(&r, "x-snapshot-age-ms"), Some("0"));
    }

    #[test]
    fn the_sdk_key_is_checked_on_every_route_and_other_methods_refused() {
        let key = || Auth::SdkKey("sdk-123".into());
        for path in ["/sdk/latest-all", "/status"] {
            let mut request = get(path);
            assert_eq!(call(&request, key(), Ok(fake())).0.status, 401, "{path}");
            request.authorization = Some(b"sdk-124".to_vec());
            assert_eq!(call(&request, key(), Ok(fake())).0.status, 401, "{path}");
            request.authorization = Some(b"sdk-123".to_vec());
            assert_eq!(call(&request, key(), Ok(fake())).0.status, 200, "{path}");
        }
        let post = Request {
            method: "POST".into(),
            ..get("/sdk/latest-all")
        };
        let r = call(&post, key(), Ok(fake())).0;
        assert_eq!(r.status, 405);
        assert!(r.headers.contains(&("allow".into(), "GET, HEAD".into())));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }

    #[test]
    fn keyed_answers_are_private_and_vary_by_authorization() {
        let key = || Auth::SdkKey("sdk-123".into());
        let mut request = get("/sdk/latest-all");
        for given in [None, Some(b"sdk-123".to_vec())] {
            request.authorization = given;
            let r = call(&request, key(), Ok(fake())).0;
            assert_eq!(header(&r, "cache-control"), Some("private"), "{}", r.status);
            assert_eq!(header(&r, "vary"), Some("Authorization"), "{}", r.status);
        }
        // Without a key, the answer is the same for everyone.
        let r = open(&get("/sdk/latest-all"));
        assert_eq!(
            (header(&r, "cache-control"), header(&r, "vary")),
            (None, None)
        );
    }

    #[test]
    fn head_is_answered_like_get_without_a_body() {
        let got = open(&get("/sdk/latest-all"));
        let head = open(&Request {
            method: "HEAD".into(),
            ..get("/sdk/latest-all")
        });
        assert_eq!((head.status, &head.headers), (200, &got.headers));
        assert!(head.body.is_empty() && !got.body.is_empty());
    }

    #[test]
    fn an_invalid_configuration_is_logged_once_per_instance() {
        let mut edge = Edge::default();
        let mut log = Vec::new();
        for path in ["/sdk/latest-all", "/status", "/sdk/evalx/contexts/e30"] {
            let r = handle(
                &get(path),
                Err("LD_SDK_KEY is unset or empty"),
                &mut edge,
                0,
                || Ok(fake()),
                &mut |line| log.push(line.to_string()),
            );
            assert_eq!(r.status, 503, "{path}");
        }
        assert_eq!(log.len(), 1, "{log:?}");
    }

    #[test]
    fn an_invalid_configuration_is_503_on_every_route_never_open() {
        for path in ["/sdk/latest-all", "/status"] {
            let mut log = String::new();
            let r = handle(
                &get(path),
                Err("LD_SDK_KEY is unset or empty"),
                &mut Edge::default(),
                0,
                || Ok(fake()),
                &mut |line| log.push_str(line),
            );
            assert_eq!(r.status, 503);
            assert!(!String::from_utf8_lossy(&r.body).contains("LD_SDK_KEY"));
            assert!(log.contains("LD_SDK_KEY is unset or empty"), "{log}");
        }
    }

    #[test]
    fn etags_revalidate_with_304() {
        let first = open(&get("/sdk/latest-all"));
        let tag = first
            .headers
            .iter()
            .find(|(k, _)| k == "etag")
            .unwrap()
            .1
            .clone();
        let mut again = get("/sdk/latest-all");
        again.if_none_match = Some(format!("\"other\", {tag}"));
        let r = open(&again);
        assert_eq!((r.status, r.body.len()), (304, 0));
        let mut changed = fake();
        changed.read.flags[0] = item("b", 3, false);
        let r = call(&again, Auth::None, Ok(changed)).0;
        assert_eq!(r.status, 200);
    }

    #[test]
    fn an_uninitialized_or_failing_store_is_503_with_the_cause_only_in_the_log() {
        let (r, log) = call(&get("/sdk/latest-all"), Auth::None, Ok(Fake::default()));
        assert_eq!(r.status, 503);
        assert_eq!(body(&r)["error"], "the data store is not initialized");
        assert!(
            log.contains("not initialized")
                && log.contains("\"flags\"")
                && log.contains("\"edge\""),
            "the log names the table and prefix read: {log}"
        );
        let failing = || Fake {
            fail: Some("DynamoDB error ResourceNotFoundException: table flags".into()),
            ..fake()
        };
        for path in ["/sdk/latest-flags", "/status"] {
            let (r, log) = call(&get(path), Auth::None, Ok(failing()));
            assert_eq!(r.status, 503);
            let text = String::from_utf8_lossy(&r.body);
            assert!(!text.contains("ResourceNotFound"), "{text}");
            assert!(log.contains("ResourceNotFoundException"), "{log}");
        }
        let (r, log) = call(&get("/sdk/latest-all"), Auth::None, Err("no table".into()));
        assert_eq!(r.status, 503);
        assert!(!String::from_utf8_lossy(&r.body).contains("no table"));
        assert!(log.contains("no table"), "{log}");
        assert!(!log.contains("s3cr3t"), "{log}");
    }

    #[test]
    fn keys_in_paths_are_percent_decoded() {
        assert_eq!(
            route("/sdk/latest-flags/a%2Eb"),
            Some(Route::Flag("a.b".into()))
        );
        assert_eq!(route("/sdk/latest-flags/a/b"), None);
        assert_eq!(route("/sdk/latest-flags/%zz"), None);
        assert_eq!(route("/sdk/latest-all/"), Some(Route::All));
    }
}
