//! The host's outbound HTTP policy: by default the component may reach only
//! the origin (scheme and authority) of the endpoint it was opened with; every
//! request is counted and sent through the keep-alive [`Pool`]. The write
//! requests of BatchWriteItem that the server accepted are counted too, from
//! the bodies as they stream, so that an Init stopped by the host can say how
//! far it got, and the answers that throttled them, so that a progress
//! display can say when Init waits.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use wasmtime_wasi_http::{Error, WasiBody, WasiHttpHooks};

use crate::connections::Pool;

/// Which origins the component may send requests to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Allow {
    /// Only the endpoints of the stores opened in the instance: the origin of
    /// each configuration's endpoint, or of DynamoDB's public endpoint for its
    /// region. The default.
    #[default]
    ConfiguredEndpoints,
    /// Any origin.
    Any,
    /// Only these origins, `scheme://host[:port]` (compared case-insensitively,
    /// default ports made explicit), whatever the configuration says.
    Only(Vec<String>),
}

/// `wasi:http` hooks that enforce [`Allow`], count requests and send them
/// through a connection pool.
#[derive(Clone)]
pub struct Outbound {
    allow: Allow,
    /// The normalized origins allowed: those of [`Allow::Only`], or those of
    /// the stores opened so far under [`Allow::ConfiguredEndpoints`].
    origins: Vec<String>,
    sent: Arc<AtomicU64>,
    /// Items BatchWriteItem requests wrote (see [`Outbound::items_written`]).
    written: Arc<AtomicU64>,
    /// BatchWriteItem answers that throttled (see [`Outbound::throttled_answers`]).
    throttled: Arc<AtomicU64>,
    pool: Arc<Pool>,
}

impl Outbound {
    /// Hooks sending through `pool`.
    pub fn new(allow: Allow, pool: Arc<Pool>) -> Self {
        let mut outbound = Outbound {
            allow: allow.clone(),
            origins: Vec::new(),
            sent: Arc::default(),
            written: Arc::default(),
            throttled: Arc::default(),
            pool,
        };
        if let Allow::Only(list) = &allow {
            list.iter().for_each(|origin| outbound.add_origin(origin));
        }
        outbound
    }

    /// Lets the component reach `origin` (`scheme://host[:port]`) when the
    /// policy is [`Allow::ConfiguredEndpoints`].
    pub fn allow_configured(&mut self, origin: &str) {
        if self.allow == Allow::ConfiguredEndpoints {
            self.add_origin(origin);
        }
    }

    fn add_origin(&mut self, origin: &str) {
        let normalized = origin
            .parse::<http::Uri>()
            .ok()
            .as_ref()
            .and_then(normalized_origin);
        if let Some(origin) = normalized {
            if !self.origins.contains(&origin) {
                self.origins.push(origin);
            }
        }
    }

    /// How many requests the component has sent (denied ones not included).
    pub fn requests_sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// How many items BatchWriteItem requests have written so far: the put
    /// requests sent in requests answered 200, less those the answers list as
    /// unprocessed. The request that writes Init's `$inited` marker is not
    /// counted.
    pub fn items_written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// Both counts at once.
    pub fn write_counts(&self) -> WriteCounts {
        WriteCounts {
            items_written: self.items_written(),
            throttled_answers: self.throttled_answers(),
        }
    }

    /// How many BatchWriteItem answers held items back: an error status
    /// (throttling, 5xx) or unprocessed items, each followed by a wait of
    /// Init's pacer and a retry.
    pub fn throttled_answers(&self) -> u64 {
        self.throttled.load(Ordering::Relaxed)
    }

    fn allows(&self, uri: &http::Uri) -> bool {
        self.allow == Allow::Any
            || normalized_origin(uri).is_some_and(|target| self.origins.contains(&target))
    }
}

/// What the BatchWriteItem requests of one instance (or, summed, of several)
/// have done so far: a progress display's view of an Init.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteCounts {
    /// Items written (see [`Outbound::items_written`]).
    pub items_written: u64,
    /// Answers that held items back (see [`Outbound::throttled_answers`]).
    pub throttled_answers: u64,
}

