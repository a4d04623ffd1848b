//! LaunchDarkly's evaluation API (`evalx`), as the Relay Proxy serves it: the
//! flags evaluated for one context, for the JS client SDK (by client-side
//! ID, with CORS), mobile SDKs (mobile key) and server SDKs (SDK key). The
//! evaluation itself is the flag evaluator's `all-flags-state`; this module
//! routes, authorizes, decodes the context and shapes the answer.

use serde_json::{json, Map, Value};

use crate::api::{
    age_header, constant_time_eq, error, etag, json_response, not_initialized, percent_decode,
    private, revalidate, FlagSource, Request, Response, UNAVAILABLE,
};
use crate::settings::{Auth, Settings};
use crate::snapshot::Edge;

/// Which flags an answer holds (the evaluator's `flag-filter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    /// Every flag (server SDKs).
    All,
    /// Flags available to client-side IDs.
    ClientSide,
    /// Flags available to mobile keys.
    Mobile,
}

/// Why an evaluation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvalFailure {
    /// The context is malformed or has no key: the caller's fault (400),
    /// in the evaluator's words (which begin "invalid context").
    InvalidContext(String),
    /// The store failed (503; the message goes to the log only).
    Store(String),
    /// The answer took longer than its time budget, in milliseconds (503,
    /// and a log line).
    OverBudget(u32),
}

/// The largest REPORT body read, in bytes; a longer one is answered 413.
/// A context is a few hundred bytes; 16 KiB holds any within the limits of
/// [`crate::context_limits`] that targeting needs, and refusing more before
/// parsing keeps a refusal cheap.
pub const MAX_BODY: usize = 16 * 1024;

/// Who is asking, by route family.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Caller {
    /// The JS client SDK, by client-side ID.
    Browser(String),
    /// A mobile SDK, with the mobile key.
    Mobile,
    /// A server SDK, with the SDK key (a Relay Proxy route).
    Server,
}

/// What a route asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ask {
    /// Flags for the context in the path (base64url JSON): GET.
    Path(String),
    /// Flags for the context in the body: REPORT.
    Body,
    /// The JS SDK's experimentation goals (`/sdk/goals/{id}`): none here.
    Goals,
}

/// An evaluation route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    caller: Caller,
    ask: Ask,
}

/// The evaluation route of a path, if it is one.
pub fn route(path: &str) -> Option<Route> {
    let segments: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
    let ask = |rest: &[&str]| match rest {
        ["contexts" | "users", context] if !context.is_empty() => {
            Some(Ask::Path(context.to_string()))
        }
        ["context" | "user"] => Some(Ask::Body),
        _ => None,
    };
    let (caller, ask) = match segments.as_slice() {
        ["sdk", "goals", id] if !id.is_empty() => (Caller::Browser(id.to_string()), Ask::Goals),
        ["msdk", "evalx", rest @ ..] => (Caller::Mobile, ask(rest)?),
        ["sdk", "evalx", rest @ ..] => match ask(rest) {
            Some(ask) => (Caller::Server, ask),
            None => match rest {
                [id, rest @ ..] if !id.is_empty() => (Caller::Browser(id.to_string()), ask(rest)?),
                _ => return None,
            },
        },
        _ => return None,
    };
    Some(Route { caller, ask })
}

/// `path` for a log line: the context of a GET (which may hold personal
/// attributes) is left out.
pub fn loggable(path: &str) -> String {
    match route(path) {
        Some(Route {
            ask: Ask::Path(context),
            ..
        }) => format!("{}{{context}}", &path[..path.len() - context.len()]),
        _ => path.to_string(),
    }
}

/// The methods a route answers.
fn methods(route: &Route) -> &'static str {
    match (&route.caller, &route.ask) {
        (Caller::Browser(_), Ask::Body) => "REPORT, OPTIONS",
        (Caller::Browser(_), _) => "GET, HEAD, OPTIONS",
        (_, Ask::Body) => "REPORT",
        _ => "GET, HEAD",
    }
}

