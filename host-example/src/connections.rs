//! A keep-alive HTTP/1.1 client for the component's outbound requests.
//! wasmtime-wasi-http's default client opens a new TCP (and TLS) connection
//! per request; this one keeps idle connections per authority and reuses them,
//! verifies TLS against the webpki roots (those AWS endpoints chain to), and
//! applies the timeouts the component passes in its request options.
//!
//! TLS trusts the webpki roots (those AWS endpoints chain to), or, as the AWS
//! CLI and SDKs do, only the PEM bundle named by `AWS_CA_BUNDLE` or the
//! profile's `ca_bundle` (a TLS-inspecting proxy, a private endpoint). A
//! refused certificate's cause is kept per origin ([`tls_failure`]), because a
//! `wasi:http` error code carries no text: the host's errors add it.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use tokio::net::TcpStream;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::p2::bindings::http::types::ErrorCode;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody};

use crate::environment::{self, CaBundle};
use crate::outbound::normalized_origin;

/// Timeouts used when the component gives none.
const DEFAULT_CONNECT: Duration = Duration::from_secs(10);
const DEFAULT_FIRST_BYTE: Duration = Duration::from_secs(60);
const DEFAULT_BETWEEN_BYTES: Duration = Duration::from_secs(60);
/// Idle connections kept per authority.
const MAX_IDLE: usize = 32;

/// The response and the future `wasi:http` waits on for late I/O errors.
pub type Sent = (
    http::Response<WasiBody>,
    Box<dyn Future<Output = Result<(), Error>> + Send>,
);

/// The certificate authorities a pool's TLS connections trust.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Trust {
    /// The bundle `AWS_CA_BUNDLE` names, else the profile's `ca_bundle`
    /// (`AWS_PROFILE`, else `default`), else [`Trust::WebPki`]; read at the
    /// first TLS connection. The default.
    #[default]
    Environment,
    /// The webpki roots (Mozilla's), which AWS's endpoints chain to.
    WebPki,
    /// Only the certificates of this PEM file, as the AWS CLI does with a CA
    /// bundle.
    Bundle(PathBuf),
}

/// Connections by `scheme://host:port`.
pub struct Pool {
    idle: Mutex<HashMap<String, Vec<SendRequest<WasiBody>>>>,
    trust: Trust,
    /// The TLS client of `trust`, made at the first TLS connection (a
    /// bundle that cannot be read is tried again at the next one).
    tls: Mutex<Option<Tls>>,
    /// The runtime that opens and drives the connections; when `None`, the
    /// runtime of the call that opens one.
    driver: Option<tokio::runtime::Handle>,
}

/// A TLS client and what it trusts, in words for errors.
#[derive(Clone)]
struct Tls {
    connector: tokio_rustls::TlsConnector,
    trusting: Arc<str>,
}

impl Default for Pool {
    fn default() -> Self {
        Pool::trusting(Trust::Environment)
    }
}

impl Pool {
    /// A pool whose TLS connections trust `trust`.
    pub fn trusting(trust: Trust) -> Self {
        Pool {
            idle: Mutex::default(),
            trust,
            tls: Mutex::default(),
            driver: None,
        }
    }

    /// A pool whose connections are opened and driven on `runtime`, so that
    /// callers on other runtimes can share them: a request never waits for
    /// the runtime of the call that opened its connection.
    pub fn driven_by(runtime: tokio::runtime::Handle) -> Self {
        Pool {
            driver: Some(runtime),
            ..Pool::default()
        }
    }

