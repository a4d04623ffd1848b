//! Shared test support: the compiled component, the two emulators started by
//! `scripts/test.sh`, unique tables, and an independent boto3 client.

#![deny(missing_docs)]

pub mod faults;
pub mod iam;
pub mod policies;
pub mod proxy;
pub mod tls;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use serde_json::{json, Value};

use ld_dynamodb_host::embed::{
    BigSegmentSession, Collection, Credentials, HostOptions, Item, KeyedItem, Runtime, Session,
    StoreConfig, COMPONENT_FILE,
};
use ld_dynamodb_host::{CredentialSource, DataStore, DataStoreBuilder};

/// The region the tests use (moto keeps data per region).
pub const REGION: &str = "us-east-1";

/// A DynamoDB-compatible server started by the test script.
#[derive(Debug, Clone)]
pub struct Backend {
    /// `moto` or `dynalite`, for messages.
    pub name: &'static str,
    /// Its URL on 127.0.0.1.
    pub endpoint: String,
    /// The access key the tests sign with (moto checks the signature).
    pub access_key_id: String,
    /// The secret key of `access_key_id`.
    pub secret_access_key: String,
}

fn required(var: &str) -> String {
    std::env::var(var)
        .unwrap_or_else(|_| panic!("{var} is not set: run the tests with scripts/test.sh"))
}

impl Backend {
    /// moto, with SigV4 checking on.
    pub fn moto() -> Backend {
        Backend {
            name: "moto",
            endpoint: required("LD_TEST_MOTO_ENDPOINT"),
            access_key_id: required("LD_TEST_MOTO_ACCESS_KEY_ID"),
            secret_access_key: required("LD_TEST_MOTO_SECRET_ACCESS_KEY"),
        }
    }

    /// dynalite (AWS-exact validation, no signature checking).
    pub fn dynalite() -> Backend {
        Backend {
            name: "dynalite",
            endpoint: required("LD_TEST_DYNALITE_ENDPOINT"),
            access_key_id: "AKIDDYNALITE".into(),
            secret_access_key: "dynalite-secret-key".into(),
        }
    }

    /// A store configuration for a table on this backend.
    pub fn config(&self, table: &str, prefix: Option<&str>) -> StoreConfig {
        let credentials = Credentials {
            access_key_id: self.access_key_id.clone(),
            secret_access_key: self.secret_access_key.clone(),
            session_token: None,
        };
        StoreConfig::new(table, REGION, credentials)
            .with_prefix(prefix.map(str::to_string))
            .with_endpoint(Some(self.endpoint.clone()))
    }

    /// Settings of a pooled library store on a table of this backend, with
    /// this backend's fixed credentials.
    pub fn data_store(&self, table: &str) -> DataStoreBuilder {
        DataStore::builder(table)
            .region(REGION)
            .endpoint(&self.endpoint)
            .credentials(CredentialSource::fixed(Credentials {
                access_key_id: self.access_key_id.clone(),
                secret_access_key: self.secret_access_key.clone(),
                session_token: None,
            }))
    }

    /// Runs DynamoDB calls with boto3: `[[Operation, params], ...]` → results.
    pub fn boto(&self, calls: Value) -> Vec<Value> {
        self.boto_service("dynamodb", calls)
    }

    /// Runs calls of another AWS service (such as moto's `iam`) with boto3.
    pub fn boto_service(&self, service: &str, calls: Value) -> Vec<Value> {
        let spec = json!({
            "endpoint": self.endpoint,
            "region": REGION,
            "access_key_id": self.access_key_id,
            "secret_access_key": self.secret_access_key,
            "calls": calls,
            "service": service,
        });
        let out = run_script("ddb.py", &["calls"], &spec.to_string());
        serde_json::from_str::<Vec<Value>>(&out).expect("boto helper prints a JSON list")
    }

    /// Every row of a table, read by boto3, sorted by namespace and key.
    pub fn scan(&self, table: &str) -> Vec<Value> {
        let mut rows = Vec::new();
        let mut start: Option<Value> = None;
        loop {
            let mut params = json!({ "TableName": table, "ConsistentRead": true });
            if let Some(s) = &start {
                params["ExclusiveStartKey"] = s.clone();
            }
            let page = self.boto(json!([["Scan", params]])).remove(0);
            rows.extend(page["Items"].as_array().cloned().unwrap_or_default());
            match page.get("LastEvaluatedKey") {
                Some(k) => start = Some(k.clone()),
                None => break,
            }
        }
        rows.sort_by_key(|r| (r["namespace"]["S"].to_string(), r["key"]["S"].to_string()));
        rows
    }
}

