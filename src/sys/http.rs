//! `wasi:http/outgoing-handler` transport: keeps a window of requests in
//! flight (every request, for `send_all`), starting the next as soon as one is
//! answered, waits on the response futures with `wasi:io/poll`, and reads each
//! body up to a size cap.
//! A `monotonic-clock` pollable in every poll set (the request body's writes
//! included) enforces the component's own deadline, whatever timeouts the host
//! applies.

use super::bindings::clocks::monotonic_clock;
use super::bindings::http::outgoing_handler;
use super::bindings::http::types::{
    self as http_types, ErrorCode, Fields, FutureIncomingResponse, IncomingBody, IncomingResponse,
    Method, OutgoingBody, OutgoingRequest, RequestOptions, Scheme,
};
use super::bindings::io::poll;
use super::bindings::io::streams::{OutputStream, StreamError};

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::clock::nanos;
use super::WasiPlatform;
use crate::config::Timeouts;
use crate::transport::{
    Answered, HttpRequest, HttpResponse, Next, NextRequest, Transport, TransportFailure,
    BODY_TOO_LARGE, MAX_RESPONSE_BYTES, REQUEST_ID,
};

/// Largest read from an input stream at once.
const READ_CHUNK: u64 = 64 * 1024;

impl Transport for WasiPlatform {
    fn send_all(
        &self,
        requests: Vec<HttpRequest>,
        timeouts: &Timeouts,
    ) -> Vec<Result<HttpResponse, TransportFailure>> {
        // All of them in one window.
        let count = requests.len();
        let mut requests = requests.into_iter().enumerate();
        let mut results: Vec<Option<Result<HttpResponse, TransportFailure>>> =
            (0..count).map(|_| None).collect();
        self.send_window(
            count,
            timeouts,
            &mut |_| match requests.next() {
                Some((tag, request)) => Next::Send(tag, request),
                None => Next::Done,
            },
            &mut |tag, result| results[tag] = Some(result),
        );
        results
            .into_iter()
            .map(|r| r.expect("every request is answered"))
            .collect()
    }

    fn send_window(
        &self,
        limit: usize,
        timeouts: &Timeouts,
        next: &mut NextRequest<'_>,
        done: &mut Answered<'_>,
    ) {
        // (tag, response future, that request's deadline)
        let mut in_flight: Vec<(usize, FutureIncomingResponse, Deadline)> = Vec::new();
        let mut more = true;
        loop {
            let mut wake = None;
            while more && in_flight.len() < limit.max(1) {
                match next(in_flight.len()) {
                    Next::Done => more = false,
                    // Nothing in flight to wait for: ask again (a caller
                    // that paces sleeps before it answers).
                    Next::Wait(_) if in_flight.is_empty() => {}
                    Next::Wait(after) => {
                        wake = after;
                        break;
                    }
                    Next::Send(tag, request) => {
                        let deadline = Deadline::after(timeouts.deadline());
                        match start(request, timeouts, &deadline) {
                            Ok(future) => in_flight.push((tag, future, deadline)),
                            Err(failure) => done(tag, Err(failure)),
                        }
                    }
                }
            }
            if in_flight.is_empty() {
                if more {
                    continue;
                }
                return;
            }
            let ready = wait_any(&in_flight, wake);
            // Finish the answered ones, and fail the ones past their deadline;
            // from the back, so that the indices stay valid.
            let now = monotonic_clock::now();
            for index in (0..in_flight.len()).rev() {
                let expired = in_flight[index].2.at <= now;
                if ready.contains(&index) || expired {
                    let (tag, future, deadline) = in_flight.remove(index);
                    done(tag, finish(&future, &deadline));
                }
            }
        }
    }
}

/// Blocks until a response head arrives, the earliest deadline passes or
/// `wake` has passed; the indices of the futures that are ready.
fn wait_any(
    in_flight: &[(usize, FutureIncomingResponse, Deadline)],
    wake: Option<Duration>,
) -> Vec<usize> {
    let earliest = in_flight
        .iter()
        .min_by_key(|(_, _, deadline)| deadline.at)
        .map(|(_, _, deadline)| deadline.pollable());
    let timer = wake.map(|after| monotonic_clock::subscribe_duration(nanos(after)));
    let pollables: Vec<poll::Pollable> = in_flight.iter().map(|(_, f, _)| f.subscribe()).collect();
    let mut set: Vec<&poll::Pollable> = pollables.iter().collect();
    set.extend(earliest.as_ref());
    set.extend(timer.as_ref());
    poll::poll(&set)
        .into_iter()
        .map(|i| i as usize)
        .filter(|&i| i < in_flight.len())
        .collect()
}

/// The instant by which one request must be answered in full.
struct Deadline {
    at: monotonic_clock::Instant,
    millis: u128,
}

impl Deadline {
    fn after(duration: std::time::Duration) -> Deadline {
        Deadline {
            at: monotonic_clock::now().saturating_add(nanos(duration)),
            millis: duration.as_millis(),
        }
    }

    fn pollable(&self) -> poll::Pollable {
        monotonic_clock::subscribe_instant(self.at)
    }

