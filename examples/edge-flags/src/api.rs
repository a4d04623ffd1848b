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

/// Every item of some kinds (tombstones included), and whether the data is
/// initialized, read together.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub initialized: bool,
    /// The items of each kind asked, in the order asked.
    pub kinds: Vec<Vec<(String, Item)>>,
}

/// Where flags and segments come from (the data store in the component).
/// Errors are messages that carry no secret.
pub trait FlagSource {
    fn is_initialized(&mut self) -> Result<bool, String>;
    /// The kinds and the marker in one round trip.
    fn snapshot(&mut self, kinds: &[&str]) -> Result<Snapshot, String>;
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

/// The body of a 503 whose cause is in the log: a response never carries the
/// store's error text (table names, request ids, configuration).
const UNAVAILABLE: &str = "the data store is unavailable; the server's log says why";
const NOT_CONFIGURED: &str = "the server is not configured; its log says why";

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
    let mut source = match open() {
        Ok(source) => source,
        Err(e) => {
            log(&format!(
                "edge-flags: cannot open the data store ({where_}): {e}"
            ));
            return error(503, UNAVAILABLE);
        }
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
        log(&format!(
            "edge-flags: the data store is not initialized ({where_}): no $inited marker \
             under that prefix; load data with `ld-dynamodb init`, or check the prefix"
        ));
        return error(503, "the data store is not initialized");
    }
    let Some(body) = body(snapshot.kinds, &route) else {
        return error(404, "not found");
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

/// How requests are authorized.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    /// The `Authorization` header must equal this SDK key.
    SdkKey(String),
    /// No key: every route is open (configured as `auth=none`).
    None,
}

/// What the app reads: non-secret settings from `wasi:config/store`, secrets
/// from the environment (`wasi:cli/environment`), so that no secret is ever
/// on the host's command line.
#[derive(Clone, PartialEq, Eq)]
pub struct Settings {
    pub table: String,
    pub prefix: Option<String>,
    pub region: String,
    pub endpoint: Option<String>,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
    pub auth: Auth,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("table", &self.table)
            .field("prefix", &self.prefix)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("access_key_id", &self.access_key_id)
            .field("auth", &matches!(self.auth, Auth::SdkKey(_)))
            .finish_non_exhaustive()
    }
}

/// Secrets, each read from its environment variable, never from `wasi:config`.
const SECRETS: &[(&str, &str)] = &[
    ("aws-access-key-id", "AWS_ACCESS_KEY_ID"),
    ("aws-secret-access-key", "AWS_SECRET_ACCESS_KEY"),
    ("aws-session-token", "AWS_SESSION_TOKEN"),
    ("sdk-key", "LD_SDK_KEY"),
];

/// The environment variable of the SDK key.
pub const SDK_KEY_VAR: &str = "LD_SDK_KEY";

/// Whether `value` can be a key in an HTTP header: visible ASCII, no spaces.
fn well_formed_key(value: &str) -> bool {
    !value.is_empty() && value.bytes().all(|b| b.is_ascii_graphic())
}

