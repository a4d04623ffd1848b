//! The platform over WASI 0.2.0: `wasi:http` for requests, `wasi:clocks` and
//! `wasi:random` for signing time and backoff, `wasi:cli/stderr` for the error
//! log. Only interfaces of the `wasi:http/proxy` world. Compiled for wasm only.

mod clock;
mod http;
mod log;

use crate::bindings::wasi as bindings;

/// The component's [`crate::transport::Platform`].
pub struct WasiPlatform;