    /// The TLS client, made on first use.
    async fn tls(&self) -> Result<Tls, String> {
        if let Some(tls) = self.tls.lock().unwrap().clone() {
            return Ok(tls);
        }
        let bundle = match &self.trust {
            Trust::Environment => environment::ca_bundle().await,
            Trust::WebPki => None,
            Trust::Bundle(path) => Some(CaBundle {
                path: path.clone(),
                setting: "the configured CA bundle".into(),
            }),
        };
        let (roots, trusting) = match bundle {
            None => (
                rustls::RootCertStore {
                    roots: webpki_roots::TLS_SERVER_ROOTS.into(),
                },
                "the built-in webpki roots (set AWS_CA_BUNDLE to trust another authority)"
                    .to_string(),
            ),
            Some(bundle) => (bundle_roots(&bundle)?, format!("only {bundle}")),
        };
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        let tls = Tls {
            connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
            trusting: trusting.into(),
        };
        *self.tls.lock().unwrap() = Some(tls.clone());
        Ok(tls)
    }

    /// Sends a request on an idle connection to its authority, or a new one.
    pub async fn send(
        self: Arc<Self>,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> Result<Sent, Error> {
        let options = options.unwrap_or_default();
        let uri = request.uri().clone();
        let tls = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
        let authority = uri.authority().ok_or(Error::HttpRequestUriInvalid)?;
        let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let address = format!("{}:{port}", authority.host());
        let key = format!("{}://{address}", if tls { "https" } else { "http" });
        // On the wire, an origin-form target: the path and query only.
        let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
        *request.uri_mut() = http::Uri::try_from(path).map_err(|_| Error::HttpRequestUriInvalid)?;

        let first_byte = options.first_byte_timeout.unwrap_or(DEFAULT_FIRST_BYTE);
        let mut sender = match self.checkout(&key) {
            Some(sender) => sender,
            None => {
                self.connect(
                    &address,
                    authority.host(),
                    tls,
                    options.connect_timeout.unwrap_or(DEFAULT_CONNECT),
                )
                .await?
            }
        };
        let response =
            match tokio::time::timeout(first_byte, sender.try_send_request(request)).await {
                Err(_) => return Err(Error::ConnectionReadTimeout),
                Ok(Ok(response)) => response,
                // A pooled connection the server closed while idle: the request was
                // not sent, so send it once more on a fresh connection.
                Ok(Err(mut failed)) => match failed.take_message() {
                    Some(request) => {
                        let timeout = options.connect_timeout.unwrap_or(DEFAULT_CONNECT);
                        sender = self
                            .connect(&address, authority.host(), tls, timeout)
                            .await?;
                        tokio::time::timeout(first_byte, sender.send_request(request))
                            .await
                            .map_err(|_| Error::ConnectionReadTimeout)??
                    }
                    None => return Err(failed.into_error().into()),
                },
            };
        self.checkin(key, sender);
        let between = options
            .between_bytes_timeout
            .unwrap_or(DEFAULT_BETWEEN_BYTES);
        let response = response.map(|body| TimedBody::new(body, between).boxed_unsync());
        Ok((response, Box::new(async { Ok(()) })))
    }

    /// An idle connection that can take a request now.
    fn checkout(&self, key: &str) -> Option<SendRequest<WasiBody>> {
        let mut idle = self.idle.lock().unwrap();
        let list = idle.get_mut(key)?;
        list.retain(|s| !s.is_closed());
        let ready = list.iter().position(|s| s.is_ready())?;
        Some(list.swap_remove(ready))
    }

    /// Keeps a connection for later; it becomes ready once its response body is read.
    fn checkin(&self, key: String, sender: SendRequest<WasiBody>) {
        let mut idle = self.idle.lock().unwrap();
        let list = idle.entry(key).or_default();
        list.retain(|s| !s.is_closed());
        if list.len() < MAX_IDLE {
            list.push(sender);
        }
    }

    async fn connect(
        &self,
        address: &str,
        host: &str,
        tls: bool,
        timeout: Duration,
    ) -> Result<SendRequest<WasiBody>, Error> {
        let origin = format!("https://{address}");
        let client = match tls {
            false => None,
            true => match self.tls().await {
                Ok(client) => Some(client),
                Err(cause) => {
                    record_tls_failure(&origin, Some(cause.clone()));
                    return Err(Error::Tls(std::io::Error::other(cause)));
                }
            },
        };
        let (address, host) = (address.to_string(), host.to_string());
        let connect = async move {
            let connect = Self::open(&address, &host, client);
            tokio::time::timeout(timeout, connect)
                .await
                .map_err(|_| Error::ConnectionTimeout)?
        };
        match &self.driver {
            Some(runtime) => runtime
                .spawn(connect)
                .await
                .map_err(|e| Error::Connect(std::io::Error::other(e)))?,
            None => connect.await,
        }
    }

    /// Opens a connection, with TLS when `tls` is given; its driver task
    /// runs on the current runtime.
    async fn open(
        address: &str,
        host: &str,
        tls: Option<Tls>,
    ) -> Result<SendRequest<WasiBody>, Error> {
        let stream = TcpStream::connect(address).await.map_err(Error::Connect)?;
        stream.set_nodelay(true).map_err(Error::Connect)?;
        let Some(tls) = tls else {
            return handshake(TokioIo::new(stream)).await;
        };
        let name =
            rustls::pki_types::ServerName::try_from(host.trim_matches(['[', ']']).to_string())
                .map_err(|_| Error::HttpRequestUriInvalid)?;
        let origin = format!("https://{address}");
        match tls.connector.connect(name, stream).await {
            Ok(stream) => {
                record_tls_failure(&origin, None);
                handshake(TokioIo::new(stream)).await
            }
            Err(e) => {
                record_tls_failure(&origin, Some(refusal(&e, host, &tls.trusting)));
                Err(Error::Tls(e))
            }
        }
    }
}

/// The roots of a PEM bundle: each of its certificates.
fn bundle_roots(bundle: &CaBundle) -> Result<rustls::RootCertStore, String> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let pem = std::fs::read(&bundle.path).map_err(|e| format!("{bundle}: cannot read it: {e}"))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| format!("{bundle}: not a PEM certificate bundle: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("{bundle}: a certificate in it cannot be used: {e}"))?;
    }
    if roots.is_empty() {
        return Err(format!("{bundle}: it holds no PEM certificate"));
    }
    Ok(roots)
}