impl Settings {
    /// Reads the settings: `config` gives `wasi:config` values (`table` and
    /// `region` required; `prefix`, `endpoint`, `auth` optional), `env` the
    /// environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_SESSION_TOKEN`, `LD_SDK_KEY`).
    ///
    /// `auth` is `sdk-key` (the default: `LD_SDK_KEY` must hold a well-formed
    /// key) or `none` (serve without a key, an explicit choice). A secret
    /// given through `wasi:config`, an empty or malformed key, or another
    /// `auth` is an error: the server then answers 503, never openly.
    pub fn read(
        mut config: impl FnMut(&str) -> Result<Option<String>, String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Settings, String> {
        for (key, var) in SECRETS {
            if config(key)?.is_some() {
                return Err(format!(
                    "{key:?} is a secret and is not read from wasi:config (it would be on the \
                     host's command line): set {var} in the host's environment and pass it \
                     with `--env {var}`"
                ));
            }
        }
        let mut optional = |key: &str| -> Result<Option<String>, String> {
            Ok(config(key)?.filter(|v| !v.is_empty()))
        };
        let table = optional("table")?;
        let region = optional("region")?;
        let (Some(table), Some(region)) = (table, region) else {
            return Err(
                "the configuration needs \"table\" and \"region\" (`-S config-var=table=...`)"
                    .into(),
            );
        };
        let auth = match optional("auth")?.as_deref() {
            None | Some("sdk-key") => match env(SDK_KEY_VAR) {
                Some(key) if well_formed_key(&key) => Auth::SdkKey(key),
                Some(key) if !key.is_empty() => {
                    return Err(format!(
                        "{SDK_KEY_VAR} is malformed: an SDK key is visible ASCII without spaces"
                    ))
                }
                _ => {
                    return Err(format!(
                        "{SDK_KEY_VAR} is unset or empty: set it and pass it with \
                         `--env {SDK_KEY_VAR}`, or configure `auth=none` to serve without a key"
                    ))
                }
            },
            Some("none") => Auth::None,
            Some(other) => {
                return Err(format!(
                    "auth={other:?} is not known: use \"sdk-key\" (the default) or \"none\""
                ))
            }
        };
        let secret = |var: &str| env(var).filter(|v| !v.is_empty());
        Ok(Settings {
            table,
            region,
            prefix: optional("prefix")?,
            endpoint: optional("endpoint")?,
            access_key_id: secret("AWS_ACCESS_KEY_ID").unwrap_or_default(),
            secret_access_key: secret("AWS_SECRET_ACCESS_KEY").unwrap_or_default(),
            session_token: secret("AWS_SESSION_TOKEN"),
            auth,
        })
    }

    /// Where the data is read, for log lines: table, prefix, region and
    /// endpoint (never a secret).
    pub fn describe(&self) -> String {
        format!(
            "table {:?}, prefix {:?}, region {:?}, endpoint {}",
            self.table,
            self.prefix.as_deref().unwrap_or(""),
            self.region,
            self.endpoint
                .as_deref()
                .map_or("DynamoDB's public endpoint".to_string(), |e| format!(
                    "{e:?}"
                ))
        )
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

    fn read(config: &[(&str, &str)], env: &[(&str, &str)]) -> Result<Settings, String> {
        let config: HashMap<String, String> = config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::read(|k| Ok(config.get(k).cloned()), |k| env.get(k).cloned())
    }

    #[test]
    fn settings_take_secrets_from_the_environment_and_hide_them_in_debug() {
        let base = [("table", "t"), ("region", "us-east-1"), ("prefix", "")];
        let env = [
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", "s3cr3t"),
            ("LD_SDK_KEY", "sdk-k3y"),
        ];
        let settings = read(&base, &env).unwrap();
        assert_eq!(settings.prefix, None);
        assert_eq!(settings.secret_access_key, "s3cr3t");
        assert!(settings.auth == Auth::SdkKey("sdk-k3y".into()));
        let shown = format!("{settings:?}");
        assert!(
            !shown.contains("s3cr3t") && !shown.contains("sdk-k3y"),
            "{shown}"
        );
        let err = read(&[("table", "t")], &env).unwrap_err();
        assert!(err.contains("region"));
    }

    #[test]
    fn an_empty_or_malformed_key_or_a_secret_in_config_is_an_error() {
        let base = [("table", "t"), ("region", "us-east-1")];
        let err = read(&base, &[]).unwrap_err();
        assert!(
            err.contains("LD_SDK_KEY is unset") && err.contains("auth=none"),
            "{err}"
        );
        let err = read(&base, &[("LD_SDK_KEY", "")]).unwrap_err();
        assert!(err.contains("LD_SDK_KEY is unset or empty"), "{err}");
        let err = read(&base, &[("LD_SDK_KEY", "sdk key\n")]).unwrap_err();
        assert!(
            err.contains("malformed") && !err.contains("sdk key"),
            "{err}"
        );
        for (key, var) in SECRETS {
            let mut config = base.to_vec();
            config.push((key, "x"));
            let err = read(&config, &[("LD_SDK_KEY", "sdk-1")]).unwrap_err();
            assert!(err.contains(&format!("--env {var}")), "{err}");
        }
        let mut none = base.to_vec();
        none.push(("auth", "none"));
        assert!(read(&none, &[]).unwrap().auth == Auth::None);
        let mut odd = base.to_vec();
        odd.push(("auth", "sometimes"));
        assert!(read(&odd, &[]).unwrap_err().contains("auth=\"sometimes\""));
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
