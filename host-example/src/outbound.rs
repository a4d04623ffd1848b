//! The host's outbound HTTP policy: the component may reach only the
//! configured endpoint's authority; every request is counted and sent through
//! the keep-alive [`Pool`].

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use wasmtime_wasi_http::{Error, WasiBody, WasiHttpHooks};

use crate::pool::Pool;

/// Which authorities the component may send requests to.
#[derive(Debug, Clone, Default)]
pub enum Allow {
    /// Any authority.
    #[default]
    Any,
    /// Only these `host[:port]` authorities (compared case-insensitively, default ports made explicit).
    Only(Vec<String>),
}

/// `wasi:http` hooks that enforce [`Allow`], count requests and send them
/// through a connection pool.
#[derive(Clone)]
pub struct Outbound {
    allow: Allow,
    sent: Arc<AtomicU64>,
    pool: Arc<Pool>,
}

impl Outbound {
    /// Hooks sending through `pool`.
    pub fn new(allow: Allow, pool: Arc<Pool>) -> Self {
        Outbound {
            allow,
            sent: Arc::default(),
            pool,
        }
    }

    /// How many requests the component has sent (denied ones not included).
    pub fn requests_sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    fn allows(&self, uri: &http::Uri) -> bool {
        match &self.allow {
            Allow::Any => true,
            Allow::Only(list) => {
                let Some(target) = normalized_authority(uri) else {
                    return false;
                };
                list.iter().any(|a| a.eq_ignore_ascii_case(&target))
            }
        }
    }
}

/// `host:port` of a URI, with the scheme's default port made explicit.
pub fn normalized_authority(uri: &http::Uri) -> Option<String> {
    let authority = uri.authority()?;
    let port = authority
        .port_u16()
        .unwrap_or(if uri.scheme_str() == Some("http") {
            80
        } else {
            443
        });
    Some(format!("{}:{port}", authority.host()).to_ascii_lowercase())
}

impl WasiHttpHooks for Outbound {
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
        Box::new(async move {
            if !allowed {
                return Err(Error::HttpRequestDenied);
            }
            pool.send(request, options).await
        })
    }
}