/// Why a TLS handshake with `host` failed, in words that name the cause.
fn refusal(error: &std::io::Error, host: &str, trusting: &str) -> String {
    use rustls::CertificateError as Cert;
    let Some(rustls::Error::InvalidCertificate(cert)) = rustls_error(error) else {
        return format!("TLS handshake with {host} failed: {error}");
    };
    let why = match cert {
        Cert::NotValidForName | Cert::NotValidForNameContext { .. } => {
            format!("it is not valid for the host name {host}")
        }
        Cert::UnknownIssuer => {
            format!("it is not signed by a trusted certificate authority (trusting {trusting})")
        }
        Cert::Expired | Cert::ExpiredContext { .. } => "it has expired".into(),
        Cert::NotValidYet | Cert::NotValidYetContext { .. } => "it is not valid yet".into(),
        _ => "it cannot be verified".into(),
    };
    format!("the TLS certificate of {host} was refused: {why} ({cert})")
}

/// The rustls error inside an I/O error of the TLS stream.
fn rustls_error(error: &std::io::Error) -> Option<&rustls::Error> {
    error.get_ref()?.downcast_ref::<rustls::Error>()
}

/// The `wasi:http` error code of a failed TLS connection: a refused
/// certificate, an alert from the server, or any other TLS failure.
pub fn tls_error_code(error: &std::io::Error) -> ErrorCode {
    use wasmtime_wasi_http::p2::bindings::http::types::TlsAlertReceivedPayload;
    match rustls_error(error) {
        Some(rustls::Error::InvalidCertificate(_)) => ErrorCode::TlsCertificateError,
        Some(rustls::Error::AlertReceived(alert)) => {
            ErrorCode::TlsAlertReceived(TlsAlertReceivedPayload {
                alert_id: Some(u8::from(*alert)),
                alert_message: Some(format!("{alert:?}")),
            })
        }
        Some(_) => ErrorCode::TlsProtocolError,
        // The pool's own failure before any handshake: a CA bundle that
        // cannot be used; without trust no certificate can be checked.
        None => ErrorCode::TlsCertificateError,
    }
}

