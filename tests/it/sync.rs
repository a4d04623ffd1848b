//! `ld-dynamodb sync` against a LaunchDarkly stand-in (`support/ld_standin.py`,
//! a real HTTP server serving the SDK's stream and polling routes) and moto
//! with SigV4 checking on; the table read back through LaunchDarkly's Python
//! store. Each step waits for the CLI's own log line of the change (a signal,
//! not a sleep). Progress of `init` under a pseudo-terminal and in a pipe.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

use serde_json::{json, Value};

use ld_dynamodb_tests::{cli_binary, project_root, unique_table, Backend, REGION};

const KEY: &str = "sdk-standin-0f1e2d3c";
const PREFIX: &str = "sync";
/// How long a step may take before the test fails (a bound, not a wait).
const STEP: Duration = Duration::from_secs(60);

fn python() -> String {
    std::env::var("LD_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// A flag as LaunchDarkly sends it, in the form the Rust SDK writes back
/// (every field; no `"negate": false`, `"deleted": false`).
pub(crate) fn flag(key: &str, version: u64, on: bool, rules: Value) -> Value {
    json!({
        "key": key, "version": version, "on": on, "targets": [], "contextTargets": [],
        "rules": rules, "prerequisites": [], "fallthrough": { "variation": 0 },
        "offVariation": 1, "variations": [true, false], "clientSide": false,
        "salt": format!("salt-{key}"), "trackEvents": false, "trackEventsFallthrough": false,
        "debugEventsUntilDate": null,
    })
}

/// A segment as LaunchDarkly sends it.
fn segment(key: &str, version: u64, included: &[&str]) -> Value {
    json!({
        "key": key, "version": version, "included": included, "excluded": [],
        "includedContexts": [], "excludedContexts": [], "rules": [],
        "salt": format!("salt-{key}"), "unbounded": false, "unboundedContextKind": null,
        "generation": null,
    })
}

/// Three flags (one matching a segment) and a segment.
pub(crate) fn payload() -> Value {
    let beta_rule = json!([{ "id": "beta", "variation": 0, "trackEvents": false,
        "clauses": [{ "attribute": "segmentMatch", "contextKind": "user", "op": "segmentMatch", "values": ["beta"] }] }]);
    json!({
        "flags": {
            "banner": flag("banner", 3, true, json!([])),
            "checkout": flag("checkout", 7, false, beta_rule),
            "legacy": flag("legacy", 1, true, json!([])),
        },
        "segments": { "beta": segment("beta", 2, &["user-1"]) },
    })
}

/// The stand-in process, driven through its stdin.
pub(crate) struct StandIn {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    port: u16,
}

impl StandIn {
    pub(crate) fn start(data: &Value) -> StandIn {
        let mut child = Command::new(python())
            .arg(project_root().join("tests/support/ld_standin.py"))
            .env("LD_STANDIN_SDK_KEY", KEY)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the stand-in starts");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let port = line.trim().parse().expect("the stand-in prints its port");
        let mut standin = StandIn {
            child,
            stdin,
            stdout,
            port,
        };
        standin.send(json!({ "op": "put", "data": data }));
        standin
    }

    fn uri(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Sends a command; the stand-in's status after it.
    pub(crate) fn send(&mut self, command: Value) -> Value {
        writeln!(self.stdin, "{command}").unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        let status: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(status["ok"], true, "{command}: {status}");
        status
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The CLI on `table` of `backend` under `prefix`, in a user's environment:
/// nothing but what it needs.
pub(crate) fn cli_in(backend: &Backend, table: &str, prefix: &str, args: &[&str]) -> Command {
    let mut command = Command::new(cli_binary());
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("AWS_ACCESS_KEY_ID", &backend.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &backend.secret_access_key)
        .env("AWS_REGION", REGION)
        .env("AWS_ENDPOINT_URL_DYNAMODB", &backend.endpoint)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("LD_DYNAMODB_TABLE", table)
        .env("LD_DYNAMODB_PREFIX", prefix)
        .env(
            "LD_DYNAMODB_CACHE_DIR",
            project_root().join("target/component-cache"),
        );
    command
}

/// The CLI on `table` of `backend` under this module's prefix.
fn cli(backend: &Backend, table: &str, args: &[&str]) -> Command {
    cli_in(backend, table, PREFIX, args)
}

/// A new table, created by the CLI.
fn new_table(backend: &Backend) -> String {
    let table = unique_table("sync");
    let out = cli(backend, &table, &["create-table"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    table
}

/// A running `ld-dynamodb sync`, its stderr lines as they come.
pub(crate) struct Sync {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Sync {
    pub(crate) fn start(mut command: Command) -> Sync {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let (send, lines) = channel();
        std::thread::spawn(move || {
            for line in stderr.lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Sync {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for the line that `wanted` accepts.
    pub(crate) fn wait_for(&mut self, what: &str, wanted: impl Fn(&str) -> bool) -> String {
        loop {
            match self.lines.recv_timeout(STEP) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if wanted(&line) {
                        return line;
                    }
                }
                Err(e) => panic!("no line {what} ({e}); lines: {:#?}", self.seen),
            }
        }
    }

    /// Stops it with SIGTERM; its exit status and every line.
    pub(crate) fn stop(mut self) -> (ExitStatus, Vec<String>) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let status = self.child.wait().unwrap();
        let mut seen = std::mem::take(&mut self.seen);
        seen.extend(self.lines.iter());
        (status, seen)
    }
}

impl Drop for Sync {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What LaunchDarkly's Python store reads from the table.
fn read_back(backend: &Backend, table: &str) -> Value {
    let results = backend.ld_python(
        table,
        Some(PREFIX),
        json!([["all", "features"], ["all", "segments"], ["initialized"]]),
    );
    assert_eq!(results[2], true, "the table is initialized");
    json!({ "flags": results[0], "segments": results[1] })
}

pub(crate) fn sync_command(
    backend: &Backend,
    table: &str,
    standin: &StandIn,
    args: &[&str],
) -> Command {
    let mut command = cli(backend, table, &["sync"]);
    command
        .args(args)
        .env("LD_SDK_KEY", KEY)
        .env("LD_STREAM_URI", standin.uri())
        .env("LD_BASE_URI", standin.uri())
        .env("LD_EVENTS_URI", standin.uri());
    command
}

/// A new table, the stand-in serving [`payload`], and `sync` (streaming)
/// once it has written the first payload.
fn syncing() -> (Backend, String, StandIn, Sync) {
    let backend = Backend::moto();
    let table = new_table(&backend);
    let standin = StandIn::start(&payload());
    let mut sync = Sync::start(sync_command(&backend, &table, &standin, &[]));
    sync.wait_for("of the first Init", |l| {
        l.contains("sync: init done: 4 written")
    });
    (backend, table, standin, sync)
}

fn no_key_in(lines: &[String]) {
    for line in lines {
        assert!(!line.contains(KEY), "the SDK key in {line:?}");
    }
}

#[test]
fn puts_patches_and_deletes_reach_the_table_and_an_older_patch_is_ignored() {
    let (backend, table, mut standin, mut sync) = syncing();
    assert_eq!(read_back(&backend, &table), payload());

    // A patch: the item has the new version.
    let toggled = flag("banner", 4, false, json!([]));
    standin.send(json!({ "op": "patch", "kind": "flags", "item": toggled }));
    sync.wait_for("of the patch", |l| {
        l.ends_with(r#"sync: patch flags "banner" version 4: applied"#)
    });
    let got = backend.ld_python(&table, Some(PREFIX), json!([["get", "features", "banner"]]));
    assert_eq!(got[0], toggled);

    // An older patch is ignored: the table keeps version 4.
    standin.send(
        json!({ "op": "patch", "kind": "flags", "item": flag("banner", 2, true, json!([])) }),
    );
    sync.wait_for("of the older patch", |l| {
        l.contains(r#"patch flags "banner" version 2: ignored"#)
    });
    let got = backend.ld_python(&table, Some(PREFIX), json!([["get", "features", "banner"]]));
    assert_eq!(got[0], toggled);

    // A delete leaves a tombstone at its version.
    standin.send(json!({ "op": "delete", "kind": "segments", "key": "beta", "version": 3 }));
    sync.wait_for("of the delete", |l| {
        l.ends_with(r#"sync: delete segments "beta" version 3: applied"#)
    });
    let got = backend.ld_python(
        &table,
        Some(PREFIX),
        json!([["get", "segments", "beta"], ["all", "segments"]]),
    );
    assert_eq!(got, vec![Value::Null, json!({})]);
    let raw = cli(&backend, &table, &["get", "segments", "beta", "--raw"])
        .output()
        .unwrap();
    let raw: Value = serde_json::from_slice(&raw.stdout).unwrap();
    assert_eq!(
        (raw["version"].as_u64(), raw["deleted"].as_bool()),
        (Some(3), Some(true))
    );

    // SIGTERM stops it cleanly.
    let (status, lines) = sync.stop();
    assert!(status.success(), "{status:?}: {lines:#?}");
    assert!(
        lines.last().unwrap().ends_with("sync: stopped by SIGTERM"),
        "{lines:#?}"
    );
    no_key_in(&lines);
}

#[test]
fn a_dropped_stream_comes_back_with_a_put_and_a_vanished_flag_is_gone() {
    let (backend, table, mut standin, mut sync) = syncing();
    // The stream drops; the next connection gets data without `legacy`
    // and with a newer `checkout`.
    let mut next = payload();
    next["flags"].as_object_mut().unwrap().remove("legacy");
    next["flags"]["checkout"] = flag("checkout", 8, true, json!([]));
    let status = standin.send(json!({ "op": "drop", "data": next }));
    assert_eq!(
        (status["streams"].as_u64(), status["open"].as_u64()),
        (Some(1), Some(0))
    );
    sync.wait_for("of the Init after the reconnection", |l| {
        l.contains("sync: init done: 3 written, 1 deleted")
    });
    assert_eq!(standin.send(json!({ "op": "status" }))["streams"], 2);
    assert_eq!(read_back(&backend, &table), next);
    let (status, lines) = sync.stop();
    assert!(status.success(), "{lines:#?}");
    no_key_in(&lines);
}

#[test]
fn a_key_refused_after_the_first_payload_stops_sync_with_the_fix() {
    let (_backend, _table, mut standin, mut sync) = syncing();
    // The key is revoked, and the stream reconnects.
    standin.send(json!({ "op": "key", "key": "sdk-rotated-9e8d7c" }));
    standin.send(json!({ "op": "drop" }));
    sync.wait_for("of the refusal", |l| l.contains("Unexpected response 401"));
    let status = sync.child.wait().unwrap();
    let lines: Vec<String> = sync.lines.iter().collect();
    assert_eq!(status.code(), Some(1), "{lines:#?}");
    let error = lines.last().expect("an error line");
    assert!(
        error.starts_with("ld-dynamodb: error: the LaunchDarkly SDK stopped and no longer keeps")
            && error.contains("401")
            && error.contains("set LD_SDK_KEY"),
        "{error}"
    );
    no_key_in(&lines);
}

#[test]
fn once_through_polling_or_streaming_prints_the_init_report_and_exits_0() {
    let backend = Backend::moto();
    let table = new_table(&backend);
    let mut standin = StandIn::start(&payload());
    let out = sync_command(&backend, &table, &standin, &["--once", "--polling"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report, json!({ "written": 4, "deleted": 0, "dropped": [] }));
    assert!(!stderr.contains(KEY));
    assert_eq!(read_back(&backend, &table), payload());
    let status = standin.send(json!({ "op": "status" }));
    assert_eq!(
        (status["polls"].as_u64(), status["streams"].as_u64()),
        (Some(1), Some(0))
    );
    // Streaming too: one connection, the first put, then the exit; the
    // next payload replaces the table (`legacy` gone).
    let mut next = payload();
    next["flags"].as_object_mut().unwrap().remove("legacy");
    standin.send(json!({ "op": "put", "data": next }));
    let out = sync_command(&backend, &table, &standin, &["--once"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report, json!({ "written": 3, "deleted": 1, "dropped": [] }));
    assert_eq!(read_back(&backend, &table), next);
    assert_eq!(standin.send(json!({ "op": "status" }))["streams"], 1);
}

#[test]
fn a_refused_or_missing_key_exits_non_zero_with_the_fix_and_never_shows_the_key() {
    let backend = Backend::moto();
    let table = new_table(&backend);
    let mut standin = StandIn::start(&payload());
    let wrong = "sdk-wrong-5a6b7c8d";
    for args in [&[][..], &["--once", "--polling"][..]] {
        let out = sync_command(&backend, &table, &standin, args)
            .env("LD_SDK_KEY", wrong)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty());
        let error = stderr.lines().last().unwrap();
        assert!(error.starts_with("ld-dynamodb: error: "), "{stderr}");
        assert!(
            error.contains("401") && error.contains("set LD_SDK_KEY"),
            "{error}"
        );
        assert!(!stderr.contains(wrong) && !stderr.contains(KEY), "{stderr}");
    }
    assert_eq!(standin.send(json!({ "op": "status" }))["unauthorized"], 2);
    // Without a key nothing is sent.
    let out = sync_command(&backend, &table, &standin, &["--once"])
        .env_remove("LD_SDK_KEY")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("no SDK key: set LD_SDK_KEY"), "{stderr}");
    let status = standin.send(json!({ "op": "status" }));
    assert_eq!(
        (status["unauthorized"].as_u64(), status["streams"].as_u64()),
        (Some(2), Some(0))
    );
    // No payload in time with --once: non-zero, saying so.
    let out = sync_command(&backend, &table, &standin, &["--once", "--timeout", "1"])
        .env("LD_STREAM_URI", "http://127.0.0.1:9")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("no flag data from LaunchDarkly within 1 s"),
        "{stderr}"
    );
}

/// Runs `args` under a pseudo-terminal (Python's `pty`); what the terminal showed.
fn under_a_terminal(command: &Command) -> (i32, String) {
    let mut spec = vec![command.get_program().to_string_lossy().to_string()];
    spec.extend(command.get_args().map(|a| a.to_string_lossy().to_string()));
    let script = r#"
import json, os, pty, sys
argv = json.loads(sys.argv[1])
# pty.spawn copies the terminal's output to stdout: keep it for the result.
result = os.dup(1)
os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
out = bytearray()
def read(fd):
    data = os.read(fd, 65536)
    out.extend(data)
    return data
status = pty.spawn(argv, read)
shown = out.decode("utf-8", "replace")
os.write(result, json.dumps({"status": os.waitstatus_to_exitcode(status), "output": shown}).encode())
"#;
    let mut python = Command::new(python());
    python
        .args(["-c", script, &serde_json::to_string(&spec).unwrap()])
        .env_clear()
        .env("TERM", "xterm")
        .env("COLUMNS", "100");
    for (key, value) in command.get_envs() {
        if let Some(value) = value {
            python.env(key, value);
        }
    }
    let out = python.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    (
        result["status"].as_i64().unwrap() as i32,
        result["output"].as_str().unwrap().to_string(),
    )
}

#[test]
fn progress_shows_under_a_terminal_and_not_in_a_pipe() {
    let backend = Backend::moto();
    let table = new_table(&backend);
    let file = std::env::temp_dir().join(format!("sync-progress-{}.json", std::process::id()));
    std::fs::write(&file, payload().to_string()).unwrap();
    let init = cli(&backend, &table, &["init", file.to_str().unwrap()]);
    let (status, shown) = under_a_terminal(&init);
    assert_eq!(status, 0, "{shown}");
    assert!(shown.contains("4/4 items written"), "{shown:?}");
    // In a pipe: the report alone, nothing on stderr.
    let out = cli(&backend, &table, &["init", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The first payload of sync too.
    let standin = StandIn::start(&payload());
    let once = sync_command(&backend, &table, &standin, &["--once", "--polling"]);
    let (status, shown) = under_a_terminal(&once);
    assert_eq!(status, 0, "{shown}");
    assert!(
        shown.contains("sync: init") && shown.contains("4/4 items written"),
        "{shown:?}"
    );
    std::fs::remove_file(&file).unwrap();
}

#[test]
fn a_flag_toggled_at_launchdarkly_is_served_at_the_edge_after_the_refresh_interval() {
    use crate::edge::{json_of, Served};
    let (backend, table, mut standin, mut sync) = syncing();
    let refresh = Duration::from_millis(1500);
    let mut serve = Command::new(project_root().join(".tools/bin/wasmtime"));
    serve
        .env_clear()
        .env("AWS_ACCESS_KEY_ID", &backend.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &backend.secret_access_key)
        .env("LD_SDK_KEY", KEY);
    let served = Served::spawn(
        serve,
        &[
            format!("table={table}"),
            format!("prefix={PREFIX}"),
            format!("region={REGION}"),
            format!("endpoint={}", backend.endpoint),
            format!("refresh-interval-ms={}", refresh.as_millis()),
        ],
    );
    let banner = || {
        let (status, _, body) = served.get("/sdk/latest-flags/banner", &[("authorization", KEY)]);
        assert_eq!(status, 200);
        let flag = json_of(&body);
        (
            flag["version"].as_u64().unwrap(),
            flag["on"].as_bool().unwrap(),
        )
    };
    assert_eq!(banner(), (3, true));
    // Toggled at the stand-in: the stream delivers it, sync writes it.
    let toggled = std::time::Instant::now();
    standin.send(
        json!({ "op": "patch", "kind": "flags", "item": flag("banner", 4, false, json!([])) }),
    );
    sync.wait_for("of the toggle", |l| {
        l.ends_with(r#"sync: patch flags "banner" version 4: applied"#)
    });
    let written = toggled.elapsed();
    // No snapshot older than the refresh interval is served: every answer
    // begun an interval after the write comes from a read after it.
    std::thread::sleep(refresh);
    for _ in 0..3 {
        assert_eq!(banner(), (4, false));
    }
    eprintln!(
        "toggle to table: {} ms; served at most {} ms after the toggle",
        written.as_millis(),
        (written + refresh).as_millis()
    );
    let (status, lines) = sync.stop();
    assert!(status.success(), "{lines:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_progress_counts_are_items_written_and_answers_that_held_items_back() {
    use ld_dynamodb_tests::proxy::{Action, Proxy};
    use ld_dynamodb_tests::{collection, item, runtime};
    // dynalite: the rewritten request no longer matches its signature.
    let backend = Backend::dynalite();
    let table = new_table(&backend);
    // The first BatchWriteItem is throttled (400); the second is written but
    // for its last put, answered as unprocessed; the rest pass.
    let mut batches = 0;
    let named = table.clone();
    let proxy = Proxy::start(&backend.endpoint, move |request| {
        if request.op != "BatchWriteItem" {
            return Action::Forward;
        }
        batches += 1;
        match batches {
            1 => Action::Respond(
                400,
                json!({ "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
                        "message": "throttled" })
                .to_string(),
            ),
            2 => {
                let mut body = request.json();
                let puts = body["RequestItems"][&named].as_array_mut().unwrap();
                let held = puts.pop().unwrap();
                let table = named.clone();
                Action::Rewrite(
                    serde_json::to_vec(&body).unwrap(),
                    Box::new(move |_| {
                        json!({ "UnprocessedItems": { table: [held] } })
                            .to_string()
                            .into_bytes()
                    }),
                )
            }
            _ => Action::Forward,
        }
    })
    .await;
    let store = backend
        .data_store(&table)
        .endpoint(&proxy.endpoint)
        .build(runtime().clone())
        .await
        .unwrap();
    let before = store.write_counts();
    let flags = (0..30)
        .map(|i| item(&format!("f{i:02}"), 1, json!({})))
        .collect();
    let report = store.init(&[collection("features", flags)]).await.unwrap();
    assert_eq!(report.written, 30);
    let after = store.write_counts();
    assert_eq!(after.items_written - before.items_written, 30);
    assert_eq!(after.throttled_answers - before.throttled_answers, 2);
}