impl std::iter::Sum for WriteCounts {
    fn sum<I: Iterator<Item = WriteCounts>>(iter: I) -> Self {
        iter.fold(WriteCounts::default(), |a, b| WriteCounts {
            items_written: a.items_written + b.items_written,
            throttled_answers: a.throttled_answers + b.throttled_answers,
        })
    }
}

/// `scheme://host:port` of a URI, lowercase, with the scheme's default port made
/// explicit; `None` without a scheme and an authority, or for a scheme other
/// than http and https.
pub fn normalized_origin(uri: &http::Uri) -> Option<String> {
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let authority = uri.authority()?;
    let port = authority.port_u16().unwrap_or(default_port);
    Some(format!("{scheme}://{}:{port}", authority.host()).to_ascii_lowercase())
}

impl WasiHttpHooks for Outbound {
    fn p2_error_from_tls(
        &mut self,
        err: &std::io::Error,
    ) -> wasmtime_wasi_http::p2::bindings::http::types::ErrorCode {
        crate::connections::tls_error_code(err)
    }

    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (
                        http::Response<WasiBody>,
                        Box<dyn Future<Output = Result<(), Error>> + Send>,
                    ),
                    Error,
                >,
            > + Send,
    > {
        _ = fut;
        let allowed = self.allows(request.uri());
        if allowed {
            self.sent.fetch_add(1, Ordering::Relaxed);
        } else {
            eprintln!(
                "ld-dynamodb: denied a request to {} (only the configured endpoint is allowed)",
                request.uri().authority().map(|a| a.as_str()).unwrap_or("?")
            );
        }
        let pool = self.pool.clone();
        let batch = request
            .headers()
            .get("x-amz-target")
            .is_some_and(|target| target.as_bytes().ends_with(b".BatchWriteItem"));
        if !batch {
            return Box::new(async move {
                if !allowed {
                    return Err(Error::HttpRequestDenied);
                }
                pool.send(request, options).await
            });
        }
        // The request's scan, once its body has been sent.
        let scanned: Arc<Mutex<Option<Scan>>> = Arc::default();
        let into = scanned.clone();
        let (parts, body) = request.into_parts();
        let body = Scanned::boxed(body, &parts.headers, move |scan| {
            *into.lock().unwrap() = Some(scan)
        });
        let request = http::Request::from_parts(parts, body);
        let written = self.written.clone();
        let throttled = self.throttled.clone();
        Box::new(async move {
            if !allowed {
                return Err(Error::HttpRequestDenied);
            }
            let (response, io) = pool.send(request, options).await?;
            if !response.status().is_success() {
                throttled.fetch_add(1, Ordering::Relaxed);
                return Ok((response, io));
            }
            let (parts, body) = response.into_parts();
            let body = Scanned::boxed(body, &parts.headers, move |answer| {
                let Some(sent) = scanned.lock().unwrap().take() else {
                    return;
                };
                if !sent.marker {
                    let accepted = sent.puts.saturating_sub(answer.puts);
                    written.fetch_add(accepted, Ordering::Relaxed);
                }
                if answer.puts > 0 {
                    throttled.fetch_add(1, Ordering::Relaxed);
                }
            });
            Ok((http::Response::from_parts(parts, body), io))
        })
    }
}

/// What a scan of a BatchWriteItem body found: its put requests (in a
/// request, those sent; in an answer, those left unprocessed), and whether it
/// names Init's `$inited` marker.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Scan {
    puts: u64,
    marker: bool,
    /// Bytes of the stream already looked at, kept from the last chunk.
    carry: [u8; CARRY],
    kept: usize,
}

/// The key of a put request in JSON. Inside a string (an item's JSON) its
/// quotes are escaped, so it can only be a key, or the string value
/// "PutRequest" (a flag named so), which no `:` follows.
const PUT: &[u8] = b"\"PutRequest\"";
/// The end of the marker's namespace and key (`$inited`, or `prefix:$inited`).
const MARKER: &[u8] = b"$inited\"";
/// Bytes kept between chunks: a pattern and the spaces before its `:`.
const CARRY: usize = 32;

