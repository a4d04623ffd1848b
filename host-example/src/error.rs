//! The error of the library's API: the store's own error, or why the call
//! could not reach the store.

use crate::embed::{StoreConfig, StoreError};

/// Why a call failed. None carries a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store's own typed error (configuration, input, DynamoDB,
    /// transport), with its one text.
    #[error(transparent)]
    Store(StoreError),
    /// No credentials could be resolved.
    #[error("cannot resolve AWS credentials: {0}")]
    Credentials(String),
    /// A setting is missing or invalid; the text says how to set it.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The component trapped or the host failed; the instance was discarded
    /// and the next call runs on a new one.
    #[error("component failure: {0:#}")]
    Host(anyhow::Error),
    /// The flag evaluator refused a call's input: an invalid context or
    /// default value (its store's errors are [`Error::Store`]).
    #[error("{}", evaluation_refusal(.0))]
    Evaluation(crate::evaluator::EvalError),
    /// The flag evaluator refused its event settings (an invalid base URI or
    /// SDK key).
    #[error("invalid event settings: {0}")]
    Events(String),
}

/// The evaluator's own words for what it refused.
fn evaluation_refusal(error: &crate::evaluator::EvalError) -> String {
    use crate::evaluator::EvalError;
    match error {
        EvalError::InvalidContext(why) | EvalError::InvalidDefault(why) => why.clone(),
        EvalError::Store(e) => crate::embed::store_error(e.clone()).to_string(),
    }
}

/// Why a call into the component stopped before it returned (a trap), in
/// words: the error a trapped call gives instead of wasmtime's, which carries
/// a wasm backtrace. The instance is discarded after it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Stopped {
    /// The call ran into the host's call deadline
    /// ([`crate::HostOptions::call_timeout`]) and was interrupted.
    #[error(
        "{operation} did not finish within the call deadline of {} s and was interrupted{}; \
         allow more time with a longer call deadline (HostOptions::call_timeout; the CLI's \
         --call-timeout or LD_DYNAMODB_CALL_TIMEOUT)",
        .deadline.as_secs_f64(),
        .progress.map(|(written, total)| format!(
            " ({written} of {total} items written; the $inited marker was not written)"
        )).unwrap_or_default()
    )]
    Deadline {
        /// The call, as the WIT names it (`init`, `get`, ...).
        operation: String,
        /// The call deadline it ran into.
        deadline: std::time::Duration,
        /// For Init: items written so far, of those given.
        progress: Option<(u64, u64)>,
    },
    /// The call ran out of fuel.
    #[error("{operation} ran out of fuel and was stopped")]
    OutOfFuel {
        /// The call, as the WIT names it.
        operation: String,
    },
    /// The component needed more linear memory than the host allows.
    #[error(
        "{operation} needed more memory than the limit of {limit} bytes and was stopped \
         (HostOptions::memory_limit)"
    )]
    MemoryLimit {
        /// The call, as the WIT names it.
        operation: String,
        /// The limit, in bytes.
        limit: usize,
    },
    /// The component reached code it should never reach: a bug in it.
    #[error(
        "{operation} stopped: the component reached unreachable code (a bug in the component)"
    )]
    Unreachable {
        /// The call, as the WIT names it.
        operation: String,
    },
    /// Another trap, by its description.
    #[error("{operation} stopped: the component trapped ({trap})")]
    Trap {
        /// The call, as the WIT names it.
        operation: String,
        /// wasmtime's description of the trap.
        trap: String,
    },
}

impl Error {
    /// Why the call stopped, when the component trapped.
    pub fn stopped(&self) -> Option<&Stopped> {
        match self {
            Error::Host(e) => e.downcast_ref(),
            _ => None,
        }
    }

    /// The store error, when that is what this is.
    pub fn store_error(&self) -> Option<&StoreError> {
        match self {
            Error::Store(e) => Some(e),
            _ => None,
        }
    }