    fn failure(&self, what: &str) -> TransportFailure {
        TransportFailure {
            code: "HTTP-response-timeout".into(),
            detail: Some(format!("no {what} within {} ms", self.millis)),
            retryable: true,
        }
    }
}

/// Sends the request head and body (by `deadline`); the response arrives on
/// the returned future.
fn start(
    request: HttpRequest,
    timeouts: &Timeouts,
    deadline: &Deadline,
) -> Result<FutureIncomingResponse, TransportFailure> {
    let (parts, body) = request.into_parts();
    let entries: Vec<(String, Vec<u8>)> = parts
        .headers
        .iter()
        .filter(|(name, _)| *name != http::header::HOST)
        .map(|(name, value)| (name.as_str().to_string(), value.as_bytes().to_vec()))
        .collect();
    let headers = Fields::from_list(&entries)
        .map_err(|_| failure_text("HTTP-request-denied", "a header was refused".into()))?;
    let outgoing = OutgoingRequest::new(headers);
    let denied = |what: &str| failure_text("HTTP-request-URI-invalid", what.to_string());
    outgoing
        .set_method(&Method::Post)
        .map_err(|()| denied("method"))?;
    let scheme = match parts.uri.scheme_str() {
        Some("http") => Scheme::Http,
        _ => Scheme::Https,
    };
    outgoing
        .set_scheme(Some(&scheme))
        .map_err(|()| denied("scheme"))?;
    outgoing
        .set_authority(parts.uri.authority().map(|a| a.as_str()))
        .map_err(|()| denied("authority"))?;
    outgoing
        .set_path_with_query(Some(parts.uri.path()))
        .map_err(|()| denied("path"))?;
    let outgoing_body = outgoing
        .body()
        .map_err(|()| failure_text("internal-error", "request body already taken".into()))?;
    let future =
        outgoing_handler::handle(outgoing, request_options(timeouts)).map_err(|e| failure(&e))?;
    {
        let stream = outgoing_body.write().map_err(|()| {
            failure_text("internal-error", "request body stream already taken".into())
        })?;
        write_body(&stream, &body, deadline)?;
    }
    OutgoingBody::finish(outgoing_body, None).map_err(|e| failure(&e))?;
    Ok(future)
}

/// Writes `body` as the stream permits and flushes it, waiting on the stream
/// and the deadline together: a peer that stops reading cannot block the
/// call past its deadline.
fn write_body(
    stream: &OutputStream,
    body: &[u8],
    deadline: &Deadline,
) -> Result<(), TransportFailure> {
    let timer = deadline.pollable();
    let writable = stream.subscribe();
    let wait = || {
        if poll::poll(&[&writable, &timer]).contains(&0) {
            Ok(())
        } else {
            Err(deadline.failure("request body written"))
        }
    };
    let mut rest = body;
    while !rest.is_empty() {
        let permitted = stream.check_write().map_err(stream_failure)?;
        if permitted == 0 {
            wait()?;
            continue;
        }
        let n = rest
            .len()
            .min(usize::try_from(permitted).unwrap_or(usize::MAX));
        stream.write(&rest[..n]).map_err(stream_failure)?;
        rest = &rest[n..];
    }
    // After a flush the stream accepts writes again once it has completed. A
    // host may close it as soon as it has taken the whole body (its length
    // was announced): that is a finished write, not a failure.
    match stream.flush() {
        Ok(()) => {}
        Err(StreamError::Closed) => return Ok(()),
        Err(e) => return Err(stream_failure(e)),
    }
    loop {
        match stream.check_write() {
            Ok(0) => wait()?,
            Ok(_) | Err(StreamError::Closed) => return Ok(()),
            Err(e) => return Err(stream_failure(e)),
        }
    }
}

/// The request options carrying the configured timeouts; none when no timeout
/// is configured (the host's defaults apply). A host that refuses a timeout
/// keeps its own default for it, and that is logged once per instance (the
/// component's own deadline still applies).
fn request_options(timeouts: &Timeouts) -> Option<RequestOptions> {
    if !timeouts.has_request_options() {
        return None;
    }
    let options = RequestOptions::new();
    let mut refused = false;
    if let Some(d) = timeouts.connect {
        refused |= options.set_connect_timeout(Some(nanos(d))).is_err();
    }
    if let Some(d) = timeouts.first_byte {
        refused |= options.set_first_byte_timeout(Some(nanos(d))).is_err();
    }
    if let Some(d) = timeouts.between_bytes {
        refused |= options.set_between_bytes_timeout(Some(nanos(d))).is_err();
    }
    if refused && !REFUSED_LOGGED.swap(true, Ordering::Relaxed) {
        super::log::write_line(
            "ld-dynamodb: the host refused a configured connect, first-byte or between-bytes \
             timeout and applies its own; timeouts.request-ms still bounds each request",
        );
    }
    Some(options)
}

/// Whether a refused timeout was logged by this instance.
static REFUSED_LOGGED: AtomicBool = AtomicBool::new(false);

