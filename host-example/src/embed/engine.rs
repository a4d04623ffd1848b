//! The engine this host runs components on: epoch interruption with a thread
//! that advances the epoch (the call timeout), and what each instance's host
//! side may do ([`HostOptions`]).

use std::time::Duration;

use anyhow::{Context, Result};
use wasmtime::{Config, Engine};

use crate::outbound::Allow;

/// Default cap of an instance's linear memory.
pub const DEFAULT_MEMORY_LIMIT: usize = 256 << 20;
/// Default wall-clock limit of one call into the component.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(300);
/// How often the engine's epoch advances (the granularity of the call timeout).
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);
/// The largest call timeout in ticks (about 350 years).
pub(crate) const MAX_TICKS: u64 = 1 << 40;

/// What each instance's host side may do: [`HostOptions::default`], changed
/// with its setters.
#[derive(Debug, Clone)]
pub struct HostOptions {
    pub(crate) allow: Allow,
    pub(crate) capture_stderr: bool,
    pub(crate) memory_limit: usize,
    pub(crate) call_timeout: Duration,
}

impl HostOptions {
    /// Origins the component may reach; by default only the configured endpoints.
    pub fn allow(mut self, allow: Allow) -> Self {
        self.allow = allow;
        self
    }

    /// Keep the tail of the component's stderr in memory (see
    /// [`super::Instance::stderr`]) instead of streaming it to the host's
    /// stderr (the default).
    pub fn capture_stderr(mut self, capture: bool) -> Self {
        self.capture_stderr = capture;
        self
    }

    /// Largest linear memory an instance may grow to, in bytes (default
    /// [`DEFAULT_MEMORY_LIMIT`]); past it the allocation fails and the call traps.
    pub fn memory_limit(mut self, bytes: usize) -> Self {
        self.memory_limit = bytes;
        self
    }

    /// Wall-clock limit of one call (an export such as `init` or `get`;
    /// default [`DEFAULT_CALL_TIMEOUT`]); past it the guest is interrupted at
    /// its next check and the call traps.
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }
}

impl Default for HostOptions {
    fn default() -> Self {
        HostOptions {
            allow: Allow::default(),
            capture_stderr: false,
            memory_limit: DEFAULT_MEMORY_LIMIT,
            call_timeout: DEFAULT_CALL_TIMEOUT,
        }
    }
}

/// An engine set up as this host needs: epoch interruption on, with a
/// background thread that advances the epoch until the engine is dropped.
pub fn new_engine() -> Result<Engine> {
    let mut config = Config::new();
    config.epoch_interruption(true);
    let engine = Engine::new(&config)?;
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("ld-dynamodb-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .context("cannot start the epoch thread")?;
    Ok(engine)
}
