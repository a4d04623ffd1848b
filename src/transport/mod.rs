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

/// Sends HTTP requests.
pub trait Transport {
    /// Sends the requests, concurrently where the platform can, and returns
    /// one result per request, in order.
    fn send_all(
        &self,
        requests: Vec<HttpRequest>,
        timeouts: &Timeouts,
    ) -> Vec<Result<HttpResponse, TransportFailure>>;
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