/// The response of a finished future, with its whole body.
fn finish(
    future: &FutureIncomingResponse,
    deadline: &Deadline,
) -> Result<HttpResponse, TransportFailure> {
    let response = match future.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(code))) => return Err(failure(&code)),
        Some(Err(())) => {
            return Err(failure_text(
                "internal-error",
                "response already taken".into(),
            ))
        }
        None => return Err(deadline.failure("response")),
    };
    let status = response.status();
    let mut builder = http::Response::builder().status(status);
    // The stores read only the request id among the headers.
    for value in response.headers().get(REQUEST_ID) {
        builder = builder.header(REQUEST_ID, value);
    }
    let body = read_body(&response, deadline)?;
    builder
        .body(body)
        .map_err(|e| failure_text("HTTP-protocol-error", e.to_string()))
}

fn read_body(
    response: &IncomingResponse,
    deadline: &Deadline,
) -> Result<Vec<u8>, TransportFailure> {
    let incoming = response
        .consume()
        .map_err(|()| failure_text("internal-error", "response body already taken".into()))?;
    let mut body = Vec::new();
    {
        let stream = incoming.stream().map_err(|()| {
            failure_text(
                "internal-error",
                "response body stream already taken".into(),
            )
        })?;
        let timer = deadline.pollable();
        let readable = stream.subscribe();
        loop {
            match stream.read(READ_CHUNK) {
                Ok(chunk) if chunk.is_empty() => {
                    if !poll::poll(&[&readable, &timer]).contains(&0) {
                        return Err(deadline.failure("whole response body"));
                    }
                }
                Ok(chunk) => {
                    body.extend_from_slice(&chunk);
                    if body.len() > MAX_RESPONSE_BYTES {
                        return Err(TransportFailure {
                            code: BODY_TOO_LARGE.into(),
                            detail: Some(format!(
                                "response body exceeds {MAX_RESPONSE_BYTES} bytes"
                            )),
                            retryable: false,
                        });
                    }
                }
                Err(StreamError::Closed) => break,
                Err(e) => return Err(stream_failure(e)),
            }
        }
    }
    let _ = IncomingBody::finish(incoming);
    Ok(body)
}

fn stream_failure(e: StreamError) -> TransportFailure {
    match e {
        StreamError::LastOperationFailed(err) => match http_types::http_error_code(&err) {
            Some(code) => failure(&code),
            None => TransportFailure {
                code: "HTTP-response-incomplete".into(),
                detail: Some(err.to_debug_string()),
                retryable: true,
            },
        },
        StreamError::Closed => failure_text("HTTP-response-incomplete", "stream closed".into()),
    }
}

fn failure_text(code: &str, detail: String) -> TransportFailure {
    TransportFailure {
        code: code.into(),
        detail: Some(detail),
        retryable: false,
    }
}

/// Names the error code as the WIT case does and decides whether to retry.
fn failure(code: &ErrorCode) -> TransportFailure {
    let (name, retryable) = match code {
        ErrorCode::DnsTimeout => ("DNS-timeout", true),
        ErrorCode::DnsError(_) => ("DNS-error", true),
        ErrorCode::DestinationNotFound => ("destination-not-found", false),
        ErrorCode::DestinationUnavailable => ("destination-unavailable", true),
        ErrorCode::DestinationIpProhibited => ("destination-IP-prohibited", false),
        ErrorCode::DestinationIpUnroutable => ("destination-IP-unroutable", false),
        ErrorCode::ConnectionRefused => ("connection-refused", true),
        ErrorCode::ConnectionTerminated => ("connection-terminated", true),
        ErrorCode::ConnectionTimeout => ("connection-timeout", true),
        ErrorCode::ConnectionReadTimeout => ("connection-read-timeout", true),
        ErrorCode::ConnectionWriteTimeout => ("connection-write-timeout", true),
        ErrorCode::ConnectionLimitReached => ("connection-limit-reached", true),
        ErrorCode::TlsProtocolError => ("TLS-protocol-error", false),
        ErrorCode::TlsCertificateError => ("TLS-certificate-error", false),
        ErrorCode::TlsAlertReceived(_) => ("TLS-alert-received", false),
        ErrorCode::HttpRequestDenied => ("HTTP-request-denied", false),
        ErrorCode::HttpResponseIncomplete => ("HTTP-response-incomplete", true),
        ErrorCode::HttpResponseTimeout => ("HTTP-response-timeout", true),
        ErrorCode::HttpProtocolError => ("HTTP-protocol-error", true),
        ErrorCode::InternalError(_) => ("internal-error", false),
        _ => ("HTTP-protocol-error", false),
    };
    // The name says what happened; only these cases carry text worth adding
    // (a generic `Debug` of every case would cost kilobytes of code).
    let detail = match code {
        ErrorCode::InternalError(text) => text.clone(),
        ErrorCode::DnsError(payload) => payload.rcode.clone(),
        ErrorCode::TlsAlertReceived(payload) => payload.alert_message.clone(),
        ErrorCode::HttpResponseTransferCoding(text)
        | ErrorCode::HttpResponseContentCoding(text) => text.clone(),
        _ => None,
    };
    TransportFailure {
        code: name.into(),
        detail,
        retryable,
    }
}
