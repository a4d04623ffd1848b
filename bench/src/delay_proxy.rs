//! A TCP proxy that delays each request by a fixed time (the benchmark's
//! "added latency"), run as a child process of the benchmark itself.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A running delay proxy child process.
pub(crate) struct DelayProxy {
    pub(crate) child: std::process::Child,
    pub(crate) endpoint: String,
}

impl DelayProxy {
    /// Starts this benchmark's `delay-proxy` subcommand in front of
    /// `upstream` (`http://host:port`), delaying each request `delay_ms`.
    pub(crate) fn start(upstream: &str, delay_ms: u64) -> Result<DelayProxy> {
        let mut child = std::process::Command::new(std::env::current_exe()?)
            .args([
                "delay-proxy",
                "--upstream",
                upstream.trim_start_matches("http://"),
                "--delay-ms",
                &delay_ms.to_string(),
            ])
            .stdout(std::process::Stdio::piped())
            .spawn()?;
        let mut port = String::new();
        let mut stdout = child.stdout.take().unwrap();
        let mut byte = [0u8; 1];
        while std::io::Read::read(&mut stdout, &mut byte)? == 1 && byte[0] != b'\n' {
            port.push(byte[0] as char);
        }
        Ok(DelayProxy {
            child,
            endpoint: format!("http://127.0.0.1:{}", port.trim()),
        })
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Forwards bytes both ways; each request (the first client bytes after a
/// response) waits `delay` before it reaches the server.
pub(crate) async fn delay_proxy(upstream: &str, delay: Duration) -> Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    println!("{}", listener.local_addr()?.port());
    std::io::stdout().flush()?;
    loop {
        let (client, _) = listener.accept().await?;
        let upstream = upstream.to_string();
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(&upstream).await else {
                return;
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let (client_read, client_write) = client.into_split();
            let (server_read, server_write) = server.into_split();
            let new_request = Arc::new(AtomicBool::new(true));
            let response_seen = new_request.clone();
            let up = pump(client_read, server_write, move || {
                new_request.swap(false, Ordering::SeqCst).then_some(delay)
            });
            let down = pump(server_read, client_write, move || {
                response_seen.store(true, Ordering::SeqCst);
                None
            });
            tokio::join!(up, down);
        });
    }
}

/// Copies `from` to `to` until either side closes; before writing each chunk
/// it waits for what `pause` returns, if anything. Then shuts `to` down.
async fn pump(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    mut pause: impl FnMut() -> Option<Duration>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(delay) = pause() {
            tokio::time::sleep(delay).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}
