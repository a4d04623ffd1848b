//! A fault-injecting HTTP/1.1 proxy for tests: sits between the component and
//! an emulator and, per request, forwards it, answers for the server, rewrites
//! it, stalls, or breaks the connection, as the test's script decides.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A request as the proxy received it.
#[derive(Debug, Clone)]
pub struct Request {
    /// The operation, from `X-Amz-Target` (`GetItem`, `BatchWriteItem`, ...).
    pub op: String,
    /// Every header line after the request line, as received.
    pub headers: Vec<(String, String)>,
    /// The body, as received.
    pub body: Vec<u8>,
}

impl Request {
    /// The body as JSON (every DynamoDB request is).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("requests are JSON")
    }
}

/// What to do with one request.
pub enum Action {
    /// Pass it to the server unchanged.
    Forward,
    /// Answer without asking the server.
    Respond(u16, String),
    /// Send this body to the server instead, then rewrite the server's answer.
    Rewrite(Vec<u8>, Box<dyn FnOnce(Vec<u8>) -> Vec<u8> + Send>),
    /// Forward, then send only the first half of the server's response and close.
    DropMidResponse,
    /// Wait this long before forwarding.
    Stall(Duration),
    /// Wait this long, then do the inner action.
    Delayed(Duration, Box<Action>),
    /// Hold it until the gate opens, then forward it (see [`Gate`]).
    Hold(Gate),
}

/// How long a [`Gate`] holds a request at most: far beyond any scheduling
/// delay, so it opens on its signal; past it the request goes on, and the
/// test's own assertion says what did not arrive.
pub const GATE_LIMIT: Duration = Duration::from_secs(30);

/// Holds requests until `n` have arrived at it, then lets them go together:
/// a signal in place of a delay that a busy machine could outlast. Requests
/// counted after the n-th pass at once.
#[derive(Clone)]
pub struct Gate {
    wanted: usize,
    arrived: Arc<AtomicUsize>,
}

impl Gate {
    /// A gate that opens at the `wanted`-th arrival.
    pub fn new(wanted: usize) -> Gate {
        Gate {
            wanted,
            arrived: Arc::default(),
        }
    }

    /// Counts a request and holds it until the gate opens (forwards it at
    /// once when the gate is open).
    pub fn hold(&self) -> Action {
        match self.arrived.fetch_add(1, Ordering::SeqCst) + 1 {
            n if n >= self.wanted => Action::Forward,
            _ => Action::Hold(self.clone()),
        }
    }

    /// Counts a request and forwards it at once.
    pub fn pass(&self) -> Action {
        self.arrived.fetch_add(1, Ordering::SeqCst);
        Action::Forward
    }

    /// Whether `wanted` requests have arrived.
    pub fn is_open(&self) -> bool {
        self.arrived.load(Ordering::SeqCst) >= self.wanted
    }

