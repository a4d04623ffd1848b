//! The store's error type. No variant ever holds a credential.

use thiserror::Error;

/// An error answered by DynamoDB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceError {
    /// The AWS error code: the part after `#` of `__type`, or an XML `Code`.
    pub code: String,
    /// The service's message (signing material redacted).
    pub message: String,
    /// The HTTP status of the response.
    pub status: u16,
    /// The `x-amzn-requestid` header, when present.
    pub request_id: Option<String>,
    /// How many attempts were made before giving up.
    pub attempts: u32,
}

/// A request that got no HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportError {
    /// The `wasi:http` `error-code` case name, such as `connection-refused`
    /// (see [`TransportError::kind`]).
    pub code: String,
    /// Extra detail from the host, when it gave any.
    pub detail: Option<String>,
    /// How many attempts were made before giving up.
    pub attempts: u32,
}

impl TransportError {
    /// What kind of failure this is, by its code.
    pub fn kind(&self) -> TransportKind {
        TransportKind::from_code(&self.code)
    }
}

/// The kind of a transport error: the `wasi:http` `error-code` case its code
/// names. The WIT carries the code as a string (so a host that knows fewer
/// cases still reads it); this is the code as a value to match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportKind {
    /// `DNS-timeout`.
    DnsTimeout,
    /// `DNS-error`.
    DnsError,
    /// `destination-not-found`.
    DestinationNotFound,
    /// `destination-unavailable`.
    DestinationUnavailable,
    /// `destination-IP-prohibited`.
    DestinationIpProhibited,
    /// `destination-IP-unroutable`.
    DestinationIpUnroutable,
    /// `connection-refused`.
    ConnectionRefused,
    /// `connection-terminated`.
    ConnectionTerminated,
    /// `connection-timeout`.
    ConnectionTimeout,
    /// `connection-read-timeout`.
    ConnectionReadTimeout,
    /// `connection-write-timeout`.
    ConnectionWriteTimeout,
    /// `connection-limit-reached`.
    ConnectionLimitReached,
    /// `TLS-protocol-error`.
    TlsProtocolError,
    /// `TLS-certificate-error`.
    TlsCertificateError,
    /// `TLS-alert-received`.
    TlsAlertReceived,
    /// `HTTP-request-denied`: the host refused the request (an origin it does
    /// not allow, a header it refused).
    HttpRequestDenied,
    /// `HTTP-request-URI-invalid`.
    HttpRequestUriInvalid,
    /// `HTTP-response-incomplete`.
    HttpResponseIncomplete,
    /// `HTTP-response-timeout`: no complete response within the attempt's deadline.
    HttpResponseTimeout,
    /// `HTTP-response-body-size`: the body exceeded the store's limit.
    HttpResponseBodySize,
    /// `HTTP-protocol-error`.
    HttpProtocolError,
    /// `internal-error`.
    InternalError,
    /// A code this version does not name.
    Other,
}

/// Each kind with its code, as the WIT's `error-code` cases spell them.
const TRANSPORT_CODES: &[(TransportKind, &str)] = &[
    (TransportKind::DnsTimeout, "DNS-timeout"),
    (TransportKind::DnsError, "DNS-error"),
    (TransportKind::DestinationNotFound, "destination-not-found"),
    (
        TransportKind::DestinationUnavailable,
        "destination-unavailable",
    ),
    (
        TransportKind::DestinationIpProhibited,
        "destination-IP-prohibited",
    ),
    (
        TransportKind::DestinationIpUnroutable,
        "destination-IP-unroutable",
    ),
    (TransportKind::ConnectionRefused, "connection-refused"),
    (TransportKind::ConnectionTerminated, "connection-terminated"),
    (TransportKind::ConnectionTimeout, "connection-timeout"),
    (
        TransportKind::ConnectionReadTimeout,
        "connection-read-timeout",
    ),
    (
        TransportKind::ConnectionWriteTimeout,
        "connection-write-timeout",
    ),
    (
        TransportKind::ConnectionLimitReached,
        "connection-limit-reached",
    ),
    (TransportKind::TlsProtocolError, "TLS-protocol-error"),
    (TransportKind::TlsCertificateError, "TLS-certificate-error"),
    (TransportKind::TlsAlertReceived, "TLS-alert-received"),
    (TransportKind::HttpRequestDenied, "HTTP-request-denied"),
    (
        TransportKind::HttpRequestUriInvalid,
        "HTTP-request-URI-invalid",
    ),
    (
        TransportKind::HttpResponseIncomplete,
        "HTTP-response-incomplete",
    ),
    (TransportKind::HttpResponseTimeout, "HTTP-response-timeout"),
    (
        TransportKind::HttpResponseBodySize,
        "HTTP-response-body-size",
    ),
    (TransportKind::HttpProtocolError, "HTTP-protocol-error"),
    (TransportKind::InternalError, "internal-error"),
];

impl TransportKind {
    /// The kind a code names; [`TransportKind::Other`] for any other code.
    pub fn from_code(code: &str) -> TransportKind {
        TRANSPORT_CODES
            .iter()
            .find(|(_, c)| *c == code)
            .map_or(TransportKind::Other, |(kind, _)| *kind)
    }

