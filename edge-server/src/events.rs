//! The Relay Proxy's event routes, as plain Rust: SDKs post their analytics
//! events here and the app forwards each payload unchanged to the events
//! service (`events-uri`), at the same path, with the headers the service
//! reads. Each route takes its family's credential:
//! - `/bulk`, `/diagnostic`: the SDK key (server SDKs);
//! - `/mobile`, `/mobile/events`, `/mobile/events/bulk`,
//!   `/mobile/events/diagnostic`: the mobile key (`api_key ` prefix or not);
//! - `/events/bulk/{envId}`, `/events/diagnostic/{envId}`, `/a/{envId}.gif`:
//!   the client-side ID in the path, with CORS for browsers.
//!
//! The answer is 202 once the service accepted the payload, the service's
//! own 4xx when it refused it (an SDK stops on a refused key), 503 when it
//! could not be reached or failed, and 413 for a body over
//! [`MAX_EVENTS_BODY`].

use crate::api::{constant_time_eq, error, Request, Response};
use crate::evalx::{cors_headers, given_key};
use crate::settings::{Auth, Settings};

/// The largest payload forwarded: 4 MiB (a server SDK's full queue of
/// 10,000 small events fits).
pub const MAX_EVENTS_BODY: usize = 4 * 1024 * 1024;

/// The request headers passed on to the events service.
pub const FORWARDED_HEADERS: [&str; 10] = [
    "authorization",
    "content-type",
    "content-encoding",
    "user-agent",
    "x-launchdarkly-event-schema",
    "x-launchdarkly-payload-id",
    "x-launchdarkly-user-agent",
    "x-launchdarkly-wrapper",
    "x-launchdarkly-unsummarized",
    "x-launchdarkly-tags",
];

/// Whose events a route takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Family {
    /// A server SDK's (`/bulk`, `/diagnostic`), authorized by an SDK key.
    Server,
    /// A mobile SDK's, authorized by a mobile key.
    Mobile,
    /// A browser's, for this client-side ID.
    Browser(String),
}

/// The family of an event route; `None` for any other path.
pub fn route(path: &str) -> Option<Family> {
    match path {
        "/bulk" | "/diagnostic" => Some(Family::Server),
        "/mobile" | "/mobile/events" | "/mobile/events/bulk" | "/mobile/events/diagnostic" => {
            Some(Family::Mobile)
        }
        _ => {
            let id = path
                .strip_prefix("/events/bulk/")
                .or_else(|| path.strip_prefix("/events/diagnostic/"))
                .or_else(|| {
                    path.strip_prefix("/a/")
                        .and_then(|r| r.strip_suffix(".gif"))
                })?;
            (!id.is_empty() && !id.contains('/')).then(|| Family::Browser(id.to_string()))
        }
    }
}

/// The events service: `http(s)://host[:port][/path]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// Whether the scheme is `https`.
    pub https: bool,
    /// `host[:port]`.
    pub authority: String,
    /// The base path, without a trailing `/`.
    pub base_path: String,
}

impl Upstream {
    /// Parses `events-uri`; a query, fragment, user info or another scheme
    /// is an error.
    pub fn parse(uri: &str) -> Result<Upstream, String> {
        let (https, rest) = match uri.split_once("://") {
            Some(("https", rest)) => (true, rest),
            Some(("http", rest)) => (false, rest),
            _ => {
                return Err(format!(
                    "events-uri={uri:?} must start with http:// or https://"
                ))
            }
        };
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let clean = uri.bytes().all(|b| b.is_ascii_graphic()) && !uri.contains(['?', '#', '@']);
        if authority.is_empty() || !clean {
            return Err(format!(
                "events-uri={uri:?} needs a host, and no user info, query, fragment or spaces"
            ));
        }
        Ok(Upstream {
            https,
            authority: authority.to_string(),
            base_path: path.trim_end_matches('/').to_string(),
        })
    }
}

/// A request to pass on to the events service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    /// The request's method (`POST`, or `GET` for a browser's image beacon).
    pub method: String,
    /// The service's base path, then the route's path and query.
    pub path_with_query: String,
    /// The [`FORWARDED_HEADERS`] the request had.
    pub headers: Vec<(String, Vec<u8>)>,
}

/// What to do with an event route's request.
#[derive(Debug)]
pub enum Step {
    /// Answer here, forwarding nothing (refused, or a CORS preflight).
    Answer(Response),
    /// Pass the request on to the events service.
    Forward(Forward),
}

