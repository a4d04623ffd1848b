//! The app's HTTP API over a flag source, as plain Rust: LaunchDarkly's
//! server-side polling routes (routing, the SDK-key check, ETag revalidation,
//! the JSON shapes) here, the evaluation routes in [`crate::evalx`]. The
//! component glue maps `wasi:http` onto it.

use ld_dynamodb_store::model::{FLAGS_KIND as FLAGS, SEGMENTS_KIND as SEGMENTS};
use serde_json::json;

use crate::evalx::{self, EvalFailure, Filter};
use crate::settings::{Auth, Settings};

/// A stored item, as the store returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub version: u64,
    pub deleted: bool,
    pub json: String,
}

/// Every item of some kinds (tombstones included), and whether the data is
/// initialized, read together.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub initialized: bool,
    /// The items of each kind asked, in the order asked.
    pub kinds: Vec<Vec<(String, Item)>>,
}

/// Where flags and segments come from, and where they are evaluated (the
/// data store and the flag evaluator in the component). Errors are messages
/// that carry no secret.
pub trait FlagSource {
    fn is_initialized(&mut self) -> Result<bool, String>;
    /// The kinds and the marker in one round trip.
    fn snapshot(&mut self, kinds: &[&str]) -> Result<Snapshot, String>;
    /// LaunchDarkly's `allFlagsState` JSON of the flags `filter` admits for
    /// a context (the evaluator's `all-flags-state`).
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
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query, without the `?`.
    pub query: Option<String>,
    pub authorization: Option<Vec<u8>>,
    pub if_none_match: Option<String>,
    pub origin: Option<String>,
    pub content_type: Option<String>,
    /// The body of a REPORT (read up to [`evalx::MAX_BODY`] + 1 bytes);
    /// empty for other methods.
    pub body: Vec<u8>,
}

/// A response to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
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

/// Answers one request. `settings` is the configuration read for this
/// request, or why it is invalid (a 503 for every route, never an open
/// door); `open` gives the flag source for them. `log` receives what a
/// response does not show: causes of 503s and configuration errors.
pub fn handle<S: FlagSource>(
    request: &Request,
    settings: Result<&Settings, &str>,
    open: impl FnOnce() -> Result<S, String>,
    log: &mut dyn FnMut(&str),
) -> Response {
    let head = request.method == "HEAD";
    let mut response = respond(request, settings, open, log);
    if head {
        // As GET, without the body (HTTP caches revalidate with HEAD).
        response.body.clear();
    }
    response
}

fn respond<S: FlagSource>(
    request: &Request,
    settings: Result<&Settings, &str>,
    open: impl FnOnce() -> Result<S, String>,
    log: &mut dyn FnMut(&str),
) -> Response {
    if let Some(route) = evalx::route(&request.path) {
        return evalx::respond(request, &route, settings, open, log);
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
        Err(e) => {
            log(&format!("edge-flags: invalid configuration: {e}"));
            return error(503, NOT_CONFIGURED);
        }
    };
    if let Auth::SdkKey(key) = &settings.auth {
        let given = request.authorization.as_deref().unwrap_or_default();
        if !constant_time_eq(given, key.as_bytes()) {
            return error(
                401,
                "the Authorization header does not hold a valid SDK key",
            );
        }
    }
    let where_ = settings.describe();
    let mut source = match open_source(open, &where_, log) {
        Ok(source) => source,
        Err(response) => return response,
    };
    if route == Route::Status {
        return match source.is_initialized() {
            Ok(initialized) => json_response(
                200,
                &json!({ "initialized": initialized, "available": true }),
            ),
            Err(e) => {
                log(&format!(
                    "edge-flags: the data store failed ({where_}): {e}"
                ));
                json_response(503, &json!({ "initialized": false, "available": false }))
            }
        };
    }
    // One round trip: the kinds the route needs and the marker, together.
    let kinds: &[&str] = match &route {
        Route::All => &[FLAGS, SEGMENTS],
        Route::Flags | Route::Flag(_) => &[FLAGS],
        Route::Segments | Route::Segment(_) | Route::Status => &[SEGMENTS],
    };
    let snapshot = match source.snapshot(kinds) {
        Ok(snapshot) => snapshot,
        Err(e) => {
            log(&format!(
                "edge-flags: the data store failed ({where_}): {e}"
            ));
            return error(503, UNAVAILABLE);
        }
    };
    if !snapshot.initialized {
        return not_initialized(&where_, log);
    }
    let Some(body) = body(snapshot.kinds, &route) else {
        return error(404, "not found");
    };
    revalidate(request, body)
}