    /// The code of this kind; `None` for [`TransportKind::Other`].
    pub fn code(self) -> Option<&'static str> {
        TRANSPORT_CODES
            .iter()
            .find(|(kind, _)| *kind == self)
            .map(|(_, code)| *code)
    }

    /// Whether the TLS handshake or session failed.
    pub fn is_tls(self) -> bool {
        matches!(
            self,
            TransportKind::TlsProtocolError
                | TransportKind::TlsCertificateError
                | TransportKind::TlsAlertReceived
        )
    }
}

/// Why an operation failed. Its text (`Display`) is the one text of a store
/// error for the component, the host and the CLI.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StoreError {
    /// The configuration is invalid; no request was sent.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// An argument is invalid; no request was sent.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The request could not be sent or its response could not be read.
    #[error("transport error: {} ({}){}", .0.code, attempts(&.0.attempts), detail(&.0.detail))]
    Transport(TransportError),
    /// DynamoDB answered with an error.
    #[error("DynamoDB error {}: {} (HTTP {}, {}{})", .0.code, .0.message, .0.status, attempts(&.0.attempts), request_id(&.0.request_id))]
    Service(ServiceError),
    /// DynamoDB answered something that could not be understood, or stored
    /// data is malformed.
    #[error("malformed response: {0}")]
    MalformedResponse(String),
}

/// The store's error as a guest's generated WIT `store-error` of
/// `ld-dynamodb:store/types` (`$wit` names the generated types module): the
/// one mapping of the variant for every guest.
#[macro_export]
macro_rules! store_error_to_wit {
    ($($wit:ident)::+, $error:expr) => {{
        use $crate::error::StoreError as Core;
        match $error {
            Core::InvalidConfig(m) => $($wit)::+::StoreError::InvalidConfig(m),
            Core::InvalidInput(m) => $($wit)::+::StoreError::InvalidInput(m),
            Core::Transport(t) => $($wit)::+::StoreError::Transport($($wit)::+::TransportError {
                code: t.code,
                detail: t.detail,
                attempts: t.attempts,
            }),
            Core::Service(s) => $($wit)::+::StoreError::Service($($wit)::+::ServiceError {
                code: s.code,
                message: s.message,
                status: s.status,
                request_id: s.request_id,
                attempts: s.attempts,
            }),
            Core::MalformedResponse(m) => $($wit)::+::StoreError::MalformedResponse(m),
        }
    }};
}

impl StoreError {
    pub(crate) fn malformed(what: impl Into<String>) -> StoreError {
        StoreError::MalformedResponse(what.into())
    }

    /// The error as reported after `attempts` attempts (service and
    /// transport errors carry the count).
    pub(crate) fn after(mut self, attempts: u32) -> StoreError {
        match &mut self {
            StoreError::Service(e) => e.attempts = attempts,
            StoreError::Transport(e) => e.attempts = attempts,
            _ => {}
        }
        self
    }

    /// The AWS error code of a service error.
    pub fn service_code(&self) -> Option<&str> {
        match self {
            StoreError::Service(e) => Some(&e.code),
            _ => None,
        }
    }
}

fn attempts(n: &u32) -> String {
    if *n == 1 {
        "1 attempt".into()
    } else {
        format!("{n} attempts")
    }
}

fn detail(d: &Option<String>) -> String {
    d.as_ref().map(|d| format!(": {d}")).unwrap_or_default()
}

fn request_id(id: &Option<String>) -> String {
    id.as_ref()
        .map(|id| format!(", request id {id}"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_code_attempts_and_request_id() {
        let e = StoreError::Service(ServiceError {
            code: "ThrottlingException".into(),
            message: "slow down".into(),
            status: 400,
            request_id: Some("RID".into()),
            attempts: 3,
        });
        assert_eq!(
            e.to_string(),
            "DynamoDB error ThrottlingException: slow down (HTTP 400, 3 attempts, request id RID)"
        );
        let e = StoreError::Transport(TransportError {
            code: "connection-refused".into(),
            detail: None,
            attempts: 1,
        });
        assert_eq!(
            e.to_string(),
            "transport error: connection-refused (1 attempt)"
        );
    }

    #[test]
    fn every_transport_kind_reads_back_from_its_code() {
        for (kind, code) in TRANSPORT_CODES {
            assert_eq!(TransportKind::from_code(code), *kind);
            assert_eq!(kind.code(), Some(*code));
        }
        let kinds: std::collections::HashSet<_> = TRANSPORT_CODES.iter().map(|(k, _)| k).collect();
        assert_eq!(kinds.len(), TRANSPORT_CODES.len(), "one code per kind");
        assert_eq!(
            TransportKind::from_code("HTTP-upgrade-failed"),
            TransportKind::Other
        );
        assert_eq!(TransportKind::Other.code(), None);
        assert!(TransportKind::from_code("TLS-alert-received").is_tls());
        assert!(!TransportKind::ConnectionRefused.is_tls());
        // The body limit's code is the transport's own constant.
        assert_eq!(
            TransportKind::from_code(crate::transport::BODY_TOO_LARGE),
            TransportKind::HttpResponseBodySize
        );
    }
}
