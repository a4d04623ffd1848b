//! The edge flag server under `wasmtime serve` as the benchmark drives it:
//! the server process, requests, keep-alive connections and load runs.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use tokio::net::TcpStream;

use super::REGION;

/// `wasmtime serve` running the edge flag server; killed on drop.
pub(crate) struct EdgeServer {
    pub(crate) child: std::process::Child,
    pub(crate) addr: String,
}

impl EdgeServer {
    /// Served as the README serves it (`scripts/edge-serve-flags.sh`), with
    /// `auth=none`, the secrets in the environment, and `settings` as more
    /// `wasi:config` variables (`name=value`).
    pub(crate) fn start(
        wasmtime: &Path,
        component: &Path,
        endpoint: &str,
        table: &str,
        settings: &[String],
    ) -> Result<EdgeServer> {
        use std::io::BufRead;
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let flags = Command::new(root.join("scripts/edge-serve-flags.sh")).output()?;
        if !flags.status.success() {
            bail!("scripts/edge-serve-flags.sh failed");
        }
        let flags = String::from_utf8(flags.stdout)?;
        let mut child = Command::new(wasmtime)
            .args(["serve", "--addr", "127.0.0.1:0"])
            .args(flags.lines())
            .env("AWS_ACCESS_KEY_ID", "AKIDBENCH")
            .env("AWS_SECRET_ACCESS_KEY", "bench-secret")
            .args(["-S", &format!("config-var=table={table}")])
            .args(["-S", &format!("config-var=region={REGION}")])
            .args(["-S", &format!("config-var=endpoint={endpoint}")])
            .args(["-S", "config-var=auth=none"])
            .args(
                settings
                    .iter()
                    .flat_map(|s| ["-S".to_string(), format!("config-var={s}")]),
            )
            .arg(component)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("start wasmtime serve")?;
        let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        while stderr.read_line(&mut line)? > 0 {
            if let Some(rest) = line.trim().strip_prefix("Serving HTTP on http://") {
                let addr = rest.trim_end_matches('/').to_string();
                std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
                return Ok(EdgeServer { child, addr });
            }
            line.clear();
        }
        bail!("wasmtime serve did not start")
    }
}

impl Drop for EdgeServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Latencies of a load run.
pub(crate) struct EdgeLoad {
    pub(crate) per_second: f64,
    pub(crate) p50: f64,
    pub(crate) p99: f64,
    pub(crate) body_bytes: usize,
}

/// One request to the edge server.
#[derive(Clone)]
pub(crate) struct EdgeRequest {
    pub(crate) method: http::Method,
    pub(crate) path: String,
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) body: bytes::Bytes,
}

impl EdgeRequest {
    /// `GET /sdk/latest-all`, revalidating `if_none_match` when given.
    pub(crate) fn latest_all(if_none_match: Option<&str>) -> EdgeRequest {
        EdgeRequest {
            method: http::Method::GET,
            path: "/sdk/latest-all".into(),
            headers: if_none_match
                .map(|tag| ("if-none-match", tag.to_string()))
                .into_iter()
                .collect(),
            body: bytes::Bytes::new(),
        }
    }
}

pub(crate) type EdgeSender =
    hyper::client::conn::http1::SendRequest<http_body_util::Full<bytes::Bytes>>;

/// One keep-alive connection to the edge server.
pub(crate) async fn edge_connection(addr: &str) -> Result<EdgeSender> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) =
        hyper::client::conn::http1::handshake(wasmtime_wasi_http::io::TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

/// Sends one request; (status, ETag, body length).
pub(crate) async fn edge_send(
    sender: &mut EdgeSender,
    addr: &str,
    edge_request: &EdgeRequest,
) -> Result<(u16, String, usize)> {
    use http_body_util::BodyExt;
    let mut request = http::Request::builder()
        .method(edge_request.method.clone())
        .uri(&edge_request.path)
        .header("host", addr);
    for (name, value) in &edge_request.headers {
        request = request.header(*name, value);
    }
    sender.ready().await?;
    let response = sender
        .send_request(request.body(http_body_util::Full::new(edge_request.body.clone()))?)
        .await?;
    let status = response.status().as_u16();
    let etag = response
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, etag, body.len()))
}

pub(crate) async fn edge_get(addr: &str, request: &EdgeRequest) -> Result<(u16, String, usize)> {
    let mut sender = edge_connection(addr).await?;
    edge_send(&mut sender, addr, request).await
}

/// `requests` of `request` over `connections` keep-alive connections, each
/// answered `expected`.
pub(crate) async fn edge_load(
    addr: &str,
    request: &EdgeRequest,
    expected: u16,
    requests: usize,
    connections: usize,
) -> Result<EdgeLoad> {
    let started = Instant::now();
    let mut workers = Vec::new();
    for worker in 0..connections {
        let addr = addr.to_string();
        let request = request.clone();
        let count = requests / connections + usize::from(worker < requests % connections);
        workers.push(tokio::spawn(async move {
            let mut sender = edge_connection(&addr).await?;
            let mut latencies = Vec::with_capacity(count);
            let mut body = 0;
            for _ in 0..count {
                let t = Instant::now();
                let (status, _, len) = edge_send(&mut sender, &addr, &request).await?;
                if status != expected {
                    bail!("the edge server answered {status}, not {expected}");
                }
                latencies.push(t.elapsed().as_secs_f64());
                body = len;
            }
            Ok::<_, anyhow::Error>((latencies, body))
        }));
    }
    let mut latencies = Vec::with_capacity(requests);
    let mut body_bytes = 0;
    for worker in workers {
        let (mut l, body) = worker.await??;
        latencies.append(&mut l);
        body_bytes = body;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    Ok(EdgeLoad {
        per_second: requests as f64 / elapsed,
        p50: at(0.50),
        p99: at(0.99),
        body_bytes,
    })
}
