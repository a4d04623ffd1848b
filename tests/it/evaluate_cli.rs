//! `ld-dynamodb evaluate` and `ld-dynamodb flags-state` against moto with
//! SigV4 checking on: on the parity data set (`tests/data/parity.json`),
//! the CLI's JSON equals what LaunchDarkly's Node server SDK answers for
//! every flag and every context; bad input exits with 2 and one line.

use std::process::{Command, Output};

use serde_json::{json, Value};

use ld_dynamodb_tests::{evaluator_component, node_oracle, project_root, unique_table, Backend};

use crate::sync::cli_in;

/// The CLI on `table` of `backend` (prefix `cli-eval`) with the evaluator
/// of `scripts/edge-build.sh`.
fn command(backend: &Backend, table: &str, args: &[&str]) -> Command {
    // Checked to be fresh once, not for each of a thousand commands.
    static EVALUATOR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    let mut command = cli_in(backend, table, "cli-eval", args);
    command.env(
        "LD_DYNAMODB_EVALUATOR",
        EVALUATOR.get_or_init(evaluator_component),
    );
    command
}

fn run(backend: &Backend, table: &str, args: &[&str]) -> Output {
    command(backend, table, args).output().unwrap()
}

/// Runs a command that must succeed; its stdout as JSON.
fn json_of(backend: &Backend, table: &str, args: &[&str]) -> Value {
    let out = run(backend, table, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn read(name: &str) -> Value {
    let path = project_root().join("tests/data").join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A new table with the parity data set, loaded by the CLI.
fn parity_table(backend: &Backend) -> String {
    let table = unique_table("cli-eval");
    json_of(backend, &table, &["create-table"]);
    let file = project_root().join("tests/data/parity.json");
    let report = json_of(backend, &table, &["init", file.to_str().unwrap()]);
    assert_eq!(report["dropped"], json!([]));
    table
}

/// The state options the CLI is run with, and the Node SDK's words for them.
const STATES: [(&[&str], &str); 4] = [
    (&[], r#"{}"#),
    (&["--client-side"], r#"{"clientSideOnly": true}"#),
    (&["--with-reasons"], r#"{"withReasons": true}"#),
    (
        &["--with-reasons", "--details-only-for-tracked-flags"],
        r#"{"withReasons": true, "detailsOnlyForTrackedFlags": true}"#,
    ),
];

#[test]
fn every_flag_and_context_answers_what_the_node_server_sdk_answers() {
    let backend = Backend::moto();
    let table = parity_table(&backend);
    let data = read("parity.json");
    let contexts = read("parity-contexts.json");
    let contexts = contexts.as_array().unwrap();
    let mut flags: Vec<String> = data["flags"].as_object().unwrap().keys().cloned().collect();
    flags.push("no-such-flag".into());
    let expected = node_oracle(&json!({
        "data_file": project_root().join("tests/data/parity.json"),
        "contexts": contexts,
        "flags": flags,
        "default": "fallback",
        "options": STATES.iter().map(|(_, node)| serde_json::from_str::<Value>(node).unwrap()).collect::<Vec<_>>(),
    }));
    // Every flag for every context, two processes at a time.
    let pairs: Vec<(usize, usize)> = (0..contexts.len())
        .flat_map(|c| (0..flags.len()).map(move |f| (c, f)))
        .collect();
    let answers: Vec<((usize, usize), Value)> = std::thread::scope(|scope| {
        let workers: Vec<_> = pairs
            .chunks(pairs.len().div_ceil(2))
            .map(|chunk| {
                let (backend, table, flags) = (&backend, &table, &flags);
                scope.spawn(move || {
                    chunk
                        .iter()
                        .map(|&(c, f)| {
                            let context = contexts[c].to_string();
                            let args = [
                                "evaluate",
                                flags[f].as_str(),
                                "--context",
                                &context,
                                "--default",
                                "\"fallback\"",
                            ];
                            ((c, f), json_of(backend, table, &args))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    let mut kinds = std::collections::BTreeSet::new();
    for ((c, f), ours) in &answers {
        let theirs = &expected["details"][c][f];
        let what = format!("{} for {}", flags[*f], contexts[*c]);
        // The Node SDK leaves variationIndex out when no variation was served.
        let mut theirs = theirs.clone();
        theirs
            .as_object_mut()
            .unwrap()
            .entry("variationIndex")
            .or_insert(Value::Null);
        assert_eq!(ours, &theirs, "{what}");
        kinds.insert(ours["reason"]["kind"].as_str().unwrap().to_string());
    }
    assert_eq!(answers.len(), contexts.len() * flags.len());
    // The data set reaches every kind of reason.
    for kind in [
        "OFF",
        "FALLTHROUGH",
        "TARGET_MATCH",
        "RULE_MATCH",
        "PREREQUISITE_FAILED",
        "ERROR",
    ] {
        assert!(kinds.contains(kind), "{kind} in {kinds:?}");
    }
    for (c, context) in contexts.iter().enumerate() {
        let context = context.to_string();
        for (o, (options, _)) in STATES.iter().enumerate() {
            let mut args = vec!["flags-state", "--context", &context];
            args.extend_from_slice(options);
            let state = json_of(&backend, &table, &args);
            assert_eq!(
                state, expected["states"][o][c],
                "flags-state {options:?} for {context}"
            );
        }
        // --mobile: the flags available to mobile keys, as in the full state.
        let mobile = json_of(
            &backend,
            &table,
            &["flags-state", "--context", &context, "--mobile"],
        );
        let all = &expected["states"][0][c];
        let mobile_keys: Vec<&String> = data["flags"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(_, f)| f["clientSideAvailability"]["usingMobileKey"] == true)
            .map(|(k, _)| k)
            .collect();
        assert!(!mobile_keys.is_empty());
        for key in &mobile_keys {
            assert_eq!(mobile[key.as_str()], all[key.as_str()], "{key}");
        }
        assert_eq!(
            mobile["$flagsState"].as_object().unwrap().len(),
            mobile_keys.len()
        );
    }
    eprintln!(
        "{} evaluations and {} states equal the Node server SDK's",
        answers.len(),
        contexts.len() * (STATES.len() + 1)
    );
}

#[test]
fn bad_input_exits_2_with_one_line_and_an_unknown_flag_is_its_default() {
    let backend = Backend::moto();
    let table = parity_table(&backend);
    for (args, says) in [
        (
            vec!["evaluate", "any", "--context", r#"{"kind":"user"}"#],
            "invalid context",
        ),
        (
            vec!["evaluate", "any", "--context", "{not json"],
            "invalid context",
        ),
        (
            vec!["flags-state", "--context", r#"{"kind":"","key":"k"}"#],
            "invalid context",
        ),
        (
            vec![
                "evaluate",
                "any",
                "--context",
                r#"{"key":"k"}"#,
                "--default",
                "nope",
            ],
            "--default",
        ),
    ] {
        let out = run(&backend, &table, &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty());
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(!stderr.contains(&backend.secret_access_key));
    }
    let unknown = json_of(
        &backend,
        &table,
        &["evaluate", "no-such-flag", "--context", r#"{"key":"k"}"#],
    );
    assert_eq!(
        unknown,
        json!({ "value": null, "variationIndex": null,
                "reason": { "kind": "ERROR", "errorKind": "FLAG_NOT_FOUND" } })
    );
    let with_default = json_of(
        &backend,
        &table,
        &[
            "evaluate",
            "no-such-flag",
            "--context",
            r#"{"key":"k"}"#,
            "--default",
            r#"{"a":[1]}"#,
        ],
    );
    assert_eq!(with_default["value"], json!({ "a": [1] }));
    // --client-side and --mobile together are a usage error.
    let out = run(
        &backend,
        &table,
        &[
            "flags-state",
            "--context",
            r#"{"key":"k"}"#,
            "--client-side",
            "--mobile",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    // A missing evaluator names the fix.
    let out = command(
        &backend,
        &table,
        &["evaluate", "f", "--context", r#"{"key":"k"}"#],
    )
    .env(
        "LD_DYNAMODB_EVALUATOR",
        project_root().join("no-such-evaluator.wasm"),
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-evaluator.wasm"));
}