/// The headers LaunchDarkly's service and the Relay Proxy send to browsers.
pub(crate) fn cors_headers(origin: Option<&str>, allow_methods: &str) -> Vec<(String, String)> {
    [
        ("access-control-allow-origin", origin.unwrap_or("*")),
        ("access-control-allow-methods", allow_methods),
        ("access-control-allow-credentials", "false"),
        ("access-control-max-age", "300"),
        (
            "access-control-allow-headers",
            "Cache-Control,Content-Type,Content-Length,Accept-Encoding,\
             X-LaunchDarkly-User-Agent,X-LaunchDarkly-Payload-ID,X-LaunchDarkly-Wrapper,\
             X-LaunchDarkly-Event-Schema,X-LaunchDarkly-Tags",
        ),
        ("access-control-expose-headers", "Date"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Answers an evaluation route; JS routes carry the CORS headers on every
/// answer, errors included, so a browser script sees the status.
pub fn respond<S: FlagSource>(
    request: &Request,
    route: &Route,
    settings: Result<&Settings, &str>,
    edge: &mut Edge<S>,
    now: u64,
    open: impl FnOnce() -> Result<S, String>,
    log: &mut dyn FnMut(&str),
) -> Response {
    let mut response = answer(request, route, settings, edge, now, open, log);
    match route.caller {
        Caller::Browser(_) => {
            let origin = request.origin.as_deref().filter(|o| !o.is_empty());
            response
                .headers
                .extend(cors_headers(origin, methods(route)));
            response.headers.push(("vary".into(), "Origin".into()));
        }
        // The answer depends on the key in `Authorization`.
        Caller::Mobile => private(&mut response),
        Caller::Server => {
            if let Ok(Settings {
                auth: Auth::SdkKey(_),
                ..
            }) = settings
            {
                private(&mut response)
            }
        }
    }
    response
}

fn answer<S: FlagSource>(
    request: &Request,
    route: &Route,
    settings: Result<&Settings, &str>,
    edge: &mut Edge<S>,
    now: u64,
    open: impl FnOnce() -> Result<S, String>,
    log: &mut dyn FnMut(&str),
) -> Response {
    let allowed = methods(route);
    let method = request.method.as_str();
    if !allowed.split(", ").any(|m| m == method) {
        let mut response = error(405, &format!("this route answers {allowed}"));
        response.headers.push(("allow".into(), allowed.into()));
        return response;
    }
    let settings = match settings {
        Ok(settings) => settings,
        Err(e) => return crate::api::not_configured(edge, e, log),
    };
    let filter = match &route.caller {
        Caller::Browser(id) => {
            if settings.client_side_id.as_deref() != Some(id.as_str()) {
                return error(404, "unknown client-side ID");
            }
            Filter::ClientSide
        }
        Caller::Mobile => {
            let Some(key) = &settings.mobile_key else {
                return error(
                    404,
                    "the mobile routes are off: no mobile key is configured",
                );
            };
            if !constant_time_eq(given_key(request), key.as_bytes()) {
                return error(
                    401,
                    "the Authorization header does not hold a valid mobile key",
                );
            }
            Filter::Mobile
        }
        Caller::Server => {
            if let Auth::SdkKey(key) = &settings.auth {
                if !constant_time_eq(given_key(request), key.as_bytes()) {
                    return error(
                        401,
                        "the Authorization header does not hold a valid SDK key",
                    );
                }
            }
            Filter::All
        }
    };
    if method == "OPTIONS" {
        return Response {
            status: 200,
            headers: Vec::new(),
            body: Vec::new(),
        };
    }
    let context = match &route.ask {
        Ask::Goals => return json_response(200, &json!([])),
        Ask::Path(encoded) => match decode_context(encoded) {
            Some(context) => context,
            None => return error(400, "the context in the path is not base64url JSON"),
        },
        Ask::Body => match body_context(request) {
            Ok(context) => context,
            Err(response) => return response,
        },
    };
    if context.len() > MAX_BODY {
        return error(413, &format!("the context is larger than {MAX_BODY} bytes"));
    }
    if let Err(why) = crate::context_limits::check(&context) {
        return error(400, &format!("the context is over a limit: {why}"));
    }
    let query = |name: &str| query_param(request.query.as_deref(), name);
    let where_ = settings.describe();
    let current = match edge.current(settings, now, open, log) {
        Ok(current) => current,
        Err(response) => return response,
    };
    let (source, age_ms) = (current.source, current.age_ms);
    let failed = |e: EvalFailure, log: &mut dyn FnMut(&str)| match e {
        // The evaluator's message names the context already.
        EvalFailure::InvalidContext(m) => error(400, &m),
        EvalFailure::Store(e) => {
            log(&format!(
                "edge-flags: the data store failed ({where_}): {e}"
            ));
            error(503, UNAVAILABLE)
        }
        EvalFailure::OverBudget(ms) => {
            log(&format!(
                "edge-flags: an evaluation answer was stopped after its time budget of {ms} ms \
                 (request-budget-ms) and answered 503"
            ));
            error(503, UNAVAILABLE)
        }
    };
    if let (Caller::Browser(_), Some(key)) = (&route.caller, &settings.secure_mode_key) {
        let expected = match source.secure_mode_hash(&context, key) {
            Ok(hash) => hash,
            Err(e) => return failed(e, log),
        };
        let given = query("h").unwrap_or_default();
        if !constant_time_eq(given.as_bytes(), expected.as_bytes()) {
            return error(
                400,
                "secure mode is on: `h` must be the context's secure-mode hash",
            );
        }
    }
    let with_reasons = query("withReasons").as_deref() == Some("true");
    let state = match source.all_flags_state(&context, filter, with_reasons) {
        Ok(state) => state,
        Err(e) => return failed(e, log),
    };
    let Some(body) = evalx_body(&state) else {
        return not_initialized(&where_, log);
    };
    let tag = etag(&body);
    let mut response = revalidate(request, body, tag);
    age_header(&mut response, age_ms);
    response
}

/// The key in `Authorization`, with or without the `api_key ` scheme that
/// LaunchDarkly's mobile SDKs send.
pub(crate) fn given_key(request: &Request) -> &[u8] {
    let given = request.authorization.as_deref().unwrap_or_default();
    given.strip_prefix(b"api_key ").unwrap_or(given)
}

/// The context of a REPORT: the body, as JSON (`Content-Type:
/// application/json`, else 415).
fn body_context(request: &Request) -> Result<String, Response> {
    let media_type = request
        .content_type
        .as_deref()
        .and_then(|t| t.split(';').next())
        .map(|t| t.trim().to_ascii_lowercase());
    if media_type.as_deref() != Some("application/json") {
        return Err(error(415, "the context must be sent as application/json"));
    }
    if request.body.len() > MAX_BODY {
        return Err(error(
            413,
            &format!("the context is larger than {MAX_BODY} bytes"),
        ));
    }
    String::from_utf8(request.body.clone()).map_err(|_| error(400, "the context is not UTF-8"))
}

/// A context from a path segment: base64url (or standard base64) JSON,
/// padded or not, possibly percent-escaped.
fn decode_context(segment: &str) -> Option<String> {
    let text = percent_decode(segment)?;
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for byte in text.trim_end_matches('=').bytes() {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(value);
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A query parameter's value, percent-decoded (`+` is a space).
fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then(|| percent_decode(&value.replace('+', " ")))?
    })
}

/// The evalx answer from the evaluator's `allFlagsState` JSON: each flag
/// key to `{value, variation, version, trackEvents?, trackReason?, reason?,
/// debugEventsUntilDate?, prerequisites?}`, as the Relay Proxy sends it.
/// `None` when the data is not initialized (`$valid` false).
fn evalx_body(state_json: &str) -> Option<Vec<u8>> {
    let Ok(Value::Object(mut state)) = serde_json::from_str::<Value>(state_json) else {
        return None;
    };
    if state.get("$valid") != Some(&Value::Bool(true)) {
        return None;
    }
    let Some(Value::Object(metadata)) = state.remove("$flagsState") else {
        return None;
    };
    let mut out = Map::new();
    for (key, meta) in metadata {
        let Value::Object(meta) = meta else { continue };
        let mut flag = Map::new();
        flag.insert("value".into(), state.remove(&key).unwrap_or(Value::Null));
        flag.insert("variation".into(), Value::Null);
        flag.extend(meta);
        out.insert(key, Value::Object(flag));
    }
    Some(Value::Object(out).to_string().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::handle;
    use crate::snapshot::{Freshness, Read, Snapshot};
    use std::cell::RefCell;
    use std::rc::Rc;

    type Asked = Rc<RefCell<Vec<(String, Filter, bool)>>>;

    /// A flag source whose evaluator answers a fixed state, recording the
    /// context and options it was asked for.
    struct Fake {
        state: String,
        asked: Asked,
        fail: Option<EvalFailure>,
    }

    impl FlagSource for Fake {
        fn read(&mut self) -> Result<Read, String> {
            Ok(Read {
                initialized: true,
                ..Read::default()
            })
        }
        fn load(&mut self, _: &Snapshot) {}
        fn all_flags_state(
            &mut self,
            context: &str,
            filter: Filter,
            with_reasons: bool,
        ) -> Result<String, EvalFailure> {
            self.asked
                .borrow_mut()
                .push((context.into(), filter, with_reasons));
            match &self.fail {
                Some(e) => Err(e.clone()),
                None if context.contains("\"key\"") => Ok(self.state.clone()),
                None => Err(EvalFailure::InvalidContext(
                    "invalid context: missing field `key`".into(),
                )),
            }
        }
        fn secure_mode_hash(&mut self, context: &str, key: &str) -> Result<String, EvalFailure> {
            Ok(format!("{key}:{}", context.len()))
        }
    }

    const STATE: &str = r#"{"a": true, "b": "x", "$flagsState": {
        "a": {"variation": 0, "version": 3, "trackEvents": true, "trackReason": true,
              "reason": {"kind": "FALLTHROUGH", "inExperiment": true}},
        "b": {"version": 7}}, "$valid": true}"#;

    fn fake() -> Fake {
        Fake {
            state: STATE.into(),
            asked: Asked::default(),
            fail: None,
        }
    }

    fn settings() -> Settings {
        Settings {
            table: "flags".into(),
            prefix: None,
            region: "us-east-1".into(),
            endpoint: None,
            access_key_id: String::new(),
            secret_access_key: String::new(),
            session_token: None,
            auth: Auth::SdkKey("sdk-1".into()),
            client_side_id: Some("env-1".into()),
            mobile_key: Some("mob-1".into()),
            secure_mode_key: None,
            freshness: Freshness {
                refresh: 0,
                max_stale: 0,
            },
            access_log: false,
            consistent_reads: false,
            request_budget_ms: 2_000,
        }
    }

    fn request(method: &str, path: &str) -> Request {
        Request {
            method: method.into(),
            path: path.into(),
            ..Request::default()
        }
    }

    fn call_with(request: &Request, settings: &Settings, source: Fake) -> Response {
        handle(
            request,
            Ok(settings),
            &mut Edge::default(),
            0,
            || Ok(source),
            &mut |_| {},
        )
    }

    fn call(request: &Request) -> (Response, Vec<(String, Filter, bool)>) {
        let source = fake();
        let asked = source.asked.clone();
        let r = call_with(request, &settings(), source);
        let asked = asked.borrow().clone();
        (r, asked)
    }

    fn header<'a>(r: &'a Response, name: &str) -> Option<&'a str> {
        r.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn body(r: &Response) -> Value {
        serde_json::from_slice(&r.body).unwrap()
    }

    const CONTEXT: &str = r#"{"kind":"user","key":"u1"}"#;
    /// `CONTEXT` in unpadded base64url (Python's `base64.urlsafe_b64encode`).
    const CONTEXT_B64: &str = "eyJraW5kIjoidXNlciIsImtleSI6InUxIn0";

    #[test]
    fn logged_paths_leave_the_context_out() {
        assert_eq!(
            loggable(&format!("/sdk/evalx/env/contexts/{CONTEXT_B64}")),
            "/sdk/evalx/env/contexts/{context}"
        );
        assert_eq!(
            loggable("/msdk/evalx/users/abc"),
            "/msdk/evalx/users/{context}"
        );
        assert_eq!(loggable("/sdk/latest-all"), "/sdk/latest-all");
    }

    #[test]
    fn routes_of_each_family() {
        let r = |p: &str| route(p).map(|r| (r.caller, r.ask));
        let path = |c: &str| Ask::Path(c.into());
        let browser = || Caller::Browser("env".into());
        assert_eq!(
            r("/sdk/evalx/env/contexts/abc"),
            Some((browser(), path("abc")))
        );
        assert_eq!(
            r("/sdk/evalx/env/users/abc"),
            Some((browser(), path("abc")))
        );
        assert_eq!(r("/sdk/evalx/env/context"), Some((browser(), Ask::Body)));
        assert_eq!(r("/sdk/evalx/env/user"), Some((browser(), Ask::Body)));
        assert_eq!(r("/sdk/goals/env"), Some((browser(), Ask::Goals)));
        assert_eq!(
            r("/msdk/evalx/contexts/abc"),
            Some((Caller::Mobile, path("abc")))
        );
        assert_eq!(r("/msdk/evalx/user"), Some((Caller::Mobile, Ask::Body)));
        assert_eq!(
            r("/sdk/evalx/users/abc"),
            Some((Caller::Server, path("abc")))
        );
        assert_eq!(r("/sdk/evalx/context"), Some((Caller::Server, Ask::Body)));
        for other in [
            "/sdk/evalx",
            "/sdk/evalx/env",
            "/sdk/evalx/env/contexts/",
            "/msdk/evalx/x/y",
            "/sdk/evalx/env/contexts/a/b",
            "/sdk/latest-all",
        ] {
            assert_eq!(r(other), None, "{other}");
        }
    }

    #[test]
    fn contexts_decode_from_base64url_padded_or_not() {
        assert_eq!(decode_context(CONTEXT_B64).as_deref(), Some(CONTEXT));
        // "{}?" has a '?' (0x3f) whose base64 holds '/', and 2 bytes need padding.
        assert_eq!(decode_context("e30_").as_deref(), Some("{}?"));
        assert_eq!(decode_context("e30/").as_deref(), Some("{}?"));
        assert_eq!(decode_context("e30").as_deref(), Some("{}"));
        assert_eq!(decode_context("e30=").as_deref(), Some("{}"));
        assert_eq!(decode_context("e30%3D").as_deref(), Some("{}"));
        assert_eq!(decode_context("e3!0"), None);
        assert_eq!(decode_context("_w"), None, "not UTF-8");
    }

    #[test]
    fn the_answer_has_relays_shape_and_is_filtered_per_family() {
        let (r, asked) = call(&request(
            "GET",
            &format!("/sdk/evalx/env-1/contexts/{}", CONTEXT_B64),
        ));
        assert_eq!(r.status, 200);
        assert_eq!(
            body(&r),
            json!({"a": {"value": true, "variation": 0, "version": 3, "trackEvents": true,
                         "trackReason": true, "reason": {"kind": "FALLTHROUGH", "inExperiment": true}},
                   "b": {"value": "x", "variation": null, "version": 7}})
        );
        assert_eq!(
            asked,
            vec![(CONTEXT.to_string(), Filter::ClientSide, false)]
        );
        let mut mobile = request(
            "GET",
            &format!("/msdk/evalx/users/{}?withReasons=true", CONTEXT_B64),
        );
        (mobile.path, mobile.query) = (
            mobile.path[..mobile.path.find('?').unwrap()].into(),
            Some("withReasons=true".into()),
        );
        mobile.authorization = Some(b"api_key mob-1".to_vec());
        let (r, asked) = call(&mobile);
        assert_eq!(r.status, 200);
        assert_eq!(asked, vec![(CONTEXT.to_string(), Filter::Mobile, true)]);
        assert_eq!(
            header(&r, "access-control-allow-origin"),
            None,
            "CORS is for the JS routes"
        );
        let mut server = request("REPORT", "/sdk/evalx/context");
        server.authorization = Some(b"sdk-1".to_vec());
        server.content_type = Some("application/json; charset=utf-8".into());
        server.body = CONTEXT.as_bytes().to_vec();
        let (r, asked) = call(&server);
        assert_eq!(r.status, 200);
        assert_eq!(asked, vec![(CONTEXT.to_string(), Filter::All, false)]);
    }

    #[test]
    fn keys_ids_and_methods_are_checked() {
        let path = format!("/msdk/evalx/contexts/{}", CONTEXT_B64);
        let mut mobile = request("GET", &path);
        assert_eq!(call(&mobile).0.status, 401);
        mobile.authorization = Some(b"sdk-1".to_vec());
        assert_eq!(
            call(&mobile).0.status,
            401,
            "an SDK key is not a mobile key"
        );
        let mut off = settings();
        off.mobile_key = None;
        mobile.authorization = Some(b"mob-1".to_vec());
        assert_eq!(call_with(&mobile, &off, fake()).status, 404);
        let mut server = request("GET", &format!("/sdk/evalx/contexts/{}", CONTEXT_B64));
        server.authorization = Some(b"mob-1".to_vec());
        assert_eq!(call(&server).0.status, 401);
        server.authorization = Some(b"api_key sdk-1".to_vec());
        assert_eq!(call(&server).0.status, 200);
        let unknown = request("GET", &format!("/sdk/evalx/env-2/contexts/{}", CONTEXT_B64));
        let r = call(&unknown).0;
        assert_eq!(r.status, 404);
        assert_eq!(header(&r, "access-control-allow-origin"), Some("*"));
        let mut off = settings();
        off.client_side_id = None;
        let known = request("GET", &format!("/sdk/evalx/env-1/contexts/{}", CONTEXT_B64));
        assert_eq!(call_with(&known, &off, fake()).status, 404);
        let r = call(&request("POST", "/sdk/evalx/env-1/context")).0;
        assert_eq!(
            (r.status, header(&r, "allow")),
            (405, Some("REPORT, OPTIONS"))
        );
        let r = call(&request("REPORT", "/sdk/evalx/env-1/contexts/e30")).0;
        assert_eq!(
            (r.status, header(&r, "allow")),
            (405, Some("GET, HEAD, OPTIONS"))
        );
        let r = call(&request("OPTIONS", "/msdk/evalx/context")).0;
        assert_eq!(r.status, 405);
    }

    #[test]
    fn preflights_and_answers_carry_cors_for_the_requesting_origin() {
        let mut preflight = request("OPTIONS", "/sdk/evalx/env-1/context");
        preflight.origin = Some("http://app.example".into());
        let (r, asked) = call(&preflight);
        assert_eq!((r.status, r.body.len(), asked.len()), (200, 0, 0));
        assert_eq!(
            header(&r, "access-control-allow-origin"),
            Some("http://app.example")
        );
        assert_eq!(
            header(&r, "access-control-allow-methods"),
            Some("REPORT, OPTIONS")
        );
        assert_eq!(header(&r, "access-control-max-age"), Some("300"));
        assert!(header(&r, "access-control-allow-headers")
            .unwrap()
            .contains("X-LaunchDarkly-User-Agent"));
        let r = call(&request("GET", "/sdk/goals/env-1")).0;
        assert_eq!((r.status, body(&r)), (200, json!([])));
        assert_eq!(header(&r, "access-control-allow-origin"), Some("*"));
    }

    #[test]
    fn bad_contexts_are_400_and_bodies_are_checked() {
        let r = call(&request("GET", "/sdk/evalx/env-1/contexts/%%%")).0;
        assert_eq!(r.status, 400);
        let no_key = "eyJraW5kIjoidXNlciIsIm5hbWUiOiJ4In0";
        let r = call(&request(
            "GET",
            &format!("/sdk/evalx/env-1/contexts/{no_key}"),
        ))
        .0;
        assert_eq!(r.status, 400);
        // The evaluator's words, once.
        assert_eq!(body(&r)["error"], "invalid context: missing field `key`");
        let mut report = request("REPORT", "/sdk/evalx/env-1/context");
        report.body = CONTEXT.as_bytes().to_vec();
        assert_eq!(call(&report).0.status, 415);
        report.content_type = Some("text/plain".into());
        assert_eq!(call(&report).0.status, 415);
        report.content_type = Some("Application/JSON".into());
        assert_eq!(call(&report).0.status, 200);
        report.body = vec![b' '; MAX_BODY + 1];
        assert_eq!(call(&report).0.status, 413);
        report.body = vec![0xff];
        assert_eq!(call(&report).0.status, 400);
    }

    #[test]
    fn secure_mode_requires_the_hash_of_the_context() {
        let mut secure = settings();
        secure.secure_mode_key = Some("sdk-1".into());
        let path = format!("/sdk/evalx/env-1/contexts/{}", CONTEXT_B64);
        let mut get = request("GET", &path);
        assert_eq!(call_with(&get, &secure, fake()).status, 400);
        get.query = Some(format!("h=sdk-1:{}", CONTEXT.len() + 1));
        assert_eq!(call_with(&get, &secure, fake()).status, 400);
        get.query = Some(format!("h=sdk-1%3A{}&withReasons=false", CONTEXT.len()));
        assert_eq!(call_with(&get, &secure, fake()).status, 200);
        let mut server = request("GET", &format!("/sdk/evalx/contexts/{}", CONTEXT_B64));
        server.authorization = Some(b"sdk-1".to_vec());
        assert_eq!(
            call_with(&server, &secure, fake()).status,
            200,
            "JS routes only"
        );
    }

    #[test]
    fn etags_revalidate_and_failures_are_503_without_detail() {
        let path = format!("/sdk/evalx/env-1/contexts/{}", CONTEXT_B64);
        let first = call(&request("GET", &path)).0;
        let mut again = request("GET", &path);
        again.if_none_match = header(&first, "etag").map(str::to_string);
        let r = call(&again).0;
        assert_eq!((r.status, r.body.len()), (304, 0));
        assert_eq!(header(&r, "access-control-allow-origin"), Some("*"));
        let mut log = String::new();
        let failing = Fake {
            fail: Some(EvalFailure::Store(
                "DynamoDB error ResourceNotFoundException".into(),
            )),
            ..fake()
        };
        let r = handle(
            &request("GET", &path),
            Ok(&settings()),
            &mut Edge::default(),
            0,
            || Ok(failing),
            &mut |l| log.push_str(l),
        );
        assert_eq!(r.status, 503);
        assert!(!String::from_utf8_lossy(&r.body).contains("ResourceNotFound"));
        assert!(log.contains("ResourceNotFoundException"), "{log}");
        let mut log = String::new();
        let slow = Fake {
            fail: Some(EvalFailure::OverBudget(2_000)),
            ..fake()
        };
        let r = handle(
            &request("GET", &path),
            Ok(&settings()),
            &mut Edge::default(),
            0,
            || Ok(slow),
            &mut |l| log.push_str(l),
        );
        assert_eq!(r.status, 503);
        assert!(
            log.contains("stopped after its time budget of 2000 ms (request-budget-ms)"),
            "{log}"
        );
        let empty = Fake {
            state: r#"{"$flagsState": {}, "$valid": false}"#.into(),
            ..fake()
        };
        let r = call_with(&request("GET", &path), &settings(), empty);
        assert_eq!(
            (r.status, body(&r)["error"].as_str()),
            (503, Some("the data store is not initialized"))
        );
        let r = handle(
            &request("GET", &path),
            Err("LD_SDK_KEY is unset"),
            &mut Edge::default(),
            0,
            || Ok(fake()),
            &mut |_| {},
        );
        assert_eq!(r.status, 503);
    }
}
