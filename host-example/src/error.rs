//! The error of the library's store API.

use crate::embed::{describe, StoreConfig, StoreError};

/// Why a call on a [`crate::DataStore`] failed. None carries a secret.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store's own typed error (configuration, input, DynamoDB, transport).
    #[error("{}", describe(.0))]
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
}

impl Error {
    /// The store error, when that is what this is.
    pub fn store_error(&self) -> Option<&StoreError> {
        match self {
            Error::Store(e) => Some(e),
            _ => None,
        }
    }
}

/// `error` with what a person needs to act on it: a missing table
/// (`ResourceNotFoundException`) names the table, region and endpoint asked.
pub fn explained(error: StoreError, config: &StoreConfig) -> StoreError {
    match error {
        StoreError::Service(mut e) if e.code == "ResourceNotFoundException" => {
            e.message = format!(
                "{} (table {:?} in region {} at {}: create it with `ld-dynamodb create-table`, \
                 or check the table name, the region and the endpoint)",
                e.message,
                config.table,
                config.region,
                config
                    .endpoint
                    .as_deref()
                    .unwrap_or("DynamoDB's public endpoint")
            );
            StoreError::Service(e)
        }
        other => other,
    }
}
