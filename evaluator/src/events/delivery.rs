//! Sending a payload of events as the server SDKs do (js-sdk-common's
//! `EventSender`): one POST, and after a failure that may pass (no answer, a
//! 5xx, 400, 408 or 429) one retry with the same payload ID after a delay.
//! An answer that no payload can pass (401, 403 and the other 4xx but 413)
//! stops sending for good. The HTTP request is the caller's ([`Transport`]).

use super::Events;

/// The request the service is sent: a POST of JSON to `{base}/bulk` with
/// these headers, and `X-LaunchDarkly-Payload-ID` from [`payload_id`].
pub const BULK_PATH: &str = "/bulk";
/// The schema of the payloads written here.
pub const EVENT_SCHEMA: &str = "4";

/// One POST of a payload.
pub trait Transport {
    /// Posts `body` with `payload_id`: the HTTP status, or why there was
    /// none (a message without secrets).
    fn post(&mut self, body: &[u8], payload_id: &str) -> Result<u16, String>;
    /// Waits before the retry.
    fn sleep(&mut self, ms: u64);
}

/// What a flush did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Events in the payload (0: there was nothing to send).
    pub events: u32,
    /// POSTs made: 0, 1 or 2.
    pub attempts: u32,
    /// The status of the last answer, if there was one.
    pub status: Option<u16>,
    /// Whether the service accepted the payload.
    pub delivered: bool,
    /// Why not.
    pub error: Option<String>,
    /// Events dropped since the last flush because the queue was full.
    pub dropped: u64,
    /// Whether sending has stopped for good (the key was refused).
    pub stopped: bool,
}

/// How an answer is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Delivered,
    /// Another try of this payload may pass.
    Retry,
    /// This payload is refused (413); later ones may pass.
    Refused,
    /// No payload can pass: stop.
    Stop,
}

fn outcome(status: u16) -> Outcome {
    match status {
        ..=204 => Outcome::Delivered,
        413 => Outcome::Refused,
        400 | 408 | 429 => Outcome::Retry,
        401..=499 => Outcome::Stop,
        _ => Outcome::Retry,
    }
}

/// Sends what `events` holds, as one payload with `payload_id`, retried once
/// after `retry_delay_ms` when the failure may pass.
pub fn flush(
    events: &mut Events,
    transport: &mut impl Transport,
    payload_id: &str,
    retry_delay_ms: u64,
) -> Report {
    let (payload, dropped) = events.take_payload();
    let mut report = Report {
        dropped,
        stopped: events.stopped(),
        ..Report::default()
    };
    if report.stopped {
        report.error = Some("sending stopped: the events service refused the SDK key".into());
        return report;
    }
    let Some(payload) = payload else {
        return report;
    };
    report.events = payload.len() as u32;
    let body = serde_json::to_vec(&payload).unwrap_or_default();
    loop {
        report.attempts += 1;
        let outcome = match transport.post(&body, payload_id) {
            Ok(status) => {
                report.status = Some(status);
                report.error =
                    (status > 204).then(|| format!("the events service answered {status}"));
                outcome(status)
            }
            Err(why) => {
                report.status = None;
                report.error = Some(why);
                Outcome::Retry
            }
        };
        match outcome {
            Outcome::Delivered => {
                report.delivered = true;
                return report;
            }
            Outcome::Retry if report.attempts == 1 => transport.sleep(retry_delay_ms),
            Outcome::Stop => {
                events.stop();
                report.stopped = true;
                return report;
            }
            Outcome::Retry | Outcome::Refused => return report,
        }
    }
}

/// Where payloads go: LaunchDarkly's events service unless a base URI is set.
pub const DEFAULT_BASE_URI: &str = "https://events.launchdarkly.com";

/// A base URI taken apart for an HTTP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `http` or `https`.
    pub https: bool,
    /// The host, and the port when one is given (`host:port`).
    pub authority: String,
    /// The path of `{base}/bulk`.
    pub bulk_path: String,
}

impl Endpoint {
    /// `http(s)://host[:port][/path]`; anything else (a query, a fragment,
    /// user info, another scheme) is an error.
    pub fn parse(base_uri: &str) -> Result<Endpoint, String> {
        let bad = |why: &str| Err(format!("invalid events base URI {base_uri:?}: {why}"));
        let (https, rest) = if let Some(rest) = base_uri.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = base_uri.strip_prefix("http://") {
            (false, rest)
        } else {
            return bad("it must start with http:// or https://");
        };
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if authority.is_empty() || authority.contains('@') {
            return bad("it needs a host (and no user info)");
        }
        if path.contains(['?', '#']) || !base_uri.bytes().all(|b| b.is_ascii_graphic()) {
            return bad("a base URI has no query, fragment or spaces");
        }
        Ok(Endpoint {
            https,
            authority: authority.to_string(),
            bulk_path: format!("{}{BULK_PATH}", path.trim_end_matches('/')),
        })
    }
}

