//! Time, sleep and randomness over WASI.

use std::time::{Duration, SystemTime};

use super::bindings::clocks::{monotonic_clock, wall_clock};
use super::bindings::random::random;
use super::WasiPlatform;
use crate::transport::Platform;

impl Platform for WasiPlatform {
    fn now(&self) -> SystemTime {
        // `wasi:clocks/wall-clock` directly: std has no clock on wasm32-unknown-unknown.
        let now = wall_clock::now();
        SystemTime::UNIX_EPOCH + Duration::new(now.seconds, now.nanoseconds)
    }

    fn sleep(&self, duration: Duration) {
        monotonic_clock::subscribe_duration(nanos(duration)).block();
    }

    fn random_u64(&self) -> u64 {
        random::get_random_u64()
    }

    fn log_error(&self, message: &str) {
        super::log::write_line(&format!("ERROR ld-dynamodb-store: {message}"));
    }
}

/// A duration in nanoseconds, saturating.
pub(super) fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}