/// Runs a command with `stdin` as its input; its whole output.
pub fn run_with_stdin(mut command: Command, stdin: &str) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{command:?} starts: {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// The project's root folder.
pub fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The newest modification time of the files under `path`, with the file
/// that has it.
fn newest(path: &Path) -> Option<(SystemTime, PathBuf)> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.is_file() {
        return Some((meta.modified().ok()?, path.to_path_buf()));
    }
    std::fs::read_dir(path)
        .ok()?
        .filter_map(|entry| newest(&entry.ok()?.path()))
        .max_by_key(|(time, _)| *time)
}

/// The source files cargo recorded for a build in its dep-info file
/// (`target/.../NAME.d`: `output: input input ...`).
pub fn depinfo_sources(depfile: &Path) -> Vec<PathBuf> {
    std::fs::read_to_string(depfile)
        .ok()
        .and_then(|text| {
            text.lines()
                .next()
                .and_then(|line| line.split_once(": "))
                .map(|(_, inputs)| inputs.split_whitespace().map(PathBuf::from).collect())
        })
        .unwrap_or_default()
}

/// Why `artifact` cannot be used: missing, or older than one of `sources`
/// (files or folders); `make` is the command that builds it.
pub fn stale_artifact(artifact: &Path, sources: &[PathBuf], make: &str) -> Option<String> {
    let Ok(built) = std::fs::metadata(artifact).and_then(|m| m.modified()) else {
        return Some(format!("{} is missing: run {make}", artifact.display()));
    };
    let (changed, file) = sources
        .iter()
        .filter_map(|source| newest(source))
        .max_by_key(|(time, _)| *time)?;
    (changed > built).then(|| {
        format!(
            "{} is older than {}: run {make} (scripts/test.sh does), so no test runs an old build",
            artifact.display(),
            file.display()
        )
    })
}

/// `artifact`, after checking that it is newer than every source file of the
/// builds whose dep-info files are `depfiles` (paths under `target/`), and of
/// `extra` (paths under the project root).
pub fn fresh_artifact(artifact: &str, depfiles: &[&str], extra: &[&str], make: &str) -> PathBuf {
    let root = project_root();
    let mut sources: Vec<PathBuf> = depfiles
        .iter()
        .flat_map(|d| depinfo_sources(&root.join("target").join(d)))
        .collect();
    sources.extend(extra.iter().map(|e| root.join(e)));
    let artifact = root.join(artifact);
    if let Some(why) = stale_artifact(&artifact, &sources, make) {
        panic!("{why}");
    }
    artifact
}

/// The dep-info of the store component's core module, and its WIT.
const COMPONENT_DEPINFO: &str = "guests/wasm32-unknown-unknown/release/ld_dynamodb_store.d";

/// The `ld-dynamodb` CLI as `scripts/build.sh` builds it (or `LD_DYNAMODB_BIN`),
/// checked to be newer than its sources.
pub fn cli_binary() -> PathBuf {
    match std::env::var_os("LD_DYNAMODB_BIN") {
        Some(path) => PathBuf::from(path),
        None => fresh_artifact(
            "target/debug/ld-dynamodb",
            &["debug/ld-dynamodb.d"],
            &["host-example/Cargo.toml"],
            "scripts/build.sh",
        ),
    }
}

/// The composed flag evaluator of `scripts/edge-build.sh`, checked to be
/// newer than the evaluator's and the store's sources.
pub fn evaluator_component() -> PathBuf {
    fresh_artifact(
        "target/component/flag-evaluator.wasm",
        &[
            "guests/wasm32-unknown-unknown/release/ld_dynamodb_evaluator.d",
            COMPONENT_DEPINFO,
        ],
        &["wit", "evaluator/wit"],
        "scripts/edge-build.sh",
    )
}

/// The composed edge flag server of `scripts/edge-build.sh`, checked to be
/// newer than the app's and the store's sources.
pub fn edge_component() -> PathBuf {
    fresh_artifact(
        "target/component/edge-flags.wasm",
        &[
            "guests/wasm32-unknown-unknown/release/ld_dynamodb_edge_flags.d",
            "guests/wasm32-unknown-unknown/release/ld_dynamodb_evaluator.d",
            COMPONENT_DEPINFO,
        ],
        &["wit", "edge-server/wit", "evaluator/wit"],
        "scripts/edge-build.sh",
    )
}