    async fn wait(&self) {
        let limit = Instant::now() + GATE_LIMIT;
        while !self.is_open() && Instant::now() < limit {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

type Script = Box<dyn FnMut(&Request) -> Action + Send>;

/// Answers like AWS's `InvalidSignatureException`, whose message echoes the
/// canonical request (with `x-amz-security-token:<token>`), the string to sign
/// (with the credential scope) and, here, the `Authorization` header as received.
pub fn aws_signature_echo(request: &Request) -> Action {
    let header = |name: &str| {
        request
            .headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let authorization = header("authorization");
    let scope = authorization
        .split("Credential=")
        .nth(1)
        .and_then(|c| c.split(',').next())
        .and_then(|c| c.split_once('/'))
        .map(|(_, scope)| scope.to_string())
        .unwrap_or_default();
    let message = format!(
        "The request signature we calculated does not match the signature you provided. \
         Check your AWS Secret Access Key and signing method. Consult the service documentation for details.\n\n\
         The Canonical String for this request should have been\n'POST\n/\n\ncontent-length:{}\nhost:{}\n\
         x-amz-date:{}\nx-amz-security-token:{}\nx-amz-target:{}\n\n\
         content-length;host;x-amz-date;x-amz-security-token;x-amz-target\n0123abcd'\n\n\
         The String-to-Sign should have been\n'AWS4-HMAC-SHA256\n{}\n{}\n4567ef'\n\
         (request header: {})",
        header("content-length"),
        header("host"),
        header("x-amz-date"),
        header("x-amz-security-token"),
        header("x-amz-target"),
        header("x-amz-date"),
        scope,
        authorization,
    );
    let body = serde_json::json!({
        "__type": "com.amazon.coral.service#InvalidSignatureException",
        "message": message,
    });
    Action::Respond(400, body.to_string())
}

/// One request the proxy answered, with when it arrived and when its answer
/// was about to be sent.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// The request.
    pub request: Request,
    /// When its last byte arrived.
    pub arrived: Instant,
    /// When its answer was about to be sent.
    pub answered: Instant,
}

type Log = Arc<Mutex<Vec<Exchange>>>;

/// A running proxy; it stops with the test's runtime.
pub struct Proxy {
    /// Its URL on 127.0.0.1, to give the component as its endpoint.
    pub endpoint: String,
    received: Arc<AtomicUsize>,
    log: Log,
}

impl Proxy {
    /// Starts a proxy to `upstream` (`http://host:port`) on a free 127.0.0.1 port.
    pub async fn start(
        upstream: &str,
        script: impl FnMut(&Request) -> Action + Send + 'static,
    ) -> Proxy {
        let (upstream, listener, endpoint) = listen(upstream).await;
        let script: Arc<Mutex<Script>> = Arc::new(Mutex::new(Box::new(script)));
        let received = Arc::new(AtomicUsize::new(0));
        let log = Log::default();
        let (count, exchanges) = (received.clone(), log.clone());
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let _ = client.set_nodelay(true);
                let (upstream, script, count, log) = (
                    upstream.clone(),
                    script.clone(),
                    count.clone(),
                    exchanges.clone(),
                );
                tokio::spawn(async move {
                    let _ = serve(client, &upstream, &script, &count, &log).await;
                });
            }
        });
        Proxy {
            endpoint,
            received,
            log,
        }
    }

    /// How many requests reached the proxy.
    pub fn requests(&self) -> usize {
        self.received.load(Ordering::SeqCst)
    }

    /// The requests answered so far, in the order their answers were sent.
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.log.lock().unwrap().clone()
    }
}

/// The upstream's `host:port`, and a listener on a free 127.0.0.1 port with its endpoint URL.
async fn listen(upstream: &str) -> (String, TcpListener, String) {
    let upstream = upstream
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    (upstream, listener, endpoint)
}

/// Reads one request head and body; `None` at a clean end of the connection.
async fn read_request(stream: &mut TcpStream) -> std::io::Result<Option<(String, Request)>> {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos;
        }
        let mut chunk = [0u8; 8192];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default().to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let mut chunk = vec![0u8; length - body.len()];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let op = headers
        .iter()
        .find(|(k, _)| k == "x-amz-target")
        .map(|(_, v)| v.trim_start_matches("DynamoDB_20120810.").to_string())
        .unwrap_or_default();
    Ok(Some((request_line, Request { op, headers, body })))
}

/// Sends a request to the server and returns its whole raw response.
async fn forward(
    upstream: &str,
    request_line: &str,
    request: &Request,
    body: &[u8],
) -> std::io::Result<Vec<u8>> {
    let mut server = TcpStream::connect(upstream).await?;
    server.set_nodelay(true)?;
    let mut out = format!("{request_line}\r\n");
    for (name, value) in &request.headers {
        if name == "content-length" || name == "connection" {
            continue;
        }
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    ));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    server.write_all(&bytes).await?;
    let mut response = Vec::new();
    server.read_to_end(&mut response).await?;
    Ok(response)
}

/// Splits a raw response into status, headers and body.
fn split_response(raw: &[u8]) -> (u16, Vec<u8>) {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&raw[..end]);
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(500);
    (status, raw[end + 4..].to_vec())
}