/// A payload ID: a version 4 UUID from 16 random bytes.
pub fn payload_id(mut bytes: [u8; 16]) -> String {
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = hex::encode(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{EventContext, EventSettings};
    use crate::parse_context;

    /// Answers from a list; records each POST's body and payload ID.
    struct Scripted {
        answers: Vec<Result<u16, String>>,
        posts: Vec<(Vec<u8>, String)>,
        slept: Vec<u64>,
    }

    impl Transport for Scripted {
        fn post(&mut self, body: &[u8], payload_id: &str) -> Result<u16, String> {
            self.posts.push((body.to_vec(), payload_id.to_string()));
            self.answers.remove(0)
        }
        fn sleep(&mut self, ms: u64) {
            self.slept.push(ms);
        }
    }

    fn scripted(answers: Vec<Result<u16, String>>) -> Scripted {
        Scripted {
            answers,
            posts: Vec::new(),
            slept: Vec::new(),
        }
    }

    fn events_with_one() -> Events {
        let mut events = Events::new(EventSettings::default());
        let json = r#"{"key":"u"}"#;
        let context = parse_context(json).unwrap();
        events.identify(&EventContext::new(&context, json), 5);
        events
    }

    #[test]
    fn a_failure_that_may_pass_is_retried_once_with_the_same_payload_id() {
        for first in [Err("connection refused".to_string()), Ok(500), Ok(429)] {
            let mut events = events_with_one();
            let mut t = scripted(vec![first, Ok(503)]);
            let report = flush(&mut events, &mut t, "id-1", 1000);
            assert_eq!(t.posts.len(), 2);
            assert_eq!(t.posts[0], t.posts[1]);
            assert_eq!(t.posts[1].1, "id-1");
            assert_eq!(t.slept, vec![1000]);
            assert_eq!(
                (
                    report.attempts,
                    report.status,
                    report.delivered,
                    report.stopped
                ),
                (2, Some(503), false, false)
            );
            // The payload is gone: nothing to send next time.
            assert_eq!(flush(&mut events, &mut t, "id-2", 1000).attempts, 0);
        }
        let mut events = events_with_one();
        let mut t = scripted(vec![Err("timeout".into()), Ok(202)]);
        let report = flush(&mut events, &mut t, "id", 1);
        assert!(report.delivered && report.error.is_none() && report.attempts == 2);
    }

    #[test]
    fn a_refused_key_stops_sending_and_413_drops_only_the_payload() {
        for status in [401, 403] {
            let mut events = events_with_one();
            let mut t = scripted(vec![Ok(status)]);
            let report = flush(&mut events, &mut t, "id", 1000);
            assert_eq!((report.attempts, report.stopped), (1, true));
            assert!(t.slept.is_empty());
            // Nothing is kept or sent after.
            let json = r#"{"key":"v"}"#;
            let context = parse_context(json).unwrap();
            events.identify(&EventContext::new(&context, json), 6);
            assert!(events.is_empty());
            let again = flush(&mut events, &mut t, "id", 1000);
            assert_eq!((again.attempts, again.stopped), (0, true));
            assert_eq!(t.posts.len(), 1);
        }
        let mut events = events_with_one();
        let mut t = scripted(vec![Ok(413)]);
        let report = flush(&mut events, &mut t, "id", 1000);
        assert_eq!((report.attempts, report.stopped), (1, false));
    }

    #[test]
    fn the_body_is_the_json_array_of_events() {
        let mut events = events_with_one();
        let mut t = scripted(vec![Ok(202)]);
        let report = flush(&mut events, &mut t, "id", 1000);
        assert_eq!((report.events, report.delivered), (1, true));
        let body: serde_json::Value = serde_json::from_slice(&t.posts[0].0).unwrap();
        assert_eq!(body[0]["kind"], "identify");
    }

    #[test]
    fn base_uris_give_the_bulk_path() {
        let e = Endpoint::parse(DEFAULT_BASE_URI).unwrap();
        assert_eq!(
            (e.https, e.authority.as_str(), e.bulk_path.as_str()),
            (true, "events.launchdarkly.com", "/bulk")
        );
        let e = Endpoint::parse("http://127.0.0.1:9000/relay/").unwrap();
        assert_eq!(
            (e.https, e.authority.as_str(), e.bulk_path.as_str()),
            (false, "127.0.0.1:9000", "/relay/bulk")
        );
        for bad in [
            "",
            "ftp://x",
            "http://",
            "http://u:p@h",
            "http://h/?q",
            "http://h /",
        ] {
            let e = Endpoint::parse(bad).unwrap_err();
            assert!(e.contains("invalid events base URI"), "{e}");
        }
    }

    #[test]
    fn payload_ids_are_version_4_uuids() {
        let id = payload_id([0xff; 16]);
        assert_eq!(id, "ffffffff-ffff-4fff-bfff-ffffffffffff");
        assert_eq!(payload_id([0; 16]), "00000000-0000-4000-8000-000000000000");
    }
}
