//! A stderr for instances whose output the host keeps: it holds the last
//! [`TAIL_BYTES`] written and never fails a write, so a long-lived instance can
//! log forever without its writes (and so its calls) ever failing.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

/// How much of the latest output is kept.
pub const TAIL_BYTES: usize = 1 << 20;

/// The latest output of an instance's stderr.
#[derive(Clone, Default)]
pub struct StderrTail {
    bytes: Arc<Mutex<Vec<u8>>>,
}

impl StderrTail {
    /// The kept output, as text.
    pub fn contents(&self) -> String {
        String::from_utf8_lossy(&self.bytes.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }

    fn append(&self, data: &[u8]) {
        let mut bytes = self.bytes.lock().unwrap_or_else(|e| e.into_inner());
        bytes.extend_from_slice(data);
        if bytes.len() > TAIL_BYTES {
            let excess = bytes.len() - TAIL_BYTES;
            bytes.drain(..excess);
        }
    }
}

impl AsyncWrite for StderrTail {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.append(data);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl IsTerminal for StderrTail {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for StderrTail {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_the_latest_bytes() {
        let tail = StderrTail::default();
        tail.append(&vec![b'a'; TAIL_BYTES]);
        tail.append(b"the end");
        let text = tail.contents();
        assert_eq!(text.len(), TAIL_BYTES);
        assert!(text.ends_with("the end"));
    }
}