/// The unpadded base64url of `bytes`, as LaunchDarkly's JS client SDK puts a
/// context in a path.
pub fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// Gives `command` the environment of a user's shell: without the test
/// environment's AWS and project (`LD_*`) variables, and without the
/// variables cargo sets for a test process (`CARGO_PKG_NAME`,
/// `CARGO_MANIFEST_DIR`, `OUT_DIR`, ...). A cargo build run by the command
/// would otherwise see them changed and rerun the build scripts that watch
/// them (ring's watches all three), rebuilding TLS and the AWS SDK (over a
/// minute) each time a test and a user's shell alternate.
pub fn user_environment(command: &mut Command) -> &mut Command {
    const SET_BY_CARGO: &[&str] = &[
        "CARGO_PKG_",
        "CARGO_MANIFEST_",
        "CARGO_CRATE_",
        "CARGO_BIN_",
    ];
    for (name, _) in std::env::vars() {
        let from_cargo = SET_BY_CARGO.iter().any(|p| name.starts_with(p))
            || [
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
                "CARGO_RUSTC_CURRENT_DIR",
                "OUT_DIR",
            ]
            .contains(&name.as_str());
        if from_cargo || name.starts_with("AWS_") || name.starts_with("LD_") {
            command.env_remove(name);
        }
    }
    command
}

