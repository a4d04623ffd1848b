//! The error of the library's store API.

use crate::embed::{describe, StoreError};

/// Why a call on a [`crate::DataStore`] failed. None carries a secret.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store's own typed error (configuration, input, DynamoDB, transport).
    #[error("{}", describe(.0))]
    Store(StoreError),
    /// No credentials could be resolved.
    #[error("cannot resolve AWS credentials: {0}")]
    Credentials(String),
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