/// Checks a request to an event route: the method, the family's credential
/// and the body's size; what passes is to be forwarded. `headers` are the
/// request's headers (lower-case names); `body_len` may be one byte over the
/// limit (the body is read that far).
pub fn check(
    request: &Request,
    family: &Family,
    headers: &[(String, Vec<u8>)],
    body_len: usize,
    settings: &Settings,
    upstream: &Upstream,
) -> Step {
    let gif = request.path.ends_with(".gif");
    let method = request.method.as_str();
    let allowed = match (family, gif) {
        (Family::Browser(_), true) => "GET, OPTIONS",
        (Family::Browser(_), false) => "POST, OPTIONS",
        _ => "POST",
    };
    if !allowed.split(", ").any(|m| m == method) {
        let mut response = error(405, &format!("this route answers {allowed}"));
        response.headers.push(("allow".into(), allowed.into()));
        return Step::Answer(response);
    }
    let refused = match family {
        Family::Server => match &settings.auth {
            Auth::SdkKey(key) if !constant_time_eq(given_key(request), key.as_bytes()) => {
                Some(error(
                    401,
                    "the Authorization header does not hold a valid SDK key",
                ))
            }
            _ => None,
        },
        Family::Mobile => match &settings.mobile_key {
            None => Some(error(
                404,
                "the mobile routes are off: no mobile key is configured",
            )),
            Some(key) if !constant_time_eq(given_key(request), key.as_bytes()) => Some(error(
                401,
                "the Authorization header does not hold a valid mobile key",
            )),
            Some(_) => None,
        },
        Family::Browser(id) => (settings.client_side_id.as_deref() != Some(id.as_str()))
            .then(|| error(404, "unknown client-side ID")),
    };
    if let Some(response) = refused {
        return Step::Answer(response);
    }
    if method == "OPTIONS" {
        return Step::Answer(Response {
            status: 200,
            headers: Vec::new(),
            body: Vec::new(),
        });
    }
    if body_len > MAX_EVENTS_BODY {
        return Step::Answer(error(
            413,
            &format!("an events payload is at most {MAX_EVENTS_BODY} bytes"),
        ));
    }
    let query = request
        .query
        .as_deref()
        .map_or(String::new(), |q| format!("?{q}"));
    Step::Forward(Forward {
        method: method.to_string(),
        path_with_query: format!("{}{}{query}", upstream.base_path, request.path),
        headers: headers
            .iter()
            .filter(|(name, _)| FORWARDED_HEADERS.contains(&name.as_str()))
            .cloned()
            .collect(),
    })
}

/// The answer to a forwarded payload, from the service's status or why
/// there was none (logged by the caller, not sent).
pub fn forwarded(outcome: &Result<u16, String>) -> Response {
    match outcome {
        Ok(200..=299) => Response {
            status: 202,
            headers: Vec::new(),
            body: Vec::new(),
        },
        Ok(status @ 400..=499) => error(*status, "the events service refused the payload"),
        _ => error(503, "the events service could not take the payload"),
    }
}