/// What LaunchDarkly's Node server SDK answers (`support/node_oracle.cjs`,
/// whose head says what `spec` holds).
pub fn node_oracle(spec: &Value) -> Value {
    let mut command = Command::new("node");
    command
        .arg(project_root().join("tests/support/node_oracle.cjs"))
        .env(
            "LD_TEST_NODE_MODULES",
            project_root().join(".tools/node/node_modules"),
        );
    let out = run_with_stdin(command, &spec.to_string());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Runs a helper script of `support/` with the project's Python.
fn run_script(name: &str, args: &[&str], stdin: &str) -> String {
    let python = std::env::var("LD_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("support")
        .join(name);
    let mut command = Command::new(python);
    command.arg(script).args(args);
    let out = run_with_stdin(command, stdin);
    assert!(
        out.status.success(),
        "helper {name} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The component under test: `LD_DYNAMODB_COMPONENT`, else the release build
/// of `scripts/build.sh`, checked to be newer than its sources.
pub fn component_path() -> PathBuf {
    match std::env::var_os("LD_DYNAMODB_COMPONENT") {
        Some(path) => PathBuf::from(path),
        None => fresh_artifact(
            &format!("target/component/{COMPONENT_FILE}"),
            &[COMPONENT_DEPINFO],
            &["wit"],
            "scripts/build.sh",
        ),
    }
}

/// The component, compiled once per test binary.
pub fn runtime() -> &'static Arc<Runtime> {
    static RUNTIME: OnceLock<Arc<Runtime>> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        Arc::new(
            Runtime::load(&component_path())
                .expect("the component loads (build it with scripts/build.sh)"),
        )
    })
}

/// A table name no other test uses.
pub fn unique_table(label: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "t-{label}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Opens a store with stderr captured; panics on any error.
pub async fn open(backend: &Backend, table: &str, prefix: Option<&str>) -> Session {
    open_config(&backend.config(table, prefix)).await
}

/// Opens a store from a config with stderr captured; panics on any error.
pub async fn open_config(config: &StoreConfig) -> Session {
    let options = HostOptions::default().capture_stderr(true);
    let instance = runtime().instance(&options).await.expect("instantiates");
    instance.open(config).await.expect("config is valid")
}

/// Creates a fresh table through the component and opens a store on it.
pub async fn fresh_store(
    backend: &Backend,
    label: &str,
    prefix: Option<&str>,
) -> (String, Session) {
    let table = unique_table(label);
    let mut store = open(backend, &table, prefix).await;
    assert!(store.create_table().await.unwrap(), "table {table} is new");
    (table, store)
}

/// A flag-like item JSON with the given extra fields.
pub fn item(key: &str, version: u64, extra: Value) -> KeyedItem {
    let mut json = json!({ "key": key, "version": version });
    if let (Some(obj), Some(more)) = (json.as_object_mut(), extra.as_object()) {
        obj.extend(more.clone());
    }
    KeyedItem {
        key: key.into(),
        item: Item {
            version,
            deleted: false,
            json: json.to_string(),
        },
    }
}

/// A tombstone.
pub fn tombstone(key: &str, version: u64) -> KeyedItem {
    KeyedItem {
        key: key.into(),
        item: Item {
            version,
            deleted: true,
            json: String::new(),
        },
    }
}

/// A collection of one kind.
pub fn collection(kind: &str, items: Vec<KeyedItem>) -> Collection {
    Collection {
        kind: kind.into(),
        items,
    }
}

/// Keys and versions of items, sorted by key.
pub fn versions(items: &[KeyedItem]) -> Vec<(String, u64, bool)> {
    let mut out: Vec<_> = items
        .iter()
        .map(|k| (k.key.clone(), k.item.version, k.item.deleted))
        .collect();
    out.sort();
    out
}

/// Unwraps a store call: no trap, no store error.
#[macro_export]
macro_rules! ok {
    ($call:expr) => {
        $call
            .await
            .unwrap_or_else(|e| panic!("store call failed: {e:?}"))
    };
}

/// The store error a store call fails with; panics when it succeeds or
/// fails otherwise (a trap).
#[macro_export]
macro_rules! store_err {
    ($call:expr) => {
        $call
            .await
            .unwrap_err()
            .into_store_error()
            .expect("a store error")
    };
}

/// Opens a Big Segment store; panics on any error.
pub async fn open_big_segments(
    backend: &Backend,
    table: &str,
    prefix: Option<&str>,
) -> BigSegmentSession {
    let options = HostOptions::default().capture_stderr(true);
    let instance = runtime().instance(&options).await.expect("instantiates");
    instance
        .open_big_segments(&backend.config(table, prefix))
        .await
        .expect("config is valid")
}

impl Backend {
    /// What the helpers of LaunchDarkly's stores read on stdin.
    fn ld_spec(&self, table: &str, prefix: Option<&str>, ops: Value) -> String {
        json!({
            "endpoint": self.endpoint,
            "region": REGION,
            "access_key_id": self.access_key_id,
            "secret_access_key": self.secret_access_key,
            "table": table,
            "prefix": prefix,
            "ops": ops,
        })
        .to_string()
    }

    /// Runs operations through LaunchDarkly's official Python stores (caching
    /// disabled) on a table: see `support/ld_python.py`.
    pub fn ld_python(&self, table: &str, prefix: Option<&str>, ops: Value) -> Vec<Value> {
        let out = run_script("ld_python.py", &[], &self.ld_spec(table, prefix, ops));
        serde_json::from_str(&out).expect("the LD helper prints a JSON list")
    }

    /// Runs operations through LaunchDarkly's official Node.js DynamoDB store
    /// (caching disabled) on a table: see `support/ld_node.cjs`.
    pub fn ld_node(&self, table: &str, prefix: Option<&str>, ops: Value) -> Vec<Value> {
        let mut command = Command::new("node");
        command
            .arg(project_root().join("tests/support/ld_node.cjs"))
            .env(
                "LD_TEST_NODE_MODULES",
                project_root().join(".tools/node/node_modules"),
            );
        let out = run_with_stdin(command, &self.ld_spec(table, prefix, ops));
        assert!(
            out.status.success(),
            "ld_node.cjs failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("the LD helper prints a JSON list")
    }

    /// Writes Big Segment rows the way the Relay Proxy does: the metadata with
    /// PutItem, memberships with UpdateItem `ADD` on string sets.
    pub fn relay_write(
        &self,
        table: &str,
        prefix: Option<&str>,
        synchronized_on: Option<u64>,
        members: &[(&str, &[&str], &[&str])],
    ) {
        let ns = |base: &str| {
            prefix
                .map(|p| format!("{p}:{base}"))
                .unwrap_or_else(|| base.to_string())
        };
        let mut calls = Vec::new();
        if let Some(millis) = synchronized_on {
            let key = ns("big_segments_metadata");
            calls.push(json!(["PutItem", {
                "TableName": table,
                "Item": { "namespace": { "S": key }, "key": { "S": key }, "synchronizedOn": { "N": millis.to_string() } },
            }]));
        }
        for (hash, included, excluded) in members {
            for (attr, refs) in [("included", included), ("excluded", excluded)] {
                if refs.is_empty() {
                    continue;
                }
                calls.push(json!(["UpdateItem", {
                    "TableName": table,
                    "Key": { "namespace": { "S": ns("big_segments_user") }, "key": { "S": hash } },
                    "UpdateExpression": "ADD #attr :value",
                    "ExpressionAttributeNames": { "#attr": attr },
                    "ExpressionAttributeValues": { ":value": { "SS": refs } },
                }]));
            }
        }
        self.boto(Value::Array(calls));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_artifact_older_than_a_source_or_missing_is_refused() {
        let root = std::env::temp_dir().join(format!("ld-stale-{}", std::process::id()));
        std::fs::create_dir_all(root.join("src/deep")).unwrap();
        let artifact = root.join("built.wasm");
        let sources = [root.join("src")];
        assert!(stale_artifact(&artifact, &sources, "make")
            .unwrap()
            .contains("missing"));
        std::fs::write(root.join("src/deep/a.rs"), "old").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&artifact, "wasm").unwrap();
        assert_eq!(stale_artifact(&artifact, &sources, "make"), None);
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(root.join("src/deep/a.rs"), "new").unwrap();
        let why = stale_artifact(&artifact, &sources, "make").unwrap();
        assert!(why.contains("a.rs") && why.contains("run make"), "{why}");
        // Dep-info files name the inputs of a build.
        let depfile = root.join("out.d");
        std::fs::write(
            &depfile,
            format!(
                "{}: {}\n",
                artifact.display(),
                root.join("src/deep/a.rs").display()
            ),
        )
        .unwrap();
        assert_eq!(depinfo_sources(&depfile), [root.join("src/deep/a.rs")]);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
