//! The host's outbound HTTP policy: by default the component may reach only
//! the origin (scheme and authority) of the endpoint it was opened with; every
//! request is counted and sent through the keep-alive [`Pool`].

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

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
    pool: Arc<Pool>,
}

impl Outbound {
    /// Hooks sending through `pool`.
    pub fn new(allow: Allow, pool: Arc<Pool>) -> Self {
        let mut outbound = Outbound {
            allow: allow.clone(),
            origins: Vec::new(),
            sent: Arc::default(),
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

    fn allows(&self, uri: &http::Uri) -> bool {
        self.allow == Allow::Any
            || normalized_origin(uri).is_some_and(|target| self.origins.contains(&target))
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

#[cfg(test)]
mod tests {
    use super::*;

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
