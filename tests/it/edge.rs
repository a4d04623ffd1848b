//! The edge flag server (`edge-server/`, which links the store and the
//! evaluator, built by `scripts/edge-build.sh`) under `wasmtime serve`, against moto with SigV4
//! checking on: every endpoint and error, and LaunchDarkly's official Python
//! SDK polling it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use ld_dynamodb_tests::{
    cli_binary, edge_component, run_with_stdin, unique_table, user_environment, Backend, REGION,
};

pub(crate) const SDK_KEY: &str = "sdk-edge-test-key-123";

pub(crate) fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn example_data() -> Value {
    let text = std::fs::read_to_string(root().join("examples/latest-all.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The example data without deleted items, as the server must answer.
fn live(kind: &str) -> Value {
    let mut items = example_data()[kind].as_object().unwrap().clone();
    items.retain(|_, item| item["deleted"] != json!(true));
    Value::Object(items)
}

/// Runs the CLI against `backend` and `table`; its stdout as JSON.
pub(crate) fn cli(backend: &Backend, table: &str, args: &[&str], stdin: &str) -> Value {
    let mut command = Command::new(cli_binary());
    command
        .args(args)
        .env("AWS_ACCESS_KEY_ID", &backend.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &backend.secret_access_key)
        .env("AWS_REGION", REGION)
        .env("AWS_ENDPOINT_URL_DYNAMODB", &backend.endpoint)
        .env("LD_DYNAMODB_TABLE", table)
        .env("LD_DYNAMODB_PREFIX", "edge");
    let out = run_with_stdin(command, stdin);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A newer `banner-text` flag than the example's.
fn banner_text(version: u64) -> Value {
    json!({"key": "banner-text", "version": version, "on": true, "variations": ["Hi", "Hello"],
           "fallthrough": {"variation": 0}, "offVariation": 1, "salt": "9a2c"})
}

/// A table with the example data, written by the CLI.
fn loaded_table(backend: &Backend) -> String {
    let table = unique_table("edge");
    cli(backend, &table, &["create-table"], "");
    let data = std::fs::read_to_string(root().join("examples/latest-all.json")).unwrap();
    cli(backend, &table, &["init", "-"], &data);
    table
}

/// The options of `scripts/edge-serve-flags.sh`, as docs/edge.md serves the app.
fn serve_flags() -> Vec<String> {
    let out = Command::new(root().join("scripts/edge-serve-flags.sh"))
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// A host that serves the edge flag server component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Host {
    /// `wasmtime serve` with the options of `scripts/edge-serve-flags.sh`.
    Wasmtime,
    /// `jco serve` in Node, with `wasi:config` mapped to
    /// `scripts/jco-config.mjs` (the settings as JSON in `LD_EDGE_CONFIG`).
    Jco,
}

/// A free port on 127.0.0.1 (for a host that cannot take port 0).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The edge flag server served by a host; stopped on drop.
pub(crate) struct Served {
    child: Child,
    addr: String,
    log: Arc<Mutex<String>>,
    /// Under `jco serve`: the folder of the transpiled component, removed on
    /// drop (jco removes its own only when it exits by itself).
    jco_dir: Option<PathBuf>,
}

impl Served {
    /// Serves with the SDK key `sdk_key`, or with `auth=none` when `None`.
    /// Secrets go through the environment (`--env NAME`), never the
    /// command line.
    fn start(backend: &Backend, table: &str, endpoint: &str, sdk_key: Option<&str>) -> Served {
        Self::start_with(backend, table, endpoint, sdk_key, &[])
    }

    /// [`Served::start`] with `extra` settings (`name=value`).
    fn start_with(
        backend: &Backend,
        table: &str,
        endpoint: &str,
        sdk_key: Option<&str>,
        extra: &[&str],
    ) -> Served {
        Self::start_on(Host::Wasmtime, backend, table, endpoint, sdk_key, extra)
    }

    /// [`Served::start_with`] on `host`.
    fn start_on(
        host: Host,
        backend: &Backend,
        table: &str,
        endpoint: &str,
        sdk_key: Option<&str>,
        extra: &[&str],
    ) -> Served {
        let mut vars = vec![
            format!("table={table}"),
            "prefix=edge".to_string(),
            format!("region={REGION}"),
            format!("endpoint={endpoint}"),
        ];
        vars.extend(extra.iter().map(|v| v.to_string()));
        let mut command = Command::new(root().join(".tools/bin/wasmtime"));
        command
            .env_clear()
            .env("AWS_ACCESS_KEY_ID", &backend.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &backend.secret_access_key);
        match sdk_key {
            Some(key) => {
                command.env("LD_SDK_KEY", key);
            }
            None => vars.push("auth=none".into()),
        }
        Self::spawn_on(host, command, &vars)
    }

    /// `wasmtime serve` with the given environment already set on `command`
    /// and these `wasi:config` variables.
    pub(crate) fn spawn(command: Command, vars: &[String]) -> Served {
        Self::spawn_on(Host::Wasmtime, command, vars)
    }

    /// [`Served::spawn`] on `host`: for `jco serve`, the environment set on
    /// `command` is given to Node, and the variables go into `LD_EDGE_CONFIG`.
    pub(crate) fn spawn_on(host: Host, mut command: Command, vars: &[String]) -> Served {
        // The app's own analytics events stay off unless a test turns them
        // on (tests/it/events.rs): nothing is posted to LaunchDarkly.
        let mut vars = vars.to_vec();
        if !vars.iter().any(|v| v.starts_with("events=")) {
            vars.push("events=false".into());
        }
        let vars = &vars;
        let mut jco_dir = None;
        let (mut child, mut output) = match host {
            Host::Wasmtime => {
                command
                    .args(["serve", "--addr", "127.0.0.1:0"])
                    .args(serve_flags());
                for var in vars {
                    command.args(["-S", &format!("config-var={var}")]);
                }
                let mut child = command
                    .arg(edge_component())
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("wasmtime is installed by scripts/setup.sh --edge");
                let stderr = BufReader::new(child.stderr.take().unwrap());
                (child, (Box::new(stderr) as Box<dyn BufRead + Send>, None))
            }
            Host::Jco => {
                let config: serde_json::Map<String, Value> = vars
                    .iter()
                    .map(|var| {
                        let (name, value) = var.split_once('=').unwrap();
                        (name.to_string(), Value::from(value))
                    })
                    .collect();
                let mut node = Command::new("node");
                node.env_clear();
                for (name, value) in command.get_envs() {
                    if let Some(value) = value {
                        node.env(name, value);
                    }
                }
                let mapping = format!(
                    "wasi:config/store@0.2.0-rc.1={}",
                    root().join("scripts/jco-config.mjs").display()
                );
                let dir = std::env::temp_dir().join(format!("ld-jco-serve-{}", free_port()));
                let mut child = node
                    // jco serves from a second Node process: one process
                    // group, so that drop stops both.
                    .process_group(0)
                    .env("LD_EDGE_CONFIG", Value::Object(config).to_string())
                    .arg(root().join(".tools/node/node_modules/@bytecodealliance/jco/dist/jco.js"))
                    .arg("serve")
                    // The component before --jco-map, which takes a list.
                    .arg(edge_component())
                    .args(["--host", "127.0.0.1", "--port", &free_port().to_string()])
                    .args(["--jco-map", &mapping])
                    .arg("--jco-dir")
                    .arg(&dir)
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("node and jco are installed by scripts/setup.sh --node");
                jco_dir = Some(dir);
                // jco says where it listens on stderr, with the app's log.
                let stdout = BufReader::new(child.stdout.take().unwrap());
                let stderr = BufReader::new(child.stderr.take().unwrap());
                (
                    child,
                    (Box::new(stderr) as Box<dyn BufRead + Send>, Some(stdout)),
                )
            }
        };
        let mut addr = None;
        let mut seen = String::new();
        for _ in 0..50 {
            let mut line = String::new();
            if output.0.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            seen.push_str(&line);
            let line = line.trim();
            if let Some(rest) = line.strip_prefix("Serving HTTP on http://") {
                addr = Some(rest.trim_end_matches('/').to_string());
                break;
            }
            // jco: "Server listening @ 127.0.0.1:PORT..."
            if let Some(rest) = line.strip_prefix("Server listening @ ") {
                addr = Some(rest.trim_end_matches('.').to_string());
                break;
            }
        }
        let addr = addr.unwrap_or_else(|| {
            stop(&mut child, jco_dir.as_deref());
            panic!("{host:?} did not start serving: {seen}")
        });
        let log = Arc::new(Mutex::new(seen));
        let readers = [
            Some(output.0),
            output.1.map(|e| Box::new(e) as Box<dyn BufRead + Send>),
        ];
        for mut reader in readers.into_iter().flatten() {
            let sink = log.clone();
            // Line by line, so that a test sees each line as it is logged.
            std::thread::spawn(move || {
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap_or(0) > 0 {
                    sink.lock().unwrap().push_str(&line);
                    line.clear();
                }
            });
        }
        Served {
            child,
            addr,
            log,
            jco_dir,
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// One request without a body: (status, headers lowercased, body).
    pub(crate) fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (u16, Vec<(String, String)>, Vec<u8>) {
        self.send(method, path, headers, b"")
    }

    /// One request with `body`: (status, headers lowercased, body).
    pub(crate) fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, Vec<(String, String)>, Vec<u8>) {
        let mut stream = TcpStream::connect(&self.addr).unwrap();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n",
            self.addr
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(body).unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).unwrap();
        parse_response(&raw)
    }

    pub(crate) fn get(
        &self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (u16, Vec<(String, String)>, Vec<u8>) {
        self.request("GET", path, headers)
    }

    pub(crate) fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Whether the log shows `needle` within 5 s (a thread reads it).
    pub(crate) fn logged(&self, needle: &str) -> bool {
        for _ in 0..100 {
            if self.log().contains(needle) {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        false
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        stop(&mut self.child, self.jco_dir.as_deref());
    }
}

/// Stops a host: `wasmtime serve`, or `jco serve`'s process group (it serves
/// from a second Node process) and its folder.
fn stop(child: &mut Child, jco_dir: Option<&std::path::Path>) {
    match jco_dir {
        Some(dir) => {
            let group = format!("-{}", child.id());
            let kill = Command::new("kill")
                .args(["-s", "KILL", "--", &group])
                .output();
            if !kill.as_ref().is_ok_and(|out| out.status.success()) {
                eprintln!("kill -s KILL -- {group}: {kill:?}");
            }
            let _ = child.wait();
            let _ = std::fs::remove_dir_all(dir);
        }
        None => {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Status, headers and body of a raw HTTP/1.1 response (chunked or not).
fn parse_response(raw: &[u8]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&raw[..end]).to_string();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        let mut decoded = Vec::new();
        let mut rest = &body[..];
        loop {
            let line_end = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let size =
                usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).unwrap().trim(), 16)
                    .unwrap();
            if size == 0 {
                break;
            }
            decoded.extend_from_slice(&rest[line_end + 2..line_end + 2 + size]);
            rest = &rest[line_end + 2 + size + 2..];
        }
        body = decoded;
    }
    (status, headers, body)
}

pub(crate) fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

pub(crate) fn json_of(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(body)))
}

#[test]
fn endpoints_serve_launchdarkly_shapes_and_typed_errors() {
    endpoints_serve_launchdarkly_shapes_and_typed_errors_on(Host::Wasmtime);
}

#[test]
fn endpoints_serve_launchdarkly_shapes_and_typed_errors_under_jco_serve() {
    endpoints_serve_launchdarkly_shapes_and_typed_errors_on(Host::Jco);
}

/// The fields of `/proc/PID/stat` after the command's name (state, parent,
/// ...), or `None` once the process is gone.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 2..];
    Some(after_name.split(' ').map(str::to_string).collect())
}

/// Whether process `pid` still runs (neither gone nor a zombie).
fn runs(pid: u32) -> bool {
    stat_fields(pid).is_some_and(|fields| fields[0] != "Z")
}

/// The processes running with `parent` as their parent.
fn running_children(parent: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| entry.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(|pid| stat_fields(*pid).is_some_and(|f| f[0] != "Z" && f[1] == parent.to_string()))
        .collect()
}

/// `jco serve` serves from a second Node process in a folder of its own; a
/// stopped test server leaves neither behind (each run of the suite left
/// four such servers and their folders running on).
#[test]
fn a_stopped_jco_serve_leaves_no_process_or_folder() {
    let backend = Backend::moto();
    let table = loaded_table(&backend);
    let served = Served::start_on(Host::Jco, &backend, &table, &backend.endpoint, None, &[]);
    let server = running_children(served.child.id());
    assert_eq!(server.len(), 1, "jco serve runs one server process");
    let dir = served.jco_dir.clone().unwrap();
    assert!(dir.join("_run.js").exists());
    drop(served);
    // SIGKILL is sent when drop returns; the exit itself may take a moment.
    let pid = server[0];
    let killed = std::time::Instant::now();
    while runs(pid) && killed.elapsed() < std::time::Duration::from_secs(30) {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        !runs(pid),
        "the server process {pid} still runs: {:?}",
        std::fs::read_to_string(format!("/proc/{pid}/status"))
    );
    assert!(!dir.exists(), "{dir:?} is left");
}

fn endpoints_serve_launchdarkly_shapes_and_typed_errors_on(host: Host) {
    let backend = Backend::moto();
    let table = loaded_table(&backend);
    // Every answer reads the table (no snapshot kept), so a write shows at once.
    let served = Served::start_on(
        host,
        &backend,
        &table,
        &backend.endpoint,
        Some(SDK_KEY),
        &["refresh-interval-ms=0"],
    );
    let auth = [("authorization", SDK_KEY)];

    // /status needs the key too.
    assert_eq!(served.get("/status", &[]).0, 401);
    let (status, _, body) = served.get("/status", &auth);
    assert_eq!(
        (status, json_of(&body)),
        (
            200,
            json!({"initialized": true, "available": true, "snapshotAgeMs": 0})
        )
    );

    // 401 without the key or with another one.
    assert_eq!(served.get("/sdk/latest-all", &[]).0, 401);
    assert_eq!(
        served
            .get(
                "/sdk/latest-all",
                &[("authorization", "sdk-edge-test-key-124")]
            )
            .0,
        401
    );

    let (status, headers, body) = served.get("/sdk/latest-all", &auth);
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-type"), Some("application/json"));
    assert_eq!(
        json_of(&body),
        json!({"flags": live("flags"), "segments": live("segments")})
    );
    assert!(
        json_of(&body)["flags"].get("retired-flag").is_none(),
        "deleted items are left out"
    );

    // 304 for the current ETag; 200 again once the data changes.
    let tag = header(&headers, "etag").expect("an ETag").to_string();
    let (status, headers, body) =
        served.get("/sdk/latest-all", &[auth[0], ("if-none-match", &tag)]);
    assert_eq!((status, body.len()), (304, 0));
    assert_eq!(header(&headers, "etag"), Some(tag.as_str()));
    let newer = banner_text(8);
    cli(
        &backend,
        &table,
        &["upsert", "flags", "-"],
        &newer.to_string(),
    );
    let (status, headers, body) =
        served.get("/sdk/latest-all", &[auth[0], ("if-none-match", &tag)]);
    assert_eq!(status, 200);
    assert_ne!(header(&headers, "etag"), Some(tag.as_str()));
    assert_eq!(json_of(&body)["flags"]["banner-text"], newer);

    let (status, _, body) = served.get("/sdk/latest-flags", &auth);
    assert_eq!(status, 200);
    let mut flags: Vec<String> = json_of(&body)
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    flags.sort();
    assert_eq!(flags, ["banner-text", "checkout-banner", "new-checkout"]);
    let (status, _, body) = served.get("/sdk/latest-flags/new-checkout", &auth);
    assert_eq!(
        (status, json_of(&body)),
        (200, live("flags")["new-checkout"].clone())
    );
    let (status, _, body) = served.get("/sdk/latest-segments", &auth);
    assert_eq!((status, json_of(&body)), (200, live("segments")));
    let (status, _, body) = served.get("/sdk/latest-segments/beta-testers", &auth);
    assert_eq!(
        (status, json_of(&body)),
        (200, live("segments")["beta-testers"].clone())
    );

    // 404 for a deleted, an absent or an unknown path; 405 for other methods.
    assert_eq!(served.get("/sdk/latest-flags/retired-flag", &auth).0, 404);
    assert_eq!(served.get("/sdk/latest-flags/no-such-flag", &auth).0, 404);
    assert_eq!(
        served.get("/sdk/latest-segments/no-such-segment", &auth).0,
        404
    );
    assert_eq!(served.get("/elsewhere", &auth).0, 404);
    let (status, headers, _) = served.request("POST", "/sdk/latest-all", &auth);
    assert_eq!(
        (status, header(&headers, "allow")),
        (405, Some("GET, HEAD"))
    );

    // HEAD: the GET's status and ETag, no body.
    let (_, got_headers, _) = served.get("/sdk/latest-flags", &auth);
    let (status, headers, body) = served.request("HEAD", "/sdk/latest-flags", &auth);
    assert_eq!((status, body.len()), (200, 0));
    assert_eq!(header(&headers, "etag"), header(&got_headers, "etag"));
    assert!(!served.log().contains(&backend.secret_access_key));
}

/// A row whose `item` text is truncated JSON, written with boto3 behind the
/// store's back.
fn write_corrupt_row(backend: &Backend, table: &str) {
    backend.boto(json!([["PutItem", {
        "TableName": table,
        "Item": {
            "namespace": {"S": "edge:features"},
            "key": {"S": "corrupt-flag"},
            "version": {"N": "3"},
            "item": {"S": "{\"key\":\"corrupt-flag\",\"version\":3,\"on\":tr"}
        }
    }]]));
}

#[test]
fn a_corrupt_row_is_skipped_and_logged_and_every_answer_parses() {
    let backend = Backend::moto();
    let table = loaded_table(&backend);
    write_corrupt_row(&backend, &table);
    let served = Served::start(&backend, &table, &backend.endpoint, Some(SDK_KEY));
    let auth = [("authorization", SDK_KEY)];
    let (status, _, body) = served.get("/sdk/latest-all", &auth);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        json_of(&body),
        json!({"flags": live("flags"), "segments": live("segments")})
    );
    let (status, _, body) = served.get("/sdk/latest-flags", &auth);
    assert_eq!((status, json_of(&body)), (200, live("flags")));
    // Read alone, the corrupt flag is skipped too: not found, in JSON.
    let (status, _, body) = served.get("/sdk/latest-flags/corrupt-flag", &auth);
    assert_eq!(status, 404);
    json_of(&body);
    assert!(
        served.logged("skipped a malformed row") && served.logged("corrupt-flag"),
        "{}",
        served.log()
    );
}

#[test]
fn without_a_key_or_with_a_secret_on_the_command_line_the_server_refuses_to_serve() {
    let backend = Backend::moto();
    let table = loaded_table(&backend);
    let vars = |extra: &[&str]| {
        let mut vars = vec![
            format!("table={table}"),
            "prefix=edge".to_string(),
            format!("region={REGION}"),
            format!("endpoint={}", backend.endpoint),
        ];
        vars.extend(extra.iter().map(|v| v.to_string()));
        vars
    };
    let environment = |sdk_key: Option<&str>| {
        let mut command = Command::new(root().join(".tools/bin/wasmtime"));
        command
            .env_clear()
            .env("AWS_ACCESS_KEY_ID", &backend.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &backend.secret_access_key);
        if let Some(key) = sdk_key {
            command.env("LD_SDK_KEY", key);
        }
        command
    };
    // LD_SDK_KEY unset, empty, or malformed: 503 everywhere, the cause logged.
    for (key, cause) in [
        (None, "LD_SDK_KEY is unset or empty"),
        (Some(""), "LD_SDK_KEY is unset or empty"),
        (Some("sdk key with spaces"), "LD_SDK_KEY is malformed"),
    ] {
        let served = Served::spawn(environment(key), &vars(&[]));
        for path in ["/sdk/latest-all", "/status"] {
            let (status, _, body) = served.get(path, &[("authorization", "")]);
            assert_eq!(status, 503, "{key:?} {path}");
            assert!(!String::from_utf8_lossy(&body).contains("flags"));
        }
        assert!(served.logged(cause), "{}", served.log());
    }
    // A secret given as a config variable is refused, naming the fix.
    let served = Served::spawn(
        environment(Some(SDK_KEY)),
        &vars(&["aws-secret-access-key=on-the-command-line"]),
    );
    assert_eq!(
        served
            .get("/sdk/latest-all", &[("authorization", SDK_KEY)])
            .0,
        503
    );
    assert!(
        served.logged("--env AWS_SECRET_ACCESS_KEY"),
        "{}",
        served.log()
    );
    // auth=none is an explicit choice, and logged.
    let served = Served::spawn(environment(None), &vars(&["auth=none"]));
    assert_eq!(served.get("/sdk/latest-all", &[]).0, 200);
    assert!(served.logged("auth=none"), "{}", served.log());
}

#[test]
fn an_uninitialized_table_or_a_failing_dynamodb_is_503_without_secrets() {
    let backend = Backend::moto();
    let table = unique_table("edge-empty");
    cli(&backend, &table, &["create-table"], "");

    let served = Served::start(&backend, &table, &backend.endpoint, None);
    let (status, _, body) = served.get("/sdk/latest-all", &[]);
    assert_eq!(status, 503);
    assert_eq!(json_of(&body)["error"], "the data store is not initialized");
    assert_eq!(json_of(&served.get("/status", &[]).2)["initialized"], false);

    assert!(
        served.logged(&format!("table {table:?}")) && served.logged("prefix \"edge\""),
        "the log names the table and prefix read: {}",
        served.log()
    );

    let down = Served::start(&backend, &table, "http://127.0.0.1:9", None);
    for path in ["/sdk/latest-all", "/sdk/latest-flags/x", "/status"] {
        let (status, _, body) = down.get(path, &[]);
        let text = String::from_utf8_lossy(&body).to_string();
        assert_eq!(status, 503, "{path}: {text}");
        // The cause is in the log, never in the answer.
        assert!(!text.contains("transport error"), "{text}");
        assert!(!text.contains(&backend.secret_access_key));
    }
    assert!(down.logged("transport error"), "{}", down.log());
    assert!(!down.log().contains(&backend.secret_access_key));
}

#[test]
fn launchdarkly_python_sdk_polls_the_edge_server() {
    let backend = Backend::moto();
    let table = loaded_table(&backend);
    // A truncated row must not cost the SDK the other flags.
    write_corrupt_row(&backend, &table);
    let served = Served::start_with(
        &backend,
        &table,
        &backend.endpoint,
        Some(SDK_KEY),
        &["refresh-interval-ms=2000"],
    );
    let python = std::env::var("LD_TEST_PYTHON").expect("run with scripts/test.sh");
    let mut sdk = Command::new(python)
        .arg(root().join("tests/support/edge_sdk.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut input = sdk.stdin.take().unwrap();
    let mut output = BufReader::new(sdk.stdout.take().unwrap());
    let contexts: Vec<Value> = ["user-1", "user-2", "user-3", "user-4", "anonymous"]
        .iter()
        .map(|k| json!({"key": k}))
        .chain([json!({"key": "org-1", "kind": "organization"})])
        .collect();
    let flags = [
        "new-checkout",
        "checkout-banner",
        "banner-text",
        "retired-flag",
        "no-such-flag",
    ];
    let spec = json!({
        "base_uri": served.url(),
        "sdk_key": SDK_KEY,
        "data_file": root().join("examples/latest-all.json"),
        "contexts": contexts,
        "flags": flags,
    });
    writeln!(input, "{spec}").unwrap();
    let mut line = String::new();
    output.read_line(&mut line).unwrap();
    let results: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    // The same SDK on the same data from a file is the oracle.
    assert_eq!(results["edge"], results["oracle"]);
    let edge = &results["edge"];
    // A segment match (user-1 and user-2 are in beta-testers), a prerequisite
    // on it, a target (user-2), an off flag, a deleted and an absent flag.
    assert_eq!(edge["new-checkout"]["user-1"], true);
    assert_eq!(edge["new-checkout"]["user-3"], false);
    assert_eq!(edge["checkout-banner"]["user-1"], "Try the new checkout");
    assert_eq!(edge["checkout-banner"]["user-2"], "Checkout");
    assert_eq!(edge["checkout-banner"]["user-3"], "Checkout");
    assert_eq!(edge["banner-text"]["user-1"], "Hello");
    assert_eq!(edge["retired-flag"]["user-1"], Value::Null);
    assert_eq!(edge["no-such-flag"]["user-1"], Value::Null);

    // An upsert through the CLI reaches the SDK on its next poll.
    let newer = banner_text(9);
    cli(
        &backend,
        &table,
        &["upsert", "flags", "-"],
        &newer.to_string(),
    );
    writeln!(input, "{}", json!({"flag": "banner-text", "version": 9})).unwrap();
    let mut line = String::new();
    output.read_line(&mut line).unwrap();
    let seen: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(seen["version"], 9, "the SDK saw {seen}");
    assert!(sdk.wait().unwrap().success());
}

#[test]
fn the_edge_server_imports_only_the_proxy_world_wasi_config_and_the_environment() {
    let engine = ld_dynamodb_host::embed::new_engine().unwrap();
    let component = wasmtime::component::Component::from_file(&engine, edge_component()).unwrap();
    let ty = component.component_type();
    let mut imports: Vec<String> = ty
        .imports(&engine)
        .map(|(name, _)| name.to_string())
        .collect();
    imports.sort();
    let mut expected = vec![
        "wasi:cli/environment@0.2.0",
        "wasi:cli/stderr@0.2.0",
        "wasi:clocks/monotonic-clock@0.2.0",
        "wasi:clocks/wall-clock@0.2.0",
        "wasi:config/store@0.2.0-rc.1",
        "wasi:http/outgoing-handler@0.2.0",
        "wasi:http/types@0.2.0",
        "wasi:io/error@0.2.0",
        "wasi:io/poll@0.2.0",
        "wasi:io/streams@0.2.0",
        "wasi:random/random@0.2.0",
    ];
    expected.sort();
    assert_eq!(imports, expected);
    let exports: Vec<String> = ty
        .exports(&engine)
        .map(|(name, _)| name.to_string())
        .collect();
    assert_eq!(exports, ["wasi:http/incoming-handler@0.2.0"]);
}

/// The Queries a proxy in front of `backend` has answered.
fn queries(proxy: &ld_dynamodb_tests::proxy::Proxy) -> usize {
    proxy
        .exchanges()
        .iter()
        .filter(|e| e.request.op == "Query")
        .count()
}

#[test]
fn answers_come_from_one_snapshot_read_in_one_round_trip() {
    answers_come_from_one_snapshot_read_in_one_round_trip_on(Host::Wasmtime);
}

#[test]
fn answers_come_from_one_snapshot_read_in_one_round_trip_under_jco_serve() {
    answers_come_from_one_snapshot_read_in_one_round_trip_on(Host::Jco);
}

fn answers_come_from_one_snapshot_read_in_one_round_trip_on(host: Host) {
    let backend = Backend::moto();
    let table = loaded_table(&backend);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // The proxy holds the first queries until the third has arrived: queries
    // sent one after another would never get there (the gate gives up after
    // 30 s, and the order of arrivals and answers below fails).
    let gate = ld_dynamodb_tests::proxy::Gate::new(3);
    let proxy = runtime.block_on(ld_dynamodb_tests::proxy::Proxy::start(
        &backend.endpoint,
        move |_| gate.hold(),
    ));
    // The default refresh interval (15 s) is longer than this test.
    let served = Served::start_on(host, &backend, &table, &proxy.endpoint, Some(SDK_KEY), &[]);
    let auth = [("authorization", SDK_KEY)];
    let (status, headers, _) = served.get("/sdk/latest-all", &auth);
    assert_eq!(status, 200);
    // The first answer read the flags, the segments and the marker, each one
    // Query, all sent before any was answered: one round trip.
    let exchanges = proxy.exchanges();
    assert_eq!(exchanges.len(), 3);
    assert!(exchanges.iter().all(|e| e.request.op == "Query"));
    let last_arrival = exchanges.iter().map(|e| e.arrived).max().unwrap();
    let first_answer = exchanges.iter().map(|e| e.answered).min().unwrap();
    assert!(last_arrival < first_answer, "the queries were sequential");
    // Eventually consistent by default (`consistent-reads=false`).
    assert!(
        exchanges
            .iter()
            .all(|e| e.request.json()["ConsistentRead"] == json!(false)),
        "the snapshot's reads are eventually consistent"
    );
    let tag = header(&headers, "etag").unwrap().to_string();

    // Every route, a revalidation and an evaluation included, from memory.
    let context = ld_dynamodb_tests::base64url(br#"{"kind":"user","key":"user-1"}"#);
    let paths = [
        "/sdk/latest-all".to_string(),
        "/sdk/latest-flags".to_string(),
        "/sdk/latest-flags/new-checkout".to_string(),
        "/sdk/latest-segments/beta-testers".to_string(),
        "/status".to_string(),
        format!("/sdk/evalx/contexts/{context}"),
    ];
    let answers = 120;
    for i in 0..answers {
        let path = &paths[i % paths.len()];
        let (status, headers, _) = served.get(path, &[auth[0], ("if-none-match", &tag)]);
        let expected = if i % paths.len() == 0 { 304 } else { 200 };
        assert_eq!(status, expected, "{path}");
        let age: u64 = header(&headers, "x-snapshot-age-ms")
            .unwrap()
            .parse()
            .unwrap();
        assert!(age < 15_000, "{path}: {age}");
    }
    // A request that arrives while the instance is still finishing the last
    // one gets an instance of its own, which reads the table once: a few
    // snapshots at most, where every answer read the table before.
    let read = queries(&proxy);
    assert_eq!(read % 3, 0, "whole snapshots only: {read}");
    assert!(
        read <= 3 * 4,
        "{} snapshots for {answers} answers",
        read / 3
    );
}

#[test]
fn consistent_reads_true_reads_the_snapshot_strongly_consistent() {
    let backend = Backend::moto();
    let table = loaded_table(&backend);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let proxy = runtime.block_on(ld_dynamodb_tests::proxy::Proxy::start(
        &backend.endpoint,
        |_| ld_dynamodb_tests::proxy::Action::Forward,
    ));
    let served = Served::start_with(
        &backend,
        &table,
        &proxy.endpoint,
        Some(SDK_KEY),
        &["consistent-reads=true"],
    );
    assert_eq!(
        served
            .get("/sdk/latest-all", &[("authorization", SDK_KEY)])
            .0,
        200
    );
    let exchanges = proxy.exchanges();
    assert_eq!(exchanges.len(), 3);
    assert!(exchanges
        .iter()
        .all(|e| e.request.json()["ConsistentRead"] == json!(true)));
}

#[test]
fn a_write_is_served_once_the_refresh_interval_has_passed() {
    let backend = Backend::moto();
    let table = loaded_table(&backend);
    let refresh = std::time::Duration::from_millis(1500);
    let served = Served::start_with(
        &backend,
        &table,
        &backend.endpoint,
        Some(SDK_KEY),
        &[&format!("refresh-interval-ms={}", refresh.as_millis())],
    );
    let auth = [("authorization", SDK_KEY)];
    let version = |path: &str| {
        let (status, _, body) = served.get(path, &auth);
        assert_eq!(status, 200, "{path}");
        json_of(&body)["version"].as_u64().unwrap()
    };
    assert_eq!(version("/sdk/latest-flags/banner-text"), 7);
    cli(
        &backend,
        &table,
        &["upsert", "flags", "-"],
        &banner_text(9).to_string(),
    );
    let written = std::time::Instant::now();
    // A snapshot's age counts from the start of its read, and no snapshot
    // older than the interval is served: any answer begun an interval after
    // the write returned comes from a read begun after it.
    std::thread::sleep(refresh);
    for _ in 0..5 {
        assert_eq!(version("/sdk/latest-flags/banner-text"), 9);
        let (_, _, body) = served.get("/sdk/latest-all", &auth);
        assert_eq!(json_of(&body)["flags"]["banner-text"]["version"], 9);
    }
    assert!(written.elapsed() >= refresh);
}

#[test]
fn an_outage_is_served_from_the_snapshot_then_503_past_the_maximum_age_then_recovers() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    let backend = Backend::moto();
    let table = loaded_table(&backend);
    let down = Arc::new(AtomicBool::new(false));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let switch = down.clone();
    let proxy = runtime.block_on(ld_dynamodb_tests::proxy::Proxy::start(
        &backend.endpoint,
        move |_| {
            if switch.load(Ordering::SeqCst) {
                ld_dynamodb_tests::proxy::Action::Respond(
                    500,
                    r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"down"}"#
                        .into(),
                )
            } else {
                ld_dynamodb_tests::proxy::Action::Forward
            }
        },
    ));
    // Windows sized for a busy machine: a stale answer is asked for until 2 s
    // before the maximum age (a request has those 2 s to be answered), and
    // the answers counted as stale come from 5 s of asking.
    let (refresh, max_stale) = (Duration::from_millis(1000), Duration::from_millis(8000));
    let margin = Duration::from_millis(2000);
    let served = Served::start_with(
        &backend,
        &table,
        &proxy.endpoint,
        Some(SDK_KEY),
        &[
            &format!("refresh-interval-ms={}", refresh.as_millis()),
            &format!("max-stale-ms={}", max_stale.as_millis()),
        ],
    );
    let auth = [("authorization", SDK_KEY)];
    // The snapshot is read between these two instants.
    let asked = Instant::now();
    let (status, _, fresh) = served.get("/sdk/latest-all", &auth);
    assert_eq!(status, 200);
    let read_by = Instant::now();
    down.store(true, Ordering::SeqCst);
    let before = proxy.requests();

    // Up to the maximum age (from the start of the read, so at least until
    // `asked` + max_stale), the last snapshot, with its age.
    let mut stale = 0;
    while asked.elapsed() < max_stale - margin {
        let (status, headers, body) = served.get("/sdk/latest-all", &auth);
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        assert_eq!(body, fresh);
        let age: u64 = header(&headers, "x-snapshot-age-ms")
            .unwrap()
            .parse()
            .unwrap();
        if age >= refresh.as_millis() as u64 {
            stale += 1;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, _, body) = served.get("/status", &auth);
    let status_body = json_of(&body);
    assert_eq!(status, 200);
    assert_eq!(status_body["available"], false, "{status_body}");
    assert_eq!(status_body["initialized"], true, "{status_body}");
    assert!(status_body["snapshotAgeMs"].as_u64().unwrap() >= refresh.as_millis() as u64);
    assert!(stale >= 5, "{stale} stale answers");

    // Past it: 503.
    std::thread::sleep((read_by + max_stale).saturating_duration_since(Instant::now()));
    let (status, _, body) = served.get("/sdk/latest-all", &auth);
    assert_eq!(status, 503, "{}", String::from_utf8_lossy(&body));
    assert_eq!(served.get("/status", &auth).0, 503);

    // The failures were logged once per read, and reads were spaced by the
    // back-off: a bounded load on DynamoDB, whatever the answers.
    let logged = || served.log().matches("the data store failed").count();
    let sent = proxy.requests() - before;
    // A read whose requests were counted may not have logged its failure yet
    // (the log is read by a thread): wait for its line, up to 30 s.
    let mut failures = logged();
    let waited = Instant::now();
    while sent > failures * 3 * 2 && waited.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(50));
        failures = logged();
    }
    let seconds = read_by.elapsed().as_secs_f64();
    assert!(
        failures >= 1 && (failures as f64) <= seconds + 2.0,
        "{failures} failures logged in {seconds:.1} s"
    );
    assert!(
        sent <= failures * 3 * 2,
        "{sent} requests for {failures} reads (3 queries, at most 2 attempts each)"
    );

    // Recovery: within a back-off (at most the refresh interval), fresh
    // answers again (waited for up to 30 s more, for a busy machine).
    down.store(false, Ordering::SeqCst);
    let deadline = Instant::now() + refresh + Duration::from_secs(30);
    loop {
        let (status, headers, _) = served.get("/sdk/latest-all", &auth);
        if status == 200 {
            let age: u64 = header(&headers, "x-snapshot-age-ms")
                .unwrap()
                .parse()
                .unwrap();
            assert!(age < refresh.as_millis() as u64);
            break;
        }
        assert!(Instant::now() < deadline, "no recovery: {status}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(json_of(&served.get("/status", &auth).2)["available"], true);
}

#[test]
fn hundreds_of_concurrent_connections_get_no_5xx() {
    let backend = Backend::dynalite();
    let table = loaded_table(&backend);
    let served = Arc::new(Served::start(
        &backend,
        &table,
        &backend.endpoint,
        Some(SDK_KEY),
    ));
    // 256 connections at once, 2,048 requests in all, one connection each.
    let (threads, per_thread) = (256, 8);
    let started = std::time::Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let served = served.clone();
            std::thread::spawn(move || {
                (0..per_thread)
                    .map(|_| {
                        served
                            .get("/sdk/latest-all", &[("authorization", SDK_KEY)])
                            .0
                    })
                    .collect::<Vec<u16>>()
            })
        })
        .collect();
    let mut statuses = std::collections::BTreeMap::new();
    for handle in handles {
        for status in handle.join().unwrap() {
            *statuses.entry(status).or_insert(0) += 1;
        }
    }
    eprintln!("{statuses:?} in {:?}", started.elapsed());
    let log = served.log();
    assert_eq!(
        statuses.get(&200),
        Some(&(threads * per_thread)),
        "{statuses:?}; the server's log ends with: {}",
        &log[log.len().saturating_sub(2000)..]
    );
}

#[test]
fn the_edge_demo_shows_polling_and_a_client_side_evaluation() {
    let out = user_environment(&mut Command::new(root().join("scripts/edge-demo.sh")))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The polling answer, the 401 without a key, the 304 revalidation.
    assert!(text.contains("\"checkout-banner\""), "{text}");
    assert!(
        text.contains("HTTP/1.1 401") && text.contains("HTTP/1.1 304"),
        "{text}"
    );
    // user-1 is in the beta-testers segment: new-checkout's rule serves it
    // true (GET, with reasons); user-9 gets the fallthrough (REPORT).
    let answers: Vec<Value> = text
        .lines()
        .filter(|l| l.starts_with("{\"banner-text\""))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(answers.len(), 2, "{text}");
    assert_eq!(
        answers[0]["new-checkout"],
        json!({"value": true, "variation": 0, "version": 3,
               "reason": {"kind": "RULE_MATCH", "ruleIndex": 0, "ruleId": "beta-users"}})
    );
    assert_eq!(
        answers[1]["new-checkout"],
        json!({"value": false, "variation": 1, "version": 3})
    );
    assert!(
        answers.iter().all(|a| a.get("checkout-banner").is_none()),
        "only client-side flags: {text}"
    );
}
