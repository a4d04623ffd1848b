//! The edge flag server under `wasmtime serve` as the benchmark drives it:
//! the server process, requests, keep-alive connections and load runs.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tokio::net::TcpStream;

use super::REGION;

/// `wasmtime serve` running the edge flag server; killed on drop.
pub(crate) struct EdgeServer {
    pub(crate) child: std::process::Child,
    pub(crate) addr: String,
}

impl EdgeServer {
    /// Served as docs/edge.md serves it (`scripts/edge-serve-flags.sh`), with
    /// `auth=none`, the secrets in the environment, and `settings` as more
    /// `wasi:config` variables (`name=value`).
    pub(crate) fn start(
        wasmtime: &Path,
        component: &Path,
        endpoint: &str,
        table: &str,
        settings: &[String],
    ) -> Result<EdgeServer> {
        Self::start_with(wasmtime, component, endpoint, table, settings, true)
    }

    /// As [`EdgeServer::start`]; without `reuse`, the script's options minus
    /// `--max-instance-reuse-count N`, so that `wasmtime serve` makes a new
    /// instance for every request (its default for `wasi:http` 0.2).
    pub(crate) fn start_with(
        wasmtime: &Path,
        component: &Path,
        endpoint: &str,
        table: &str,
        settings: &[String],
        reuse: bool,
    ) -> Result<EdgeServer> {
        use std::io::BufRead;
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let flags = Command::new(root.join("scripts/edge-serve-flags.sh")).output()?;
        if !flags.status.success() {
            bail!("scripts/edge-serve-flags.sh failed");
        }
        let flags = String::from_utf8(flags.stdout)?;
        let mut flags: Vec<&str> = flags.lines().collect();
        if !reuse {
            let at = flags
                .iter()
                .position(|f| *f == "--max-instance-reuse-count")
                .context("scripts/edge-serve-flags.sh has no --max-instance-reuse-count")?;
            flags.drain(at..(at + 2).min(flags.len()));
        }
        let mut child = Command::new(wasmtime)
            .args(["serve", "--addr", "127.0.0.1:0"])
            .args(&flags)
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
    /// The answers, by status.
    pub(crate) statuses: BTreeMap<u16, usize>,
}

impl EdgeLoad {
    pub(crate) fn answers(&self) -> usize {
        self.statuses.values().sum()
    }
}

/// How long a load run lasts.
#[derive(Clone, Copy)]
pub(crate) enum Until {
    /// This many requests in all.
    Requests(usize),
    /// Requests until this much time has passed.
    Elapsed(Duration),
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
    let load = edge_run(addr, request, Until::Requests(requests), connections).await?;
    if let Some(status) = load.statuses.keys().find(|s| **s != expected) {
        bail!("the edge server answered {status}, not {expected}");
    }
    Ok(load)
}

/// `request` over `connections` keep-alive connections until `until`, each
/// connection sending its next request once it has the last answer; every
/// answer counted by status.
pub(crate) async fn edge_run(
    addr: &str,
    request: &EdgeRequest,
    until: Until,
    connections: usize,
) -> Result<EdgeLoad> {
    let started = Instant::now();
    let mut workers = Vec::new();
    for worker in 0..connections {
        let addr = addr.to_string();
        let request = request.clone();
        let (count, deadline) = match until {
            Until::Requests(requests) => (
                requests / connections + usize::from(worker < requests % connections),
                None,
            ),
            Until::Elapsed(time) => (usize::MAX, Some(started + time)),
        };
        workers.push(tokio::spawn(async move {
            let mut sender = edge_connection(&addr).await?;
            let mut latencies = Vec::new();
            let mut statuses = BTreeMap::new();
            let mut body = 0;
            while latencies.len() < count && deadline.is_none_or(|d| Instant::now() < d) {
                let t = Instant::now();
                let (status, _, len) = edge_send(&mut sender, &addr, &request).await?;
                latencies.push(t.elapsed().as_secs_f64());
                *statuses.entry(status).or_insert(0) += 1;
                if status == 200 {
                    body = len;
                }
            }
            Ok::<_, anyhow::Error>((latencies, statuses, body))
        }));
    }
    let mut latencies = Vec::new();
    let mut statuses = BTreeMap::new();
    let mut body_bytes = 0;
    for worker in workers {
        let (mut l, s, body) = worker.await??;
        latencies.append(&mut l);
        for (status, n) in s {
            *statuses.entry(status).or_insert(0) += n;
        }
        body_bytes = body_bytes.max(body);
    }
    let elapsed = started.elapsed().as_secs_f64();
    anyhow::ensure!(!latencies.is_empty(), "no answers");
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    Ok(EdgeLoad {
        per_second: latencies.len() as f64 / elapsed,
        p50: at(0.50),
        p99: at(0.99),
        body_bytes,
        statuses,
    })
}
