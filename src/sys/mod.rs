//! The platform over WASI 0.2.0: `wasi:http` for requests, `wasi:clocks` and
//! `wasi:random` for signing time and backoff, `wasi:cli/stderr` for the error
//! log. Only interfaces of the `wasi:http/proxy` world. Compiled for wasm only
//! (feature `wasi`); the guests that link the store crate log through
//! [`write_line`] too.

mod clock;
mod http;
mod log;

use crate::bindings::wasi as bindings;

pub use log::write_line;

/// The component's [`crate::transport::Platform`].
pub struct WasiPlatform;