fn response(status: u16, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

async fn serve(
    mut client: TcpStream,
    upstream: &str,
    script: &Mutex<Script>,
    count: &AtomicUsize,
    log: &Mutex<Vec<Exchange>>,
) -> std::io::Result<()> {
    let Some((request_line, request)) = read_request(&mut client).await? else {
        return Ok(());
    };
    let arrived = Instant::now();
    count.fetch_add(1, Ordering::SeqCst);
    let mut action = (script.lock().unwrap())(&request);
    while let Action::Delayed(pause, inner) = action {
        tokio::time::sleep(pause).await;
        action = *inner;
    }
    let reply = match action {
        Action::Forward => forward(upstream, &request_line, &request, &request.body).await?,
        Action::Respond(status, body) => response(status, body.as_bytes()),
        Action::Rewrite(body, rewrite) => {
            let raw = forward(upstream, &request_line, &request, &body).await?;
            let (status, answer) = split_response(&raw);
            response(status, &rewrite(answer))
        }
        Action::DropMidResponse => {
            let raw = forward(upstream, &request_line, &request, &request.body).await?;
            client.write_all(&raw[..raw.len() / 2]).await?;
            return client.shutdown().await;
        }
        Action::Stall(pause) => {
            tokio::time::sleep(pause).await;
            forward(upstream, &request_line, &request, &request.body).await?
        }
        Action::Hold(gate) => {
            gate.wait().await;
            forward(upstream, &request_line, &request, &request.body).await?
        }
        Action::Delayed(..) => unreachable!("unwrapped above"),
    };
    // Logged before the answer goes out, so the log is complete by the time
    // the client has its answer.
    log.lock().unwrap().push(Exchange {
        request,
        arrived,
        answered: Instant::now(),
    });
    client.write_all(&reply).await?;
    client.shutdown().await
}

/// A byte-level tunnel to a server that counts the TCP connections made through it.
pub struct Tunnel {
    /// Its URL on 127.0.0.1.
    pub endpoint: String,
    connections: Arc<AtomicUsize>,
}

impl Tunnel {
    /// A tunnel to `upstream` (a URL), listening on a free port.
    pub async fn start(upstream: &str) -> Tunnel {
        let (upstream, listener, endpoint) = listen(upstream).await;
        let connections = Arc::new(AtomicUsize::new(0));
        let count = connections.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                count.fetch_add(1, Ordering::SeqCst);
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let _ = client.set_nodelay(true);
                    if let Ok(mut server) = TcpStream::connect(&upstream).await {
                        let _ = server.set_nodelay(true);
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        Tunnel {
            endpoint,
            connections,
        }
    }

    /// TCP connections opened so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// DynamoDB's per-partition write capacity, emulated in front of a server
/// that has none: a token bucket of `rate` write units per second for each
/// partition key (`namespace`), holding at most `burst` seconds of them and
/// full at the start. A BatchWriteItem takes from each item's bucket what it
/// can (one unit per KiB of item, as AWS counts it); the server gets the items
/// that fit and the answer lists the others as `UnprocessedItems`, as AWS
/// does; a request with nothing accepted is answered
/// `ProvisionedThroughputExceededException`. Other operations pass.
pub struct Partitions {
    rate: f64,
    burst: f64,
    /// Added to every request's round trip.
    rtt: Duration,
    buckets: Mutex<std::collections::HashMap<String, (f64, Instant)>>,
    /// Write requests received in BatchWriteItem requests, re-sends included.
    pub items_received: AtomicUsize,
    /// BatchWriteItem requests answered with unprocessed items or refused.
    pub throttled: AtomicUsize,
    /// BatchWriteItem requests received.
    pub batches: AtomicUsize,
}

impl Partitions {
    /// Partitions that each take `rate` write units a second, with a
    /// stored burst of `burst` seconds of that rate (see above).
    pub fn new(rate: f64, burst: f64) -> Arc<Partitions> {
        Self::with_rtt(rate, burst, Duration::ZERO)
    }

    /// [`Partitions::new`], each request answered `rtt` later.
    pub fn with_rtt(rate: f64, burst: f64, rtt: Duration) -> Arc<Partitions> {
        Arc::new(Partitions {
            rate,
            burst,
            rtt,
            buckets: Mutex::default(),
            items_received: AtomicUsize::new(0),
            throttled: AtomicUsize::new(0),
            batches: AtomicUsize::new(0),
        })
    }

    /// Whether the bucket of `namespace` has `units` now; takes them if so.
    fn take(&self, namespace: &str, units: f64) -> bool {
        let mut buckets = self.buckets.lock().unwrap();
        let now = Instant::now();
        let full = self.rate * self.burst;
        let (tokens, at) = buckets.entry(namespace.to_string()).or_insert((full, now));
        *tokens = (*tokens + self.rate * now.duration_since(*at).as_secs_f64()).min(full);
        *at = now;
        if *tokens >= units {
            *tokens -= units;
            true
        } else {
            false
        }
    }

    /// The proxy script.
    pub fn script(self: &Arc<Self>) -> impl FnMut(&Request) -> Action + Send + 'static {
        let partitions = self.clone();
        move |request: &Request| match partitions.decide(request) {
            action if partitions.rtt.is_zero() => action,
            action => Action::Delayed(partitions.rtt, Box::new(action)),
        }
    }

    fn decide(&self, request: &Request) -> Action {
        if request.op != "BatchWriteItem" {
            return Action::Forward;
        }
        let body = request.json();
        let (table, writes) = body["RequestItems"]
            .as_object()
            .and_then(|tables| tables.iter().next())
            .map(|(table, writes)| {
                (
                    table.clone(),
                    writes.as_array().cloned().unwrap_or_default(),
                )
            })
            .expect("a BatchWriteItem body");
        self.batches.fetch_add(1, Ordering::SeqCst);
        self.items_received
            .fetch_add(writes.len(), Ordering::SeqCst);
        let (accepted, refused): (Vec<Value>, Vec<Value>) = writes.into_iter().partition(|write| {
            let (namespace, units) = match &write["PutRequest"]["Item"] {
                Value::Null => (&write["DeleteRequest"]["Key"]["namespace"]["S"], 1.0),
                item => (&item["namespace"]["S"], write_units(item)),
            };
            self.take(namespace.as_str().unwrap_or_default(), units)
        });
        if !refused.is_empty() {
            self.throttled.fetch_add(1, Ordering::SeqCst);
        }
        if accepted.is_empty() {
            return Action::Respond(
                400,
                r#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"The level of configured provisioned throughput for the table was exceeded."}"#.into(),
            );
        }
        let forwarded = serde_json::json!({ "RequestItems": { &table: accepted } });
        Action::Rewrite(
            forwarded.to_string().into_bytes(),
            Box::new(move |answer: Vec<u8>| {
                let mut answer: Value =
                    serde_json::from_slice(&answer).unwrap_or_else(|_| serde_json::json!({}));
                if !refused.is_empty() {
                    answer["UnprocessedItems"] = serde_json::json!({ &table: refused });
                }
                answer.to_string().into_bytes()
            }),
        )
    }
}

/// AWS's write units of an item: one per KiB of the lengths of its
/// attribute names and string or number values, at least one.
fn write_units(item: &Value) -> f64 {
    let bytes: usize = item
        .as_object()
        .map(|attributes| {
            attributes
                .iter()
                .map(|(name, value)| {
                    let scalar = value["S"].as_str().or_else(|| value["N"].as_str());
                    name.len() + scalar.map_or(0, str::len)
                })
                .sum()
        })
        .unwrap_or(0);
    (bytes as f64 / 1024.0).ceil().max(1.0)
}

impl Proxy {
    /// The most requests of `op` that were in the proxy at once (from
    /// arrival to answer).
    pub fn most_in_flight(&self, op: &str) -> usize {
        let mut events: Vec<(Instant, i32)> = self
            .exchanges()
            .iter()
            .filter(|e| e.request.op == op)
            .flat_map(|e| [(e.arrived, 1), (e.answered, -1)])
            .collect();
        // Answers before arrivals at the same instant.
        events.sort();
        let (mut now, mut most) = (0, 0);
        for (_, step) in events {
            now += step;
            most = most.max(now);
        }
        most as usize
    }
}
