//! The store's error type. No variant ever holds a credential.

use thiserror::Error;

/// An error answered by DynamoDB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceError {
    /// The AWS error code: the part after `#` of `__type`, or an XML `Code`.
    pub code: String,
    pub message: String,
    pub status: u16,
    pub request_id: Option<String>,
    pub attempts: u32,
}

/// A request that got no HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportError {
    /// The `wasi:http` `error-code` case name, such as `connection-refused`.
    pub code: String,
    pub detail: Option<String>,
    pub attempts: u32,
}

/// Why an operation failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StoreError {
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    #[error("invalid input: {0}")]
    InvalidInput(String),
    #[error("transport error: {} ({}){}", .0.code, attempts(&.0.attempts), detail(&.0.detail))]
    Transport(TransportError),
    #[error("DynamoDB error {}: {} (HTTP {}, {}{})", .0.code, .0.message, .0.status, attempts(&.0.attempts), request_id(&.0.request_id))]
    Service(ServiceError),
    #[error("malformed response: {0}")]
    MalformedResponse(String),
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
}