/// The last TLS failure of each origin (`https://host:port`, normalized),
/// cleared by a successful handshake.
static TLS_FAILURES: Mutex<BTreeMap<String, String>> = Mutex::new(BTreeMap::new());

fn record_tls_failure(origin: &str, cause: Option<String>) {
    let Some(origin) = origin.parse().ok().as_ref().and_then(normalized_origin) else {
        return;
    };
    let mut failures = TLS_FAILURES.lock().unwrap();
    match cause {
        Some(cause) => failures.insert(origin, cause),
        None => failures.remove(&origin),
    };
}

/// Why the last TLS connection to `origin` (`https://host[:port]`) failed,
/// unless one succeeded since: the certificate refused and why, or the CA
/// bundle that could not be used.
pub fn tls_failure(origin: &str) -> Option<String> {
    let origin = normalized_origin(&origin.parse().ok()?)?;
    TLS_FAILURES.lock().unwrap().get(&origin).cloned()
}

async fn handshake<T>(io: T) -> Result<SendRequest<WasiBody>, Error>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, connection) = http1::handshake(io).await?;
    tokio::spawn(async move {
        // Ends when the server closes the connection or the pool drops it.
        let _ = connection.await;
    });
    Ok(sender)
}

/// A response body that fails when no data arrives within `between` of the last frame.
struct TimedBody {
    inner: Incoming,
    between: Duration,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl TimedBody {
    fn new(inner: Incoming, between: Duration) -> Self {
        TimedBody {
            inner,
            between,
            deadline: Box::pin(tokio::time::sleep(between)),
        }
    }
}

impl Body for TimedBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let next = tokio::time::Instant::now() + self.between;
                self.deadline.as_mut().reset(next);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match self.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Error::ConnectionReadTimeout))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls_io(error: rustls::Error) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::InvalidData, error)
    }

    #[test]
    fn a_refused_certificate_is_a_certificate_error_whose_cause_is_named() {
        use rustls::CertificateError as Cert;
        let cases = [
            (
                Cert::NotValidForName,
                "not valid for the host name db.local",
            ),
            (
                Cert::UnknownIssuer,
                "trusted certificate authority (trusting only X)",
            ),
            (Cert::Expired, "it has expired"),
        ];
        for (cert, cause) in cases {
            let error = tls_io(rustls::Error::InvalidCertificate(cert));
            assert!(matches!(
                tls_error_code(&error),
                ErrorCode::TlsCertificateError
            ));
            let text = refusal(&error, "db.local", "only X");
            assert!(text.contains(cause), "{text}");
        }
        let alert = tls_io(rustls::Error::AlertReceived(
            rustls::AlertDescription::HandshakeFailure,
        ));
        assert!(matches!(
            tls_error_code(&alert),
            ErrorCode::TlsAlertReceived(p) if p.alert_id == Some(40)
        ));
        assert!(matches!(
            tls_error_code(&std::io::Error::other("no bundle")),
            ErrorCode::TlsCertificateError
        ));
    }

    #[test]
    fn a_failure_is_kept_per_origin_until_a_handshake_succeeds() {
        record_tls_failure("https://Unit.Test:8443", Some("expired".into()));
        assert_eq!(
            tls_failure("https://unit.test:8443").as_deref(),
            Some("expired")
        );
        assert_eq!(tls_failure("https://unit.test"), None, "another port");
        record_tls_failure("https://unit.test:8443", None);
        assert_eq!(tls_failure("https://unit.test:8443"), None);
    }
}
