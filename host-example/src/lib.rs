//! A wasmtime host for the `ld-dynamodb-store` component, as a library.
//!
//! [`DataStore`] is LaunchDarkly's DynamoDB data store for Rust services:
//! `Send + Sync`, backed by a small pool of component instances that share one
//! compiled component ([`Runtime`]) and one keep-alive connection pool, with
//! AWS credentials from the default chain refreshed before they expire
//! ([`CredentialSource`]), and a fresh instance after a trap. With the
//! `launchdarkly` feature, [`launchdarkly::PersistentStoreFactory`] plugs it
//! into LaunchDarkly's Rust server SDK.
//!
//! ```no_run
//! use std::sync::Arc;
//! use ld_dynamodb_host::{DataStore, Runtime};
//!
//! # async fn example() -> anyhow::Result<()> {
//! // Compile the component once (cached on disk), share it between stores.
//! let runtime = Arc::new(Runtime::load("ld_dynamodb_store.wasm".as_ref())?);
//! let store = DataStore::builder("flags-table")
//!     .region("us-east-1")
//!     .build(runtime)
//!     .await?;
//! if let Some(flag) = store.get("features", "new-checkout").await? {
//!     println!("version {}: {}", flag.version, flag.json);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Modules: a self-stopping private runtime (`background`), the embedding and the component's types (`embed`), the pooled
//! store (`store`), credentials (`credentials`), the compile cache (`cache`),
//! the outbound HTTP policy (`outbound`) and its keep-alive connections (`connections`),
//! the AWS settings read from the environment (`environment`), the flag
//! evaluator component (`evaluator`),
//! conversions between LaunchDarkly's JSON and the component's types (`data`).

#![deny(missing_docs)]

pub mod background;
pub mod cache;
pub mod connections;
pub mod credentials;
pub mod data;
pub mod embed;
pub mod environment;
pub mod error;
pub mod evaluator;
#[cfg(feature = "launchdarkly")]
pub mod launchdarkly;
pub mod outbound;
pub mod stderr;
pub mod store;

pub use credentials::CredentialSource;
pub use embed::{HostOptions, Runtime};
pub use error::Error;
pub use store::{DataStore, DataStoreBuilder};
