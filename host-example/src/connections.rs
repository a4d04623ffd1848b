//! A keep-alive HTTP/1.1 client for the component's outbound requests.
//! wasmtime-wasi-http's default client opens a new TCP (and TLS) connection
//! per request; this one keeps idle connections per authority and reuses them,
//! verifies TLS against the webpki roots (those AWS endpoints chain to), and
//! applies the timeouts the component passes in its request options.

use std::collections::HashMap;
use std::future::Future;
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
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody};

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

/// Connections by `scheme://host:port`.
pub struct Pool {
    idle: Mutex<HashMap<String, Vec<SendRequest<WasiBody>>>>,
    tls: tokio_rustls::TlsConnector,
    /// The runtime that opens and drives the connections; when `None`, the
    /// runtime of the call that opens one.
    driver: Option<tokio::runtime::Handle>,
}

impl Default for Pool {
    fn default() -> Self {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.into(),
        };
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        Pool {
            idle: Mutex::default(),
            tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
            driver: None,
        }
    }
}

impl Pool {
    /// A pool whose connections are opened and driven on `runtime`, so that
    /// callers on other runtimes can share them: a request never waits for
    /// the runtime of the call that opened its connection.
    pub fn driven_by(runtime: tokio::runtime::Handle) -> Self {
        Pool {
            driver: Some(runtime),
            ..Pool::default()
        }
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
        let (address, host, connector) = (address.to_string(), host.to_string(), self.tls.clone());
        let connect = async move {
            let connect = Self::open(&address, &host, tls, connector);
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

    /// Opens a connection; its driver task runs on the current runtime.
    async fn open(
        address: &str,
        host: &str,
        tls: bool,
        connector: tokio_rustls::TlsConnector,
    ) -> Result<SendRequest<WasiBody>, Error> {
        let stream = TcpStream::connect(address).await.map_err(Error::Connect)?;
        stream.set_nodelay(true).map_err(Error::Connect)?;
        if tls {
            let name =
                rustls::pki_types::ServerName::try_from(host.trim_matches(['[', ']']).to_string())
                    .map_err(|_| Error::HttpRequestUriInvalid)?;
            let stream = connector.connect(name, stream).await.map_err(Error::Tls)?;
            handshake(TokioIo::new(stream)).await
        } else {
            handshake(TokioIo::new(stream)).await
        }
    }
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