/// The flag source, or a 503 whose cause (`where_` the data is read) goes to
/// the log.
pub(crate) fn open_source<S>(
    open: impl FnOnce() -> Result<S, String>,
    where_: &str,
    log: &mut dyn FnMut(&str),
) -> Result<S, Response> {
    open().map_err(|e| {
        log(&format!(
            "edge-flags: cannot open the data store ({where_}): {e}"
        ));
        error(503, UNAVAILABLE)
    })
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

/// A 200 with `body` as JSON and its ETag, or a 304 when the request's
/// `If-None-Match` holds that tag.
pub(crate) fn revalidate(request: &Request, body: Vec<u8>) -> Response {
    let tag = etag(&body);
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

/// The JSON of a route from the kinds it read: `None` for an absent or
/// deleted item.
fn body(mut kinds: Vec<Vec<(String, Item)>>, route: &Route) -> Option<Vec<u8>> {
    let mut next = || kinds.drain(..1).next().unwrap_or_default();
    Some(match route {
        Route::All => {
            let mut out = b"{\"flags\":".to_vec();
            out.extend(collection(next()));
            out.extend(b",\"segments\":");
            out.extend(collection(next()));
            out.push(b'}');
            out
        }
        Route::Flags | Route::Segments | Route::Status => collection(next()),
        Route::Flag(key) | Route::Segment(key) => {
            return next()
                .into_iter()
                .find(|(k, item)| k == key && !item.deleted)
                .map(|(_, item)| item.json.into_bytes())
        }
    })
}

/// `{"key": item, ...}` of the live items, sorted by key; the items' JSON is
/// used as stored.
fn collection(mut items: Vec<(String, Item)>) -> Vec<u8> {
    items.retain(|(_, item)| !item.deleted);
    items.sort_by(|a, b| a.0.cmp(&b.0));
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[derive(Default)]
    struct Fake {
        initialized: bool,
        items: HashMap<&'static str, Vec<(String, Item)>>,
        fail: Option<String>,
    }

    impl FlagSource for Fake {
        fn is_initialized(&mut self) -> Result<bool, String> {
            match &self.fail {
                Some(e) => Err(e.clone()),
                None => Ok(self.initialized),
            }
        }
        fn snapshot(&mut self, kinds: &[&str]) -> Result<Snapshot, String> {
            if let Some(e) = &self.fail {
                return Err(e.clone());
            }
            Ok(Snapshot {
                initialized: self.initialized,
                kinds: kinds
                    .iter()
                    .map(|kind| self.items.get(kind).cloned().unwrap_or_default())
                    .collect(),
            })
        }
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
        let mut items = HashMap::new();
        items.insert(
            FLAGS,
            vec![
                item("b", 2, false),
                item("a", 1, false),
                item("gone", 3, true),
            ],
        );
        items.insert(SEGMENTS, vec![item("s", 4, false)]);
        Fake {
            initialized: true,
            items,
            ..Fake::default()
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
        }
    }

    /// `handle` with the given auth; the log lines are returned beside.
    fn call(request: &Request, auth: Auth, source: Result<Fake, String>) -> (Response, String) {
        let mut log = String::new();
        let settings = settings(auth);
        let r = handle(request, Ok(&settings), || source, &mut |line| {
            log.push_str(line);
            log.push('\n');
        });
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
        assert_eq!(body(&r), json!({"initialized": true, "available": true}));
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
    fn an_invalid_configuration_is_503_on_every_route_never_open() {
        for path in ["/sdk/latest-all", "/status"] {
            let mut log = String::new();
            let r = handle(
                &get(path),
                Err("LD_SDK_KEY is unset or empty"),
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
        changed.items.get_mut(FLAGS).unwrap()[0] = item("b", 3, false);
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
