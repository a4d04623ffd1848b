//! The platform over WASI 0.2: `wasi:http` for requests, `wasi:clocks` and
//! `wasi:random` for backoff, stderr for the error log. Compiled for wasm only.

mod clock;
mod http;

/// The component's [`crate::transport::Platform`].
pub struct WasiPlatform;
