//! The seam between the store logic and the host: HTTP exchanges, time,
//! randomness and the error log. The component implements it over WASI
//! (`crate::sys`); unit tests implement it with scripted fakes.

use std::time::{Duration, SystemTime};

use crate::config::Timeouts;

/// A request ready to send (already signed); the body is shared, not copied, between attempts.
pub type HttpRequest = http::Request<bytes::Bytes>;
/// A complete response.
pub type HttpResponse = http::Response<Vec<u8>>;

/// Largest response body the component reads; DynamoDB pages are at most 1 MB of items.
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// The response header naming the request; the only header the stores read.
pub const REQUEST_ID: &str = "x-amzn-requestid";

/// The failure code of a response whose body exceeds [`MAX_RESPONSE_BYTES`]
/// (the `wasi:http` error-code case of the same meaning).
pub const BODY_TOO_LARGE: &str = "HTTP-response-body-size";

/// An exchange that produced no HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportFailure {
    /// The `wasi:http` `error-code` case name, such as `connection-refused`.
    pub code: String,
    /// Extra detail, when the host gave any.
    pub detail: Option<String>,
    /// Whether sending again may succeed (refused, reset, timed out, ...).
    pub retryable: bool,
}

/// What a window sends next.
// A request is moved once, from the caller into the window: boxing it would
// only add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum Next {
    /// This request, with its tag.
    Send(usize, HttpRequest),
    /// Nothing until an answer arrives (only while a request is in flight),
    /// or, if given, until this long has passed: then ask again.
    Wait(Option<Duration>),
    /// Nothing more: the window ends once the requests in flight are answered.
    Done,
}

/// Gives the next request of a window, told how many are in flight.
pub type NextRequest<'a> = dyn FnMut(usize) -> Next + 'a;
/// Takes each answer of a window, with its request's tag.
pub type Answered<'a> = dyn FnMut(usize, Result<HttpResponse, TransportFailure>) + 'a;

/// Sends HTTP requests.
pub trait Transport {
    /// Sends the requests, concurrently where the platform can, and returns
    /// one result per request, in order.
    fn send_all(
        &self,
        requests: Vec<HttpRequest>,
        timeouts: &Timeouts,
    ) -> Vec<Result<HttpResponse, TransportFailure>>;

    /// Sends the requests `next` gives with at most `limit` in flight, asking
    /// for the next one whenever fewer are out (so a new one leaves as soon as
    /// one is answered), and gives each answer to `done` as it arrives. This
    /// default sends each request on its own with [`Transport::send_all`].
    fn send_window(
        &self,
        limit: usize,
        timeouts: &Timeouts,
        next: &mut NextRequest<'_>,
        done: &mut Answered<'_>,
    ) {
        let _ = limit;
        loop {
            match next(0) {
                Next::Send(tag, request) => {
                    let result = self.send_all(vec![request], timeouts).pop();
                    done(tag, result.expect("one result per request"));
                }
                // Nothing is in flight here: a pacing caller sleeps before it
                // answers `Wait`, so ask again.
                Next::Wait(_) => {}
                Next::Done => return,
            }
        }
    }
}

/// Everything the store needs from its host.
pub trait Platform: Transport {
    /// Wall-clock time, for request signatures.
    fn now(&self) -> SystemTime;
    /// Blocks for the given time (retry backoff).
    fn sleep(&self, duration: Duration);
    /// A random number (retry jitter).
    fn random_u64(&self) -> u64;
    /// Writes one line at error level.
    fn log_error(&self, message: &str);
}
