//! LaunchDarkly's server-side polling API over a flag source, as plain Rust:
//! routing, the SDK-key check, ETag revalidation and the JSON shapes. The
//! component glue (`component`) maps `wasi:http` onto it.

use serde_json::json;

/// A stored item, as the store returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub version: u64,
    pub deleted: bool,
    pub json: String,
}

/// Where flags and segments come from (the data store in the component).
/// Errors are messages that carry no secret.
pub trait FlagSource {
    fn is_initialized(&mut self) -> Result<bool, String>;
    fn get(&mut self, kind: &str, key: &str) -> Result<Option<Item>, String>;
    fn get_all(&mut self, kind: &str) -> Result<Vec<(String, Item)>, String>;
}

/// What the handler reads of a request.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub method: String,
    /// The path, without the query.
    pub path: String,
    pub authorization: Option<Vec<u8>>,
    pub if_none_match: Option<String>,
}

/// A response to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

const FLAGS: &str = "features";
const SEGMENTS: &str = "segments";

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
fn percent_decode(text: &str) -> Option<String> {
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

fn json_response(status: u16, body: &serde_json::Value) -> Response {
    Response {
        status,
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.to_string().into_bytes(),
    }
}

fn error(status: u16, message: &str) -> Response {
    json_response(status, &json!({ "error": message }))
}

/// Answers one request. `sdk_key` is the configured key (`None`: no check);
/// `open` gives the flag source, or a message when it cannot be had
/// (configuration missing or invalid), which is a 503.
pub fn handle<S: FlagSource>(
    request: &Request,
    sdk_key: Option<&str>,
    open: impl FnOnce() -> Result<S, String>,
) -> Response {
    if request.method != "GET" {
        let mut response = error(405, "only GET is supported");
        response.headers.push(("allow".into(), "GET".into()));
        return response;
    }
    let Some(route) = route(&request.path) else {
        return error(404, "not found");
    };
    if route != Route::Status {
        if let Some(key) = sdk_key {
            let given = request.authorization.as_deref().unwrap_or_default();
            if !constant_time_eq(given, key.as_bytes()) {
                return error(
                    401,
                    "the Authorization header does not hold a valid SDK key",
                );
            }
        }
    }
    let mut source = match open() {
        Ok(source) => source,
        Err(e) => return error(503, &e),
    };
    if route == Route::Status {
        return match source.is_initialized() {
            Ok(initialized) => json_response(
                200,
                &json!({ "initialized": initialized, "available": true }),
            ),
            Err(e) => json_response(
                503,
                &json!({ "initialized": false, "available": false, "error": e }),
            ),
        };
    }
    match source.is_initialized() {
        Ok(true) => {}
        Ok(false) => return error(503, "the data store is not initialized"),
        Err(e) => return error(503, &e),
    }
    let body = match body(&mut source, &route) {
        Ok(Some(body)) => body,
        Ok(None) => return error(404, "not found"),
        Err(e) => return error(503, &e),
    };
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

/// The JSON of a route: `None` for an absent or deleted item.
fn body<S: FlagSource>(source: &mut S, route: &Route) -> Result<Option<Vec<u8>>, String> {
    let one = |source: &mut S, kind: &str, key: &str| {
        Ok(source
            .get(kind, key)?
            .filter(|item| !item.deleted)
            .map(|item| item.json.into_bytes()))
    };
    Ok(Some(match route {
        Route::All => {
            let mut out = b"{\"flags\":".to_vec();
            out.extend(collection(source.get_all(FLAGS)?));
            out.extend(b",\"segments\":");
            out.extend(collection(source.get_all(SEGMENTS)?));
            out.push(b'}');
            out
        }
        Route::Flags => collection(source.get_all(FLAGS)?),
        Route::Segments => collection(source.get_all(SEGMENTS)?),
        Route::Flag(key) => return one(source, FLAGS, key),
        Route::Segment(key) => return one(source, SEGMENTS, key),
        Route::Status => unreachable!("answered before"),
    }))
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

/// What the app reads from `wasi:config/store`.
#[derive(Clone, PartialEq, Eq)]
pub struct Settings {
    pub table: String,
    pub prefix: Option<String>,
    pub region: String,
    pub endpoint: Option<String>,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
    pub sdk_key: Option<String>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("table", &self.table)
            .field("prefix", &self.prefix)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// The configuration keys, read with `get`: `table` and `region` are
    /// required; `prefix`, `endpoint`, `aws-access-key-id`,
    /// `aws-secret-access-key`, `aws-session-token` and `sdk-key` are optional
    /// (the store rejects missing credentials itself).
    pub fn read(
        mut get: impl FnMut(&str) -> Result<Option<String>, String>,
    ) -> Result<Settings, String> {
        let mut optional = |key: &str| -> Result<Option<String>, String> {
            Ok(get(key)?.filter(|v| !v.is_empty()))
        };
        let table = optional("table")?;
        let region = optional("region")?;
        let (Some(table), Some(region)) = (table, region) else {
            return Err("the configuration needs \"table\" and \"region\"".into());
        };
        Ok(Settings {
            table,
            region,
            prefix: optional("prefix")?,
            endpoint: optional("endpoint")?,
            access_key_id: optional("aws-access-key-id")?.unwrap_or_default(),
            secret_access_key: optional("aws-secret-access-key")?.unwrap_or_default(),
            session_token: optional("aws-session-token")?,
            sdk_key: optional("sdk-key")?,
        })
    }
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
        calls: usize,
    }

    impl FlagSource for Fake {
        fn is_initialized(&mut self) -> Result<bool, String> {
            self.calls += 1;
            match &self.fail {
                Some(e) => Err(e.clone()),
                None => Ok(self.initialized),
            }
        }
        fn get(&mut self, kind: &str, key: &str) -> Result<Option<Item>, String> {
            self.calls += 1;
            Ok(self
                .items
                .get(kind)
                .and_then(|items| items.iter().find(|(k, _)| k == key))
                .map(|(_, item)| item.clone()))
        }
        fn get_all(&mut self, kind: &str) -> Result<Vec<(String, Item)>, String> {
            self.calls += 1;
            Ok(self.items.get(kind).cloned().unwrap_or_default())
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
        let r = handle(&get("/sdk/latest-all"), None, || Ok(fake()));
        assert_eq!(r.status, 200);
        assert_eq!(
            body(&r),
            json!({"flags": {"a": {"key":"a","version":1}, "b": {"key":"b","version":2}},
                   "segments": {"s": {"key":"s","version":4}}})
        );
        let r = handle(&get("/sdk/latest-flags"), None, || Ok(fake()));
        assert_eq!(body(&r).as_object().unwrap().len(), 2);
        let r = handle(&get("/sdk/latest-segments/s"), None, || Ok(fake()));
        assert_eq!(body(&r), json!({"key":"s","version":4}));
        let r = handle(&get("/sdk/latest-flags/gone"), None, || Ok(fake()));
        assert_eq!(r.status, 404);
        let r = handle(&get("/sdk/latest-flags/absent"), None, || Ok(fake()));
        assert_eq!(r.status, 404);
        let r = handle(&get("/elsewhere"), None, || Ok(fake()));
        assert_eq!(r.status, 404);
        let r = handle(&get("/status"), Some("key"), || Ok(fake()));
        assert_eq!(body(&r), json!({"initialized": true, "available": true}));
    }

    #[test]
    fn the_sdk_key_is_checked_and_other_methods_refused() {
        let mut request = get("/sdk/latest-all");
        assert_eq!(handle(&request, Some("sdk-123"), || Ok(fake())).status, 401);
        request.authorization = Some(b"sdk-124".to_vec());
        assert_eq!(handle(&request, Some("sdk-123"), || Ok(fake())).status, 401);
        request.authorization = Some(b"sdk-123".to_vec());
        assert_eq!(handle(&request, Some("sdk-123"), || Ok(fake())).status, 200);
        let post = Request {
            method: "POST".into(),
            ..request
        };
        assert_eq!(handle(&post, Some("sdk-123"), || Ok(fake())).status, 405);
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }

    #[test]
    fn etags_revalidate_with_304() {
        let first = handle(&get("/sdk/latest-all"), None, || Ok(fake()));
        let tag = first
            .headers
            .iter()
            .find(|(k, _)| k == "etag")
            .unwrap()
            .1
            .clone();
        let mut again = get("/sdk/latest-all");
        again.if_none_match = Some(format!("\"other\", {tag}"));
        let r = handle(&again, None, || Ok(fake()));
        assert_eq!((r.status, r.body.len()), (304, 0));
        let mut changed = fake();
        changed.items.get_mut(FLAGS).unwrap()[0] = item("b", 3, false);
        let r = handle(&again, None, || Ok(changed));
        assert_eq!(r.status, 200);
    }

    #[test]
    fn an_uninitialized_or_failing_store_is_503() {
        let uninitialized = Fake::default();
        let r = handle(&get("/sdk/latest-all"), None, || Ok(uninitialized));
        assert_eq!(r.status, 503);
        assert_eq!(body(&r)["error"], "the data store is not initialized");
        let failing = Fake {
            fail: Some("transport error: connection-refused".into()),
            ..fake()
        };
        let r = handle(&get("/sdk/latest-flags"), None, || Ok(failing));
        assert_eq!(r.status, 503);
        let r = handle(&get("/sdk/latest-all"), None, || {
            Err::<Fake, _>("no table".into())
        });
        assert_eq!(
            (r.status, body(&r)["error"].as_str()),
            (503, Some("no table"))
        );
    }

    #[test]
    fn settings_need_table_and_region_and_hide_secrets_in_debug() {
        let mut values = HashMap::from([
            ("table", "t"),
            ("region", "us-east-1"),
            ("aws-secret-access-key", "s3cr3t"),
            ("sdk-key", "sdk-k3y"),
            ("prefix", ""),
        ]);
        let settings = Settings::read(|k| Ok(values.get(k).map(|v| v.to_string()))).unwrap();
        assert_eq!(settings.prefix, None);
        let shown = format!("{settings:?}");
        assert!(
            !shown.contains("s3cr3t") && !shown.contains("sdk-k3y"),
            "{shown}"
        );
        values.remove("region");
        let err = Settings::read(|k| Ok(values.get(k).map(|v| v.to_string()))).unwrap_err();
        assert!(err.contains("region"));
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