/// Adds CORS to a browser route's answer (errors included, so a script sees
/// the status).
pub fn finish(family: &Family, request: &Request, mut response: Response) -> Response {
    if let Family::Browser(_) = family {
        let allowed = if request.path.ends_with(".gif") {
            "GET, OPTIONS"
        } else {
            "POST, OPTIONS"
        };
        let origin = request.origin.as_deref().filter(|o| !o.is_empty());
        response.headers.extend(cors_headers(origin, allowed));
        response.headers.push(("vary".into(), "Origin".into()));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::Freshness;

    fn settings() -> Settings {
        Settings {
            table: "t".into(),
            prefix: None,
            region: "r".into(),
            endpoint: None,
            access_key_id: String::new(),
            secret_access_key: String::new(),
            session_token: None,
            auth: Auth::SdkKey("sdk-key".into()),
            client_side_id: Some("env-1".into()),
            mobile_key: Some("mob-key".into()),
            secure_mode_key: None,
            freshness: Freshness {
                refresh: 1,
                max_stale: 1,
            },
            access_log: false,
            consistent_reads: false,
            request_budget_ms: 2_000,
        }
    }

    fn request(method: &str, path: &str, authorization: Option<&str>) -> Request {
        Request {
            method: method.into(),
            path: path.into(),
            query: None,
            authorization: authorization.map(|a| a.as_bytes().to_vec()),
            origin: Some("https://app.example".into()),
            ..Request::default()
        }
    }

    fn upstream() -> Upstream {
        Upstream::parse("http://127.0.0.1:9/base/").unwrap()
    }

    fn step(r: &Request, headers: &[(String, Vec<u8>)], len: usize) -> Step {
        check(
            r,
            &route(&r.path).unwrap(),
            headers,
            len,
            &settings(),
            &upstream(),
        )
    }

    fn status(step: Step) -> u16 {
        match step {
            Step::Answer(response) => response.status,
            Step::Forward(_) => 0,
        }
    }

    #[test]
    fn routes_of_each_family() {
        for path in ["/bulk", "/diagnostic"] {
            assert_eq!(route(path), Some(Family::Server));
        }
        for path in [
            "/mobile",
            "/mobile/events",
            "/mobile/events/bulk",
            "/mobile/events/diagnostic",
        ] {
            assert_eq!(route(path), Some(Family::Mobile));
        }
        for path in ["/events/bulk/e1", "/events/diagnostic/e1", "/a/e1.gif"] {
            assert_eq!(route(path), Some(Family::Browser("e1".into())));
        }
        for path in [
            "/events/bulk/",
            "/events/bulk/a/b",
            "/a/.gif",
            "/bulk/x",
            "/sdk/latest-all",
        ] {
            assert_eq!(route(path), None, "{path}");
        }
    }

    #[test]
    fn each_family_takes_its_own_credential() {
        let ok = |s: Step| matches!(s, Step::Forward(_));
        assert!(ok(step(
            &request("POST", "/bulk", Some("sdk-key")),
            &[],
            10
        )));
        assert_eq!(
            status(step(&request("POST", "/bulk", Some("mob-key")), &[], 10)),
            401
        );
        assert_eq!(status(step(&request("POST", "/bulk", None), &[], 10)), 401);
        assert!(ok(step(
            &request("POST", "/mobile", Some("api_key mob-key")),
            &[],
            10
        )));
        assert!(ok(step(
            &request("POST", "/mobile/events/bulk", Some("mob-key")),
            &[],
            10
        )));
        assert_eq!(
            status(step(&request("POST", "/mobile", Some("sdk-key")), &[], 10)),
            401
        );
        assert!(ok(step(
            &request("POST", "/events/bulk/env-1", None),
            &[],
            10
        )));
        assert!(ok(step(&request("GET", "/a/env-1.gif", None), &[], 0)));
        assert_eq!(
            status(step(&request("POST", "/events/bulk/env-2", None), &[], 10)),
            404
        );
        // Without a mobile key the mobile routes are off; with auth=none /bulk is open.
        let mut open = settings();
        open.mobile_key = None;
        open.auth = Auth::None;
        let r = request("POST", "/mobile", Some("mob-key"));
        assert_eq!(
            status(check(&r, &Family::Mobile, &[], 1, &open, &upstream())),
            404
        );
        let r = request("POST", "/bulk", None);
        assert!(ok(check(&r, &Family::Server, &[], 1, &open, &upstream())));
    }

    #[test]
    fn methods_preflights_and_the_body_limit() {
        assert_eq!(
            status(step(&request("GET", "/bulk", Some("sdk-key")), &[], 0)),
            405
        );
        assert_eq!(
            status(step(&request("GET", "/events/bulk/env-1", None), &[], 0)),
            405
        );
        assert_eq!(
            status(step(
                &request("OPTIONS", "/events/bulk/env-1", None),
                &[],
                0
            )),
            200
        );
        assert_eq!(
            status(step(
                &request("POST", "/bulk", Some("sdk-key")),
                &[],
                MAX_EVENTS_BODY + 1
            )),
            413
        );
        let r = request("OPTIONS", "/events/bulk/env-1", None);
        let answer = finish(&Family::Browser("env-1".into()), &r, forwarded(&Ok(200)));
        let header = |name: &str| {
            answer
                .headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(
            header("access-control-allow-origin"),
            Some("https://app.example")
        );
        assert_eq!(
            header("access-control-allow-methods"),
            Some("POST, OPTIONS")
        );
    }

    #[test]
    fn the_payload_goes_to_the_same_path_with_the_sdks_headers_only() {
        let headers: Vec<(String, Vec<u8>)> = [
            ("authorization", "sdk-key"),
            ("content-type", "application/json"),
            ("x-launchdarkly-event-schema", "4"),
            ("x-launchdarkly-payload-id", "p-1"),
            ("cookie", "secret"),
            ("host", "edge"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
        .collect();
        let mut r = request("GET", "/a/env-1.gif", None);
        r.query = Some("d=e30".into());
        let Step::Forward(f) = step(&r, &headers, 0) else {
            panic!("not forwarded")
        };
        assert_eq!(
            (f.method.as_str(), f.path_with_query.as_str()),
            ("GET", "/base/a/env-1.gif?d=e30")
        );
        let names: Vec<&str> = f.headers.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "authorization",
                "content-type",
                "x-launchdarkly-event-schema",
                "x-launchdarkly-payload-id"
            ]
        );
    }

    #[test]
    fn accepted_payloads_are_202_refusals_pass_through_and_failures_are_503() {
        assert_eq!(forwarded(&Ok(202)).status, 202);
        assert_eq!(forwarded(&Ok(200)).status, 202);
        assert_eq!(forwarded(&Ok(401)).status, 401);
        assert_eq!(forwarded(&Ok(413)).status, 413);
        assert_eq!(forwarded(&Ok(500)).status, 503);
        assert_eq!(forwarded(&Err("connection refused".into())).status, 503);
    }

    #[test]
    fn events_uris() {
        let u = Upstream::parse("https://events.launchdarkly.com").unwrap();
        assert_eq!(
            (u.https, u.authority.as_str(), u.base_path.as_str()),
            (true, "events.launchdarkly.com", "")
        );
        for bad in [
            "events.launchdarkly.com",
            "ftp://x",
            "http://",
            "http://a@b",
            "http://h/?x",
            "http://h /",
        ] {
            assert!(Upstream::parse(bad).is_err(), "{bad}");
        }
    }
}
