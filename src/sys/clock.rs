//! Time, sleep, randomness and the error log over WASI.

use std::time::{Duration, SystemTime};

use wasip2::clocks::monotonic_clock;

use super::WasiPlatform;
use crate::transport::Platform;

impl Platform for WasiPlatform {
    fn now(&self) -> SystemTime {
        // std reads `wasi:clocks/wall-clock` on wasm32-wasip2.
        SystemTime::now()
    }

    fn sleep(&self, duration: Duration) {
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        monotonic_clock::subscribe_duration(nanos).block();
    }

    fn random_u64(&self) -> u64 {
        wasip2::random::random::get_random_u64()
    }

    fn log_error(&self, message: &str) {
        eprintln!("ERROR ld-dynamodb-store: {message}");
    }
}
