//! The seam between the store logic and the host: HTTP exchanges, time,
//! randomness and the error log. The component implements it over WASI
//! (`crate::sys`); unit tests implement it with scripted fakes.

pub mod signing;

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
    pub detail: Option<String>,
    /// Whether sending again may succeed (refused, reset, timed out, ...).
    pub retryable: bool,
}

/// The next request of a window, with its tag; `None` when there is no more.
pub type NextRequest<'a> = dyn FnMut() -> Option<(usize, HttpRequest)> + 'a;
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

    /// Sends the requests `next` yields with at most `limit` in flight, a new
    /// one as soon as one is answered, and gives each answer to `done` as it
    /// arrives. This default sends waves of `limit` with [`Transport::send_all`].
    fn send_window(
        &self,
        limit: usize,
        timeouts: &Timeouts,
        next: &mut NextRequest<'_>,
        done: &mut Answered<'_>,
    ) {
        loop {
            let (tags, requests): (Vec<usize>, Vec<HttpRequest>) =
                std::iter::from_fn(&mut *next).take(limit).unzip();
            if tags.is_empty() {
                return;
            }
            for (tag, result) in tags.into_iter().zip(self.send_all(requests, timeouts)) {
                done(tag, result);
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
