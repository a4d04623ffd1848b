//! A wasmtime host for the `ld-dynamodb-store` component: the embedding
//! (`embed`), the outbound HTTP policy (`outbound`), and conversions between
//! LaunchDarkly's JSON and the component's types (`data`).

pub mod data;
pub mod embed;
pub mod outbound;
