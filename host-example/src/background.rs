//! A private tokio runtime, shut down without waiting when dropped, so it may
//! be dropped anywhere, async code included.

use tokio::runtime::{Builder, Handle, Runtime};

/// A multi-thread runtime of its own for background work.
pub struct Background(Option<Runtime>);

impl Background {
    /// A runtime with `threads` worker threads named `name`.
    pub fn new(name: &str, threads: usize) -> std::io::Result<Self> {
        let runtime = Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name(name)
            .enable_all()
            .build()?;
        Ok(Background(Some(runtime)))
    }

    /// Where to spawn work.
    pub fn handle(&self) -> &Handle {
        self.0.as_ref().expect("set until dropped").handle()
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}