impl Scan {
    /// Looks at the next bytes of the stream.
    fn feed(&mut self, bytes: &[u8]) {
        let mut buf = self.carry[..self.kept].to_vec();
        buf.extend_from_slice(bytes);
        self.marker |= buf.windows(MARKER.len()).any(|w| w == MARKER);
        // Where the next chunk must start looking again: past every pattern
        // decided here, and no more than the bytes that may begin one.
        let mut resume = buf.len().saturating_sub(PUT.len() - 1);
        let mut at = 0;
        while let Some(found) = buf[at..].windows(PUT.len()).position(|w| w == PUT) {
            let start = at + found;
            let after = &buf[start + PUT.len()..];
            match after.iter().find(|b| !b.is_ascii_whitespace()) {
                Some(b':') => self.puts += 1,
                Some(_) => {}
                None if after.len() < CARRY - PUT.len() => {
                    // Undecided until the next chunk.
                    resume = start;
                    break;
                }
                None => {}
            }
            at = start + PUT.len();
            resume = resume.max(at);
        }
        let keep = &buf[resume.min(buf.len())..];
        let keep = &keep[keep.len().saturating_sub(CARRY)..];
        self.carry[..keep.len()].copy_from_slice(keep);
        self.kept = keep.len();
    }
}

/// A body that scans its bytes as they pass and hands the scan to `done` at
/// its end (its last byte by its length, or its last frame; not when it is
/// dropped before).
struct Scanned {
    inner: WasiBody,
    scan: Scan,
    /// Bytes still to come, when the length is known.
    left: Option<u64>,
    done: Option<Box<dyn FnOnce(Scan) + Send>>,
}

impl Scanned {
    /// `inner` scanned; `headers` may give its length.
    fn boxed(
        inner: WasiBody,
        headers: &http::HeaderMap,
        done: impl FnOnce(Scan) + Send + 'static,
    ) -> WasiBody {
        let length = headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse().ok());
        Scanned {
            left: length.or(inner.size_hint().exact()),
            inner,
            scan: Scan::default(),
            done: Some(Box::new(done)),
        }
        .boxed_unsync()
    }
}

impl Body for Scanned {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.scan.feed(data);
                    let len = data.len() as u64;
                    self.left = self.left.map(|left| left.saturating_sub(len));
                }
            }
            Poll::Ready(None) => self.left = Some(0),
            _ => {}
        }
        if self.left == Some(0) {
            if let Some(done) = self.done.take() {
                done(self.scan);
            }
        }
        polled
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scan_counts_put_requests_across_chunks_but_not_a_value_named_so() {
        let body = br#"{"RequestItems":{"t":[{"PutRequest": {"Item":{"key":{"S":"PutRequest"},"item":{"S":"{\"PutRequest\":1}"}}}},{"PutRequest":{"Item":{}}}]}}"#;
        for size in 1..body.len() {
            let mut scan = Scan::default();
            body.chunks(size).for_each(|chunk| scan.feed(chunk));
            assert_eq!((scan.puts, scan.marker), (2, false), "chunks of {size}");
        }
        let mut scan = Scan::default();
        scan.feed(br#"[{"PutRequest":{"Item":{"namespace":{"S":"p:$ini"#);
        scan.feed(br#"ted"}}}}]"#);
        assert_eq!((scan.puts, scan.marker), (1, true));
    }

    fn uri(s: &str) -> http::Uri {
        s.parse().unwrap()
    }

    #[test]
    fn origins_pin_scheme_host_and_port() {
        let mut hooks = Outbound::new(Allow::ConfiguredEndpoints, Arc::default());
        assert!(!hooks.allows(&uri("https://dynamodb.us-east-1.amazonaws.com/")));
        hooks.allow_configured("https://DynamoDB.us-east-1.amazonaws.com");
        assert!(hooks.allows(&uri("https://dynamodb.us-east-1.amazonaws.com:443/")));
        assert!(!hooks.allows(&uri("http://dynamodb.us-east-1.amazonaws.com:443/")));
        assert!(!hooks.allows(&uri("https://dynamodb.us-east-1.amazonaws.com:8443/")));
        assert!(!hooks.allows(&uri("https://example.com/")));
        let only = Outbound::new(
            Allow::Only(vec!["http://127.0.0.1:8000".into()]),
            Arc::default(),
        );
        assert!(only.allows(&uri("http://127.0.0.1:8000/")));
        assert!(!only.allows(&uri("https://127.0.0.1:8000/")));
        assert!(Outbound::new(Allow::Any, Arc::default()).allows(&uri("http://x/")));
    }
}
