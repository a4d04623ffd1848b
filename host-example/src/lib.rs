//! A wasmtime host for the `ld-dynamodb-store` component: the embedding
//! (`embed`), the compile cache (`cache`), the outbound HTTP policy (`outbound`) and its keep-alive client (`pool`), and conversions between
//! LaunchDarkly's JSON and the component's types (`data`).

pub mod cache;
pub mod data;
pub mod embed;
pub mod outbound;
pub mod pool;
pub mod stderr;
