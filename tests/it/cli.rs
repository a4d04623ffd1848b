//! The `ld-dynamodb` CLI against moto with SigV4 checking on: every command,
//! its JSON output, and its errors.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::{json, Value};

use ld_dynamodb_tests::iam::{new_role, Iam};
use ld_dynamodb_tests::{cli_binary, run_with_stdin, unique_table, Backend, REGION};

struct Cli {
    backend: Backend,
    table: String,
    prefix: Option<&'static str>,
    secret: String,
}

impl Cli {
    fn new(prefix: Option<&'static str>) -> Cli {
        let backend = Backend::moto();
        let secret = backend.secret_access_key.clone();
        Cli {
            backend,
            table: unique_table("cli"),
            prefix,
            secret,
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(cli_binary());
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("AWS_ACCESS_KEY_ID", &self.backend.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &self.secret)
            .env("AWS_DEFAULT_REGION", REGION)
            .env("AWS_ENDPOINT_URL", &self.backend.endpoint)
            // No instance metadata lookups when the chain finds nothing.
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("LD_DYNAMODB_TABLE", &self.table)
            .env(
                "LD_DYNAMODB_CACHE_DIR",
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/component-cache"),
            );
        if let Some(prefix) = self.prefix {
            cmd.env("LD_DYNAMODB_PREFIX", prefix);
        }
        cmd
    }

    fn run_with(&self, args: &[&str], stdin: &str) -> Output {
        run_with_stdin(self.command(args), stdin)
    }

    /// Runs a command that must succeed; its stdout as JSON.
    fn json(&self, args: &[&str], stdin: &str) -> Value {
        let out = self.run_with(args, stdin);
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Runs a command that must fail; its one stderr line.
    fn error(&self, args: &[&str], stdin: &str) -> String {
        let out = self.run_with(args, stdin);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(out.stdout.is_empty(), "nothing on stdout");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
        assert!(
            !stderr.contains(&self.backend.secret_access_key),
            "no secret in errors"
        );
        stderr
    }
}

/// AWS's shared files (`credentials`, `config`) in a folder of their own,
/// removed when dropped.
struct SharedFiles {
    dir: PathBuf,
}

impl SharedFiles {
    fn new(label: &str, credentials: &str, config: &str) -> SharedFiles {
        let dir = std::env::temp_dir().join(format!("ld-dynamodb-{label}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("credentials"), credentials).unwrap();
        std::fs::write(dir.join("config"), config).unwrap();
        SharedFiles { dir }
    }

    /// The CLI with `args`, with no keys in its environment: its credentials
    /// come from these files, as `profile` (`AWS_PROFILE`) or the default one.
    fn command(&self, cli: &Cli, profile: Option<&str>, args: &[&str]) -> Command {
        let mut command = cli.command(args);
        command
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env("AWS_SHARED_CREDENTIALS_FILE", self.dir.join("credentials"))
            .env("AWS_CONFIG_FILE", self.dir.join("config"));
        if let Some(profile) = profile {
            command.env("AWS_PROFILE", profile);
        }
        command
    }
}

impl Drop for SharedFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const DATA: &str = r#"{
  "flags": {
    "f1": {"key": "f1", "version": 3, "on": true, "variations": [true, false]},
    "f2": {"key": "f2", "version": 1, "on": false, "deleted": false}
  },
  "segments": {"s1": {"key": "s1", "version": 2, "included": ["u1"]}}
}"#;

#[test]
fn every_command_works_against_moto_with_signature_checking() {
    for prefix in [None, Some("cli-prefix")] {
        let cli = Cli::new(prefix);
        assert_eq!(
            cli.json(&["create-table"], ""),
            json!({ "table": cli.table, "created": true })
        );
        assert_eq!(
            cli.json(&["status"], ""),
            json!({ "initialized": false, "available": true })
        );
        assert_eq!(
            cli.json(&["init", "-"], DATA),
            json!({ "written": 3, "deleted": 0, "dropped": [] })
        );
        assert_eq!(
            cli.json(&["status"], ""),
            json!({ "initialized": true, "available": true })
        );
        let data: Value = serde_json::from_str(DATA).unwrap();
        assert_eq!(cli.json(&["all", "flags"], ""), data["flags"]);
        assert_eq!(cli.json(&["all", "segments"], ""), data["segments"]);
        assert_eq!(cli.json(&["get", "flags", "f1"], ""), data["flags"]["f1"]);
        assert_eq!(cli.json(&["get", "flags", "nope"], ""), Value::Null);

        let newer = r#"{"key":"f1","version":4,"on":false}"#;
        let applied = cli.json(&["upsert", "flags", "-"], newer);
        assert_eq!(applied["updated"], true);
        assert_eq!(applied["outcome"], "applied");
        let older = cli.json(&["upsert", "flags", "-"], r#"{"key":"f1","version":2}"#);
        assert_eq!(
            (older["updated"].clone(), older["outcome"].clone()),
            (json!(false), json!("not-newer"))
        );
        assert_eq!(cli.json(&["get", "flags", "f1"], "")["version"], 4);

        assert_eq!(
            cli.json(&["delete", "flags", "f2", "1"], "")["updated"],
            false,
            "same version loses"
        );
        assert_eq!(
            cli.json(&["delete", "flags", "f2", "5"], "")["updated"],
            true
        );
        assert_eq!(cli.json(&["get", "flags", "f2"], ""), Value::Null);
        assert_eq!(
            cli.json(&["get", "flags", "f2", "--raw"], ""),
            json!({ "version": 5, "deleted": true, "item": "{\"key\":\"f2\",\"version\":5,\"deleted\":true}" })
        );
        let all = cli.json(&["all", "flags"], "");
        assert_eq!(all.as_object().unwrap().keys().collect::<Vec<_>>(), ["f1"]);

        // What the CLI wrote is in the table, under the right namespace.
        let rows = cli.backend.scan(&cli.table);
        let ns = prefix
            .map(|p| format!("{p}:features"))
            .unwrap_or_else(|| "features".into());
        assert!(rows.iter().any(|r| r["namespace"]["S"] == json!(ns)
            && r["key"]["S"] == "f1"
            && r["version"]["N"] == "4"));
    }
}

#[test]
fn init_from_a_file_and_upsert_from_a_file() {
    let cli = Cli::new(None);
    cli.json(&["create-table"], "");
    let dir = std::env::temp_dir().join(format!("ld-dynamodb-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let data = dir.join("data.json");
    std::fs::write(&data, DATA).unwrap();
    assert_eq!(
        cli.json(&["init", data.to_str().unwrap()], "")["written"],
        3
    );
    let flag = dir.join("flag.json");
    std::fs::write(&flag, r#"{"key":"f9","version":1}"#).unwrap();
    assert_eq!(
        cli.json(&["upsert", "flags", flag.to_str().unwrap()], "")["updated"],
        true
    );
    let err = cli.error(&["init", dir.join("missing.json").to_str().unwrap()], "");
    assert!(err.contains("cannot read"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn errors_are_one_clear_line_without_secrets() {
    let mut cli = Cli::new(None);
    cli.json(&["create-table"], "");
    let err = cli.error(&["init", "-"], "{not json");
    assert!(err.contains("not valid JSON"), "{err}");
    let err = cli.error(&["init", "-"], r#"{"flags":[]}"#);
    assert!(err.contains("\"flags\" must be an object"), "{err}");
    let err = cli.error(&["upsert", "flags", "-"], r#"{"version":1}"#);
    assert!(err.contains("\"key\""), "{err}");

    cli.secret = "wrong-secret-value-123".into();
    let err = cli.error(&["get", "flags", "f1"], "");
    assert!(err.contains("SignatureDoesNotMatch"), "{err}");
    assert!(!err.contains("wrong-secret-value-123"));
    let err = cli.error(&["status"], "");
    assert!(err.contains("SignatureDoesNotMatch"), "{err}");

    // Missing settings: one line naming what is missing and what sets it.
    let one_line = |command: &mut Command| {
        let out = command.output().unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
        stderr
    };
    let stderr = one_line(cli.command(&["status"]).env_remove("AWS_SECRET_ACCESS_KEY"));
    for needle in [
        "cannot resolve AWS credentials",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_PROFILE",
        "~/.aws/credentials",
    ] {
        assert!(stderr.contains(needle), "{needle}: {stderr}");
    }
    assert!(
        !stderr.contains("ProviderError("),
        "no Debug dump: {stderr}"
    );
    // No table, from the environment or the option (or an empty one): every
    // command that reaches the table says how to name it.
    for args in [
        &["status"][..],
        &["create-table"],
        &["get", "flags", "f1", "--table", ""],
    ] {
        let mut command = cli.command(args);
        command.env_remove("LD_DYNAMODB_TABLE");
        assert_eq!(
            one_line(&mut command).trim_end(),
            "ld-dynamodb: error: invalid configuration: no table name: set LD_DYNAMODB_TABLE, \
             or pass --table to the CLI"
        );
    }
    let stderr = one_line(
        cli.command(&["status"])
            .env_remove("AWS_DEFAULT_REGION")
            .env("HOME", "/nonexistent"),
    );
    assert!(
        stderr.contains("AWS_REGION") && stderr.contains("--region"),
        "{stderr}"
    );
    cli.secret = cli.backend.secret_access_key.clone();
    let stderr = one_line(
        cli.command(&["get", "flags", "f1"])
            .env("LD_DYNAMODB_TABLE", "no-such-table"),
    );
    assert!(
        stderr.contains("ResourceNotFoundException")
            && stderr.contains("table \"no-such-table\"")
            && stderr.contains(REGION)
            && stderr.contains(&cli.backend.endpoint)
            && stderr.contains("ld-dynamodb create-table"),
        "{stderr}"
    );
    // A server that does not answer: the endpoint tried is named.
    let refused = cli.error(&["status", "--endpoint", "http://127.0.0.1:9"], "");
    assert_eq!(
        refused.trim_end(),
        "ld-dynamodb: error: store unavailable: transport error: connection-refused \
         (5 attempts): endpoint http://127.0.0.1:9"
    );
    let bad_endpoint = cli
        .command(&["status", "--endpoint", "ftp://x"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&bad_endpoint.stderr).contains("only http and https"));
}

#[test]
fn exit_codes_and_outputs_say_what_was_stored() {
    let cli = Cli::new(None);
    cli.json(&["create-table"], "");
    // An Init file with only flags: the missing kind is an empty kind.
    assert_eq!(
        cli.json(
            &["init", "-"],
            r#"{"flags":{"f1":{"key":"f1","version":3}}}"#
        ),
        json!({ "written": 1, "deleted": 0, "dropped": [] })
    );
    assert_eq!(cli.json(&["all", "segments"], ""), json!({}));
    // A delete that loses says what the table holds.
    assert_eq!(
        cli.json(&["delete", "flags", "f1", "2"], ""),
        json!({ "updated": false, "outcome": "not-newer", "key": "f1",
                "requested": {"version": 2, "deleted": true},
                "stored": {"version": 3, "deleted": false} })
    );
    assert_eq!(
        cli.json(&["delete", "flags", "f1", "4"], ""),
        json!({ "updated": true, "outcome": "applied", "key": "f1",
                "requested": {"version": 4, "deleted": true},
                "stored": {"version": 4, "deleted": true} })
    );
    // not-newer exits 0; an item over the size limit is not stored: non-zero.
    let older = cli.run_with(&["upsert", "flags", "-"], r#"{"key":"f1","version":1}"#);
    assert!(older.status.success());
    let big = json!({"key": "huge", "version": 1, "description": "x".repeat(400_000)});
    let out = cli.run_with(&["upsert", "flags", "-"], &big.to_string());
    assert!(!out.status.success(), "a write that was not stored fails");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (report["outcome"].clone(), report["stored"].clone()),
        (json!("too-large"), Value::Null)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("not stored"));
}

#[test]
fn help_explains_every_option() {
    let cli = Cli::new(None);
    let out = cli.command(&["--help"]).output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "--table",
        "LD_DYNAMODB_TABLE",
        "--prefix",
        "LD_DYNAMODB_PREFIX",
        "--region",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "--endpoint",
        "AWS_ENDPOINT_URL_DYNAMODB",
        "AWS_ENDPOINT_URL",
        "--component",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "init",
        "get",
        "all",
        "upsert",
        "delete",
        "status",
        "create-table",
    ] {
        assert!(help.contains(needle), "--help mentions {needle}:\n{help}");
    }
    // The table is required and has no default; environment variables are
    // named without their values (an unset one is not shown as `NAME=`).
    assert!(
        help.contains(
            "      --table <TABLE>\n          Name of the DynamoDB table (hash key `namespace` S, \
             range key `key` S); required\n          \n          [env: LD_DYNAMODB_TABLE]\n\n"
        ),
        "{help}"
    );
    for name in [
        "LD_DYNAMODB_PREFIX",
        "LD_DYNAMODB_COMPONENT",
        "LD_DYNAMODB_CALL_TIMEOUT",
    ] {
        assert!(help.contains(&format!("[env: {name}]\n")), "{name}: {help}");
    }
    assert!(
        !help.contains("=]") && !help.contains("[default: \"\"]"),
        "{help}"
    );
    // A value set in the environment is not shown either.
    let out = cli
        .command(&["--help"])
        .env("LD_DYNAMODB_COMPONENT", "/some/build.wasm")
        .output()
        .unwrap();
    assert!(!String::from_utf8(out.stdout)
        .unwrap()
        .contains("/some/build.wasm"));
}

#[test]
fn big_segment_commands_read_relay_rows() {
    for prefix in [None, Some("bs")] {
        let cli = Cli::new(prefix);
        cli.json(&["create-table"], "");
        assert_eq!(
            cli.json(&["big-segments", "metadata"], ""),
            json!({ "lastUpToDate": null })
        );
        let hash = ld_dynamodb_host::embed::context_hash("user-7");
        cli.backend.relay_write(
            &cli.table,
            prefix,
            Some(1_700_000_000_123),
            &[(&hash, &["seg.g1"], &["other.g2"])],
        );
        assert_eq!(
            cli.json(&["big-segments", "metadata"], ""),
            json!({ "lastUpToDate": 1_700_000_000_123u64 })
        );
        let expected = json!({ "seg.g1": true, "other.g2": false });
        assert_eq!(
            cli.json(&["big-segments", "membership", "user-7"], ""),
            expected
        );
        assert_eq!(
            cli.json(&["big-segments", "membership", "--hash", &hash], ""),
            expected
        );
        assert_eq!(
            cli.json(&["big-segments", "membership", "someone-else"], ""),
            Value::Null
        );
    }
}

#[test]
fn a_closed_stdout_ends_the_output_quietly() {
    let cli = Cli::new(None);
    cli.json(&["create-table"], "");
    cli.json(&["init", "-"], DATA);
    for _ in 0..3 {
        let mut child = cli
            .command(&["all", "flags"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // The reader goes away before the CLI writes (as `| head -c0` would).
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.is_empty(), "no error line, no panic: {stderr}");
        assert!(out.status.success(), "{:?}", out.status);
    }
}

#[test]
fn an_installed_cli_carries_its_component_and_works_from_any_folder() {
    let cli = Cli::new(None);
    let dir = std::env::temp_dir().join(format!("ld-dynamodb-installed-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("elsewhere")).unwrap();
    // The executable alone, as `cargo install` leaves it, run from another folder.
    let binary = dir.join("ld-dynamodb");
    std::fs::copy(cli_binary(), &binary).unwrap();
    cli.json(&["create-table"], "");
    let template = cli.command(&["status"]);
    let mut installed = Command::new(&binary);
    installed
        .arg("status")
        .env_clear()
        .current_dir(dir.join("elsewhere"));
    for (key, value) in template.get_envs() {
        if let Some(value) = value {
            installed.env(key, value);
        }
    }
    let out = installed.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status, json!({ "initialized": false, "available": true }));
    // --component still names another build; a missing one is a clear error.
    let missing = dir.join("no-such.wasm");
    let out = installed
        .args(["--component", missing.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no-such.wasm"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn credentials_and_region_come_from_the_profile_aws_profile_names() {
    let cli = Cli::new(None);
    let files = SharedFiles::new(
        "profile",
        &format!(
            "[default]\naws_access_key_id = AKIDDEFAULTPROFILE\naws_secret_access_key = wrong-secret\n\n\
             [ld-test]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            cli.backend.access_key_id, cli.backend.secret_access_key
        ),
        "[default]\nregion = us-east-1\n\n[profile ld-test]\nregion = us-east-1\n",
    );
    // The region too comes from the profile.
    let run = |profile: Option<&str>| {
        files
            .command(&cli, profile, &["create-table"])
            .env_remove("AWS_DEFAULT_REGION")
            .output()
            .unwrap()
    };
    // moto checks the signature: only the ld-test profile's key is valid.
    let out = run(Some("ld-test"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(created["created"], json!(true));
    // Without AWS_PROFILE the default profile is used: its key is unknown to moto.
    let out = run(None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("InvalidClientTokenId"), "{stderr}");
    assert!(!stderr.contains("wrong-secret"), "{stderr}");
}

#[test]
fn a_profile_s_role_is_assumed_through_sts() {
    // The default chain asks STS (moto, by AWS_ENDPOINT_URL) for the role's
    // credentials over its own HTTP client, then the CLI signs with them.
    let cli = Cli::new(None);
    let user = Iam::new_user(&cli.backend, "cli-assumer", &["sts:AssumeRole"]);
    let assumer = user.create_key();
    let allowed = new_role(&cli.backend, "cli-allowed", &user.arn, &["dynamodb:*"]);
    let read_only = new_role(
        &cli.backend,
        "cli-read-only",
        &user.arn,
        &["dynamodb:DescribeTable"],
    );
    let files = SharedFiles::new(
        "role",
        &format!(
            "[assumer]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            assumer.access_key_id, assumer.secret_access_key
        ),
        &format!(
            "[profile allowed]\nrole_arn = {allowed}\nsource_profile = assumer\n\n\
             [profile read-only]\nrole_arn = {read_only}\nsource_profile = assumer\n"
        ),
    );
    let run =
        |profile: &str, args: &[&str]| files.command(&cli, Some(profile), args).output().unwrap();
    // The assumer's own key may not touch DynamoDB: only the role's may.
    let out = run("assumer", &["create-table"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!("{} is not authorized", user.arn)),
        "{stderr}"
    );
    let out = run("allowed", &["create-table"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(created["created"], json!(true));
    // The other role's policy decides: it may read the table, not write to
    // it, and moto names the assumed role it refused.
    let out = run("read-only", &["delete", "flags", "f1", "2"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    let role_name = read_only.rsplit('/').next().unwrap();
    assert!(
        stderr.contains(&format!("assumed-role/{role_name}/")),
        "{stderr}"
    );
    assert!(!stderr.contains(&assumer.secret_access_key), "{stderr}");
}

#[test]
fn a_call_past_its_deadline_is_reported_in_words_with_how_far_init_got() {
    use ld_dynamodb_tests::proxy::{Action, Proxy};
    let cli = Cli::new(None);
    cli.json(&["create-table"], "");
    // The first two BatchWriteItem requests pass; the third stalls past the deadline.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut batches = 0;
    let proxy = runtime.block_on(Proxy::start(&cli.backend.endpoint, move |r| {
        if r.op == "BatchWriteItem" {
            batches += 1;
            if batches > 2 {
                return Action::Stall(std::time::Duration::from_secs(20));
            }
        }
        Action::Forward
    }));
    let flags: serde_json::Map<String, Value> = (0..60)
        .map(|i| {
            let key = format!("f{i:02}");
            (key.clone(), json!({ "key": key, "version": 1 }))
        })
        .collect();
    let data = json!({ "flags": flags, "segments": {} }).to_string();
    let started = std::time::Instant::now();
    let stderr = cli.error(
        &[
            "--endpoint",
            &proxy.endpoint,
            "--call-timeout",
            "1.5",
            "init",
            "-",
        ],
        &data,
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(15));
    // The items of the two batches the server answered.
    let written: usize = proxy
        .exchanges()
        .iter()
        .filter(|e| e.request.op == "BatchWriteItem")
        .map(|e| {
            e.request.json()["RequestItems"][&cli.table]
                .as_array()
                .unwrap()
                .len()
        })
        .sum();
    assert!(written > 0 && written < 60, "{written}");
    assert!(
        stderr.contains("init did not finish within the call deadline of 1.5 s")
            && stderr.contains(&format!(
                "({written} of 60 items written; the $inited marker was not written)"
            ))
            && stderr.contains("--call-timeout or LD_DYNAMODB_CALL_TIMEOUT"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("wasm backtrace") && !stderr.contains("wasm trap"),
        "{stderr}"
    );
    // The environment variable sets it too; a bad value is refused by name.
    let mut command = cli.command(&["--endpoint", &proxy.endpoint, "get", "flags", "f00"]);
    command.env("LD_DYNAMODB_CALL_TIMEOUT", "0");
    let out = run_with_stdin(command, "");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a positive number of seconds"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