    /// The store error, when that is what this is; else this error.
    pub fn into_store_error(self) -> Result<StoreError, Error> {
        match self {
            Error::Store(e) => Ok(e),
            other => Err(other),
        }
    }
}

/// `error` with what a person needs to act on it: a missing table
/// (`ResourceNotFoundException`) names the table, region and endpoint asked,
/// a request without an answer (a transport error) the endpoint it went to.
pub fn explained(error: StoreError, config: &StoreConfig) -> StoreError {
    match error {
        StoreError::Service(mut e) if e.code == "ResourceNotFoundException" => {
            e.message = format!(
                "{} (table {:?} in region {} at {}: create it with `ld-dynamodb create-table`, \
                 or check the table name, the region and the endpoint)",
                e.message,
                config.table(),
                config.region(),
                endpoint_of(config)
            );
            StoreError::Service(e)
        }
        StoreError::Transport(mut e) => {
            let origin = endpoint_of(config);
            let endpoint = format!("endpoint {origin}");
            // A `wasi:http` TLS error code carries no text: the pool kept the cause.
            let tls = e
                .kind()
                .is_tls()
                .then(|| crate::connections::tls_failure(&origin))
                .flatten();
            e.detail = Some(
                [e.detail.take(), tls, Some(endpoint)]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join("; "),
            );
            StoreError::Transport(e)
        }
        other => other,
    }
}

/// The endpoint requests go to, as scheme and authority: the configured one
/// or DynamoDB's public one for the region (an endpoint is validated to have
/// no user info, path or query, so this holds nothing secret).
fn endpoint_of(config: &StoreConfig) -> String {
    ld_dynamodb_store::endpoint::resolve(config.region(), config.endpoint())
        .map(|e| format!("{}://{}", e.scheme, e.authority))
        .unwrap_or_else(|_| "an invalid endpoint".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embed::{ServiceError, TransportError};

    #[test]
    fn a_store_error_reads_as_the_store_writes_it() {
        assert_eq!(
            Error::Store(StoreError::InvalidInput("no key".into())).to_string(),
            "invalid input: no key"
        );
    }

    fn config(endpoint: Option<&str>) -> StoreConfig {
        let credentials = crate::embed::Credentials {
            access_key_id: "AKID".into(),
            secret_access_key: "the-secret".into(),
            session_token: Some("the-token".into()),
        };
        StoreConfig::new("flags", "eu-west-1", credentials)
            .with_endpoint(endpoint.map(String::from))
    }

    #[test]
    fn a_transport_error_names_the_endpoint_it_tried() {
        let refused = |detail: Option<&str>| {
            StoreError::Transport(TransportError {
                code: "connection-refused".into(),
                detail: detail.map(String::from),
                attempts: 5,
            })
        };
        let local = config(Some("http://127.0.0.1:5005/"));
        assert_eq!(
            explained(refused(None), &local).to_string(),
            "transport error: connection-refused (5 attempts): endpoint http://127.0.0.1:5005"
        );
        assert_eq!(
            explained(refused(Some("dns error")), &config(None)).to_string(),
            "transport error: connection-refused (5 attempts): dns error; \
             endpoint https://dynamodb.eu-west-1.amazonaws.com"
        );
        let text = explained(refused(None), &local).to_string();
        assert!(!text.contains("the-secret") && !text.contains("the-token"));
    }

    #[test]
    fn a_missing_table_names_table_region_and_endpoint() {
        let missing = StoreError::Service(ServiceError {
            code: "ResourceNotFoundException".into(),
            message: "Requested resource not found".into(),
            status: 400,
            request_id: None,
            attempts: 1,
        });
        assert_eq!(
            explained(missing, &config(None)).to_string(),
            "DynamoDB error ResourceNotFoundException: Requested resource not found (table \
             \"flags\" in region eu-west-1 at https://dynamodb.eu-west-1.amazonaws.com: create \
             it with `ld-dynamodb create-table`, or check the table name, the region and the \
             endpoint) (HTTP 400, 1 attempt)"
        );
    }
}
