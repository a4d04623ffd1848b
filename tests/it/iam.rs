//! The minimal IAM policies of `docs/iam/`, one per part, against moto with
//! IAM checking on (`scripts/emulators.sh` turns it on for the whole server):
//! each part works as a user that holds exactly its policy, sending exactly
//! its actions (recorded by a proxy in front of moto); as a user without any
//! one of them it fails with moto's `AccessDenied` naming that action, in the
//! words the part's user sees, or on the wire where the part hides a failed
//! read (LaunchDarkly's SDK answers defaults). moto authorizes DynamoDB
//! actions against the resource `"*"` only, so the table ARN of each file is
//! checked for its form, not enforced (`support/policies.rs`).

use std::process::{Command, Output};

use launchdarkly_server_sdk::{ContextBuilder, FlagDetailConfig};
use serde_json::{json, Value};

use ld_dynamodb_host::embed::{InitReport, UpsertOutcome};
use ld_dynamodb_host::DataStore;
use ld_dynamodb_tests::policies::{assert_denied, Policy, PolicyUsers, Recorder};
use ld_dynamodb_tests::*;

use crate::edge::Served;
use crate::rust_sdk::sdk_client;
use crate::sync::{cli_in, flag, payload, sync_command, StandIn, Sync};

/// The prefix of the tables' namespaces.
const PREFIX: &str = "iam";

/// A store of the library on `table` as `backend`'s user.
async fn library_store(backend: &Backend, table: &str) -> DataStore {
    backend
        .data_store(table)
        .prefix(PREFIX)
        .build(runtime().clone())
        .await
        .expect("a store is built without a call to DynamoDB")
}

/// The flag of [`loaded_table`], as LaunchDarkly sends it.
fn f1() -> Value {
    flag("f1", 1, true, json!([]))
}

/// A new table with one flag and one segment, as moto's own user.
async fn loaded_table(moto: &Backend, label: &str) -> String {
    let table = unique_table(label);
    let admin = library_store(moto, &table).await;
    assert!(admin.create_table().await.unwrap());
    admin
        .init(&[
            collection("segments", vec![item("s1", 1, json!({}))]),
            collection("features", vec![item("f1", 1, f1())]),
        ])
        .await
        .unwrap();
    table
}

/// The CLI on `table` as `backend`'s user, `stdin` as its input.
fn cli(backend: &Backend, table: &str, args: &[&str], stdin: &str) -> Output {
    run_with_stdin(cli_in(backend, table, PREFIX, args), stdin)
}

/// A CLI command's JSON output, or its one error line.
fn cli_result(out: Output) -> Result<Value, String> {
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).expect("the output is JSON"))
    } else {
        let line = String::from_utf8(out.stderr).unwrap();
        assert_eq!(line.trim_end().lines().count(), 1, "one line: {line}");
        Err(line)
    }
}

/// The JSON outputs of the CLI's `commands` on `table`, run in turn as each
/// user of `routes`; or the first error line.
fn cli_runs(
    routes: &[(Backend, Recorder)],
    table: &str,
    commands: &[&[&str]],
) -> Vec<Result<Vec<Value>, String>> {
    routes
        .iter()
        .map(|(user, _)| {
            commands
                .iter()
                .map(|args| cli_result(cli(user, table, args, "")))
                .collect()
        })
        .collect()
}

/// The users of `policy` (`docs/iam/{policy}.json`), named after `label`.
fn users_of(policy: &str, label: &str) -> (Backend, Policy, PolicyUsers) {
    let moto = Backend::moto();
    let policy = Policy::load(policy);
    let users = PolicyUsers::create(&moto, &policy, label);
    (moto, policy, users)
}

/// Each user of `users` (the exact one first, [`PolicyUsers::all`]),
/// reaching moto through a recorder of its own.
async fn routed(moto: &Backend, users: &PolicyUsers) -> Vec<(Backend, Recorder)> {
    let mut routes = Vec::new();
    for user in users.all() {
        let wire = Recorder::start(moto).await;
        routes.push((wire.route(user), wire));
    }
    routes
}

/// Checks a part's results, run as each user of `routes` in turn: the exact
/// user's is a success (returned) that sent exactly the policy's actions,
/// none denied; each other user was denied its missing action, in the words
/// `text` gives the error the user sees, or, for an action of `hidden` (one
/// whose denial the part keeps from its user), in moto's answer on the wire.
fn check<T: std::fmt::Debug, E>(
    policy: &Policy,
    users: &PolicyUsers,
    routes: &[(Backend, Recorder)],
    results: Vec<Result<T, E>>,
    text: impl Fn(&E) -> String,
    hidden: &[&str],
) -> T {
    assert_eq!(results.len(), routes.len());
    let mut runs = results.into_iter().zip(routes);
    let (exact, (_, wire)) = runs.next().expect("the exact user's run");
    let done = match exact {
        Ok(done) => done,
        Err(e) => panic!("{} is enough: {}", policy.name, text(&e)),
    };
    assert_eq!(
        wire.operations(),
        policy.actions,
        "{}: the part sends exactly the policy's actions",
        policy.name
    );
    assert_eq!(wire.denial(), None, "{}", policy.name);
    for ((action, user), (result, (_, wire))) in users.lacking.iter().zip(runs) {
        match result {
            Err(e) => assert_denied(&text(&e), action, user),
            Ok(_) if hidden.contains(&action.as_str()) => {
                let answer = wire.denial().expect("a denial on the wire");
                assert_denied(&answer, action, user);
            }
            Ok(done) => panic!("{} without {action} worked: {done:?}", policy.name),
        }
    }
    done
}

/// What LaunchDarkly's SDK asks its persistent store, through the library
/// as `user`: initialized, one item, all items of a kind.
async fn sdk_reads(
    user: &Backend,
    table: &str,
) -> Result<(bool, Option<u64>, Vec<(String, u64, bool)>), ld_dynamodb_host::Error> {
    let store = library_store(user, table).await;
    Ok((
        store.is_initialized().await?,
        store.get("features", "f1").await?.map(|i| i.version),
        versions(&store.get_all("features").await?),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sdk_reading_through_the_library_needs_the_store_reader_policy() {
    let (moto, policy, users) = users_of("store-reader", "iam-sdk-read");
    let routes = routed(&moto, &users).await;
    let table = loaded_table(&moto, "iam-reader").await;
    let mut results = Vec::new();
    for (user, _) in &routes {
        results.push(sdk_reads(user, &table).await);
    }
    let read = check(&policy, &users, &routes, results, ToString::to_string, &[]);
    assert_eq!(read, (true, Some(1), vec![("f1".to_string(), 1, false)]));
}

/// What LaunchDarkly's Rust SDK in daemon mode (the table as its persistent
/// store, no cache) answers as `user`: one flag's value and every flag's
/// state for a context.
async fn daemon_sdk_answers(user: &Backend, table: &str) -> (Value, Value) {
    let client = sdk_client(library_store(user, table).await, None, None);
    let context = ContextBuilder::new("u1").build().unwrap();
    let value = client.json_variation(&context, "f1", Value::Null);
    let all = client.all_flags_detail(&context, FlagDetailConfig::new());
    client.close();
    (value, serde_json::to_value(all).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launchdarkly_s_sdk_in_daemon_mode_needs_the_store_reader_policy() {
    let (moto, policy, users) = users_of("store-reader", "iam-daemon");
    let routes = routed(&moto, &users).await;
    let table = loaded_table(&moto, "iam-daemon").await;
    let mut results = Vec::new();
    for (user, _) in &routes {
        results.push(Ok::<_, String>(daemon_sdk_answers(user, &table).await));
    }
    // The SDK answers the default for what it cannot read and keeps the
    // store's error from its caller: a denial shows on the wire only.
    let (value, all) = check(
        &policy,
        &users,
        &routes,
        results,
        Clone::clone,
        &["GetItem", "Query"],
    );
    assert_eq!((value, &all["f1"]), (json!(true), &json!(true)), "{all}");
}

/// What LaunchDarkly's SDK writes, through the library as `user`: an Init
/// (its query of the keys, its puts, deletes and `$inited` marker) and
/// upserts, newer and not (the write's condition); then what the table
/// holds, read as `admin`.
async fn sdk_writes(
    user: &Backend,
    admin: &DataStore,
    table: &str,
) -> Result<(InitReport, [UpsertOutcome; 2], Vec<(String, u64, bool)>), ld_dynamodb_host::Error> {
    let store = library_store(user, table).await;
    let report = store
        .init(&[
            collection("segments", vec![]),
            collection("features", vec![item("f1", 2, json!({}))]),
        ])
        .await?;
    let newer = store
        .upsert("features", "f1", &item("f1", 3, json!({})).item)
        .await?;
    let older = store
        .upsert("features", "f1", &tombstone("f1", 2).item)
        .await?;
    assert!(
        admin.is_initialized().await.unwrap(),
        "the marker is written"
    );
    Ok((
        report,
        [newer, older],
        versions(&admin.get_all("features").await.unwrap()),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sdk_writing_through_the_library_needs_the_store_writer_policy() {
    let (moto, policy, users) = users_of("store-writer", "iam-sdk-write");
    let routes = routed(&moto, &users).await;
    let table = loaded_table(&moto, "iam-writer").await;
    let admin = library_store(&moto, &table).await;
    let mut results = Vec::new();
    for (user, _) in &routes {
        // A row the Init deletes.
        admin
            .upsert("features", "stale", &item("stale", 1, json!({})).item)
            .await
            .unwrap();
        results.push(sdk_writes(user, &admin, &table).await);
    }
    let (report, upserts, features) =
        check(&policy, &users, &routes, results, ToString::to_string, &[]);
    assert_eq!(
        (report.written, report.deleted),
        (1, 2),
        "f1 written; s1 and stale deleted"
    );
    assert_eq!(upserts, [UpsertOutcome::Applied, UpsertOutcome::NotNewer]);
    assert_eq!(features, [("f1".to_string(), 3, false)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_big_segment_store_needs_the_big_segments_reader_policy() {
    let (moto, policy, users) = users_of("big-segments-reader", "iam-bigseg");
    let routes = routed(&moto, &users).await;
    let (table, _) = fresh_store(&moto, "iam-bigseg", Some(PREFIX)).await;
    moto.relay_write(
        &table,
        Some(PREFIX),
        Some(1234),
        &[("hash1", &["seg.g1"], &[])],
    );
    let mut results = Vec::new();
    for (user, _) in &routes {
        let mut store = open_big_segments(user, &table, Some(PREFIX)).await;
        let read = async {
            let metadata = store.get_metadata().await?;
            let members = store.get_membership("hash1").await?;
            Ok::<_, ld_dynamodb_host::Error>((metadata, members))
        };
        results.push(read.await);
    }
    let (metadata, members) = check(&policy, &users, &routes, results, ToString::to_string, &[]);
    assert_eq!(metadata, Some(1234));
    assert_eq!(members.unwrap()[0].segment_ref, "seg.g1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_s_big_segment_commands_need_the_big_segments_reader_policy() {
    let (moto, policy, users) = users_of("big-segments-reader", "iam-cli-bigseg");
    let routes = routed(&moto, &users).await;
    let table = unique_table("iam-cli-bigseg");
    cli_result(cli(&moto, &table, &["create-table"], "")).unwrap();
    moto.relay_write(
        &table,
        Some(PREFIX),
        Some(1234),
        &[("hash1", &["seg.g1"], &[])],
    );
    let results = cli_runs(
        &routes,
        &table,
        &[
            &["big-segments", "metadata"],
            &["big-segments", "membership", "--hash", "hash1"],
        ],
    );
    let read = check(&policy, &users, &routes, results, Clone::clone, &[]);
    assert_eq!(
        read,
        [json!({"lastUpToDate": 1234}), json!({"seg.g1": true})]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_s_create_table_needs_the_create_table_policy() {
    let (moto, policy, users) = users_of("create-table", "iam-create-table");
    let routes = routed(&moto, &users).await;
    let results = routes
        .iter()
        .map(|(user, _)| {
            let table = unique_table("iam-create");
            cli_result(cli(user, &table, &["create-table"], ""))
                .map(|out| (out["created"].clone(), out["table"] == table))
        })
        .collect();
    let created = check(&policy, &users, &routes, results, Clone::clone, &[]);
    assert_eq!(created, (json!(true), true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_s_init_needs_the_cli_init_policy() {
    let (moto, policy, users) = users_of("cli-init", "iam-cli-init");
    let routes = routed(&moto, &users).await;
    let table = loaded_table(&moto, "iam-cli-init").await;
    let data = json!({"flags": {"f2": {"key": "f2", "version": 1}}, "segments": {}}).to_string();
    let results = routes
        .iter()
        .map(|(user, _)| {
            let report = cli_result(cli(user, &table, &["init", "-"], &data))?;
            let all = cli_result(cli(&moto, &table, &["all", "flags"], "")).unwrap();
            Ok::<_, String>((report, all))
        })
        .collect();
    let (report, all) = check(&policy, &users, &routes, results, Clone::clone, &[]);
    assert_eq!(
        (&report["written"], &report["deleted"]),
        (&json!(1), &json!(2)),
        "f2 written; f1 and s1 deleted: {report}"
    );
    assert_eq!(all, json!({"f2": {"key": "f2", "version": 1}}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_s_upsert_and_delete_need_the_cli_upsert_policy() {
    let (moto, policy, users) = users_of("cli-upsert", "iam-cli-upsert");
    let routes = routed(&moto, &users).await;
    let table = loaded_table(&moto, "iam-cli-upsert").await;
    let results = routes
        .iter()
        .enumerate()
        .map(|(n, (user, _))| {
            // A newer version each time (written), then an older one (the
            // condition refuses it; the CLI reads what the table holds).
            let version = 10 + n as u64;
            let newer = json!({"key": "f1", "version": version}).to_string();
            let written = cli_result(cli(user, &table, &["upsert", "flags", "-"], &newer))?;
            let older = cli_result(cli(user, &table, &["delete", "flags", "f1", "2"], ""))?;
            Ok::<_, String>((written, older))
        })
        .collect();
    let (written, older) = check(&policy, &users, &routes, results, Clone::clone, &[]);
    assert_eq!(
        (&written["outcome"], &written["stored"]),
        (&json!("applied"), &json!({"version": 10, "deleted": false}))
    );
    assert_eq!(
        (&older["outcome"], &older["stored"]),
        (
            &json!("not-newer"),
            &json!({"version": 10, "deleted": false})
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_s_reads_need_the_store_reader_policy() {
    let (moto, policy, users) = users_of("store-reader", "iam-cli-read");
    let routes = routed(&moto, &users).await;
    let table = loaded_table(&moto, "iam-cli-read").await;
    let results = cli_runs(
        &routes,
        &table,
        &[&["status"], &["get", "flags", "f1"], &["all", "flags"]],
    );
    let read = check(&policy, &users, &routes, results, Clone::clone, &[]);
    assert_eq!(
        read,
        [
            json!({"initialized": true, "available": true}),
            f1(),
            json!({ "f1": f1() })
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_evaluator_needs_the_evaluator_policy() {
    let (moto, policy, users) = users_of("evaluator", "iam-eval");
    let routes = routed(&moto, &users).await;
    let table = loaded_table(&moto, "iam-eval").await;
    let evaluator = evaluator_component();
    let context = r#"{"kind": "user", "key": "u1"}"#;
    let results = routes
        .iter()
        .map(|(user, _)| {
            let mut command = cli_in(user, &table, PREFIX, &["flags-state", "--context", context]);
            command.env("LD_DYNAMODB_EVALUATOR", &evaluator);
            cli_result(run_with_stdin(command, ""))
        })
        .collect();
    let state = check(&policy, &users, &routes, results, Clone::clone, &[]);
    assert_eq!(
        (&state["$valid"], &state["f1"]),
        (&json!(true), &json!(true)),
        "{state}"
    );
}

/// What `sync` (streaming) logged of its first Init and of two patches (a
/// newer version, then an older one), as `user`; or the line of a failure.
fn synced(user: &Backend, table: &str) -> Result<(String, [String; 2]), String> {
    let mut standin = StandIn::start(&payload());
    let mut sync = Sync::start(sync_command(user, table, &standin, &[]));
    let init = sync.wait_for("of the first Init", |l| {
        l.contains("sync: init done") || l.contains("sync: init failed")
    });
    if !init.contains("sync: init done") {
        return Err(init);
    }
    let newer = flag("banner", 9, false, json!([]));
    standin.send(json!({ "op": "patch", "kind": "flags", "item": newer }));
    let patch = sync.wait_for("of the patch", |l| l.contains(r#"patch flags "banner""#));
    if !patch.ends_with("applied") {
        return Err(patch);
    }
    // An older one: the write's condition keeps the newer version.
    let older = flag("banner", 5, true, json!([]));
    standin.send(json!({ "op": "patch", "kind": "flags", "item": older }));
    let ignored = sync.wait_for("of the older patch", |l| l.contains("version 5"));
    // Nothing else was refused (the SDK's own reads included).
    let (status, lines) = sync.stop();
    assert!(status.success(), "{lines:#?}");
    assert!(
        !lines.iter().any(|l| l.contains("AccessDenied")),
        "{lines:#?}"
    );
    Ok((init, [patch, ignored]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_needs_the_sync_policy() {
    let (moto, policy, users) = users_of("sync", "iam-sync");
    let routes = routed(&moto, &users).await;
    let table = unique_table("iam-sync");
    let created = cli_in(&moto, &table, "sync", &["create-table"])
        .output()
        .unwrap();
    assert!(created.status.success());
    let results = routes
        .iter()
        .map(|(user, _)| synced(user, &table))
        .collect();
    // The SDK reads an item back after the table refused an older version
    // of it; a denied read leaves no line, so it shows on the wire only.
    let (init, patches) = check(
        &policy,
        &users,
        &routes,
        results,
        Clone::clone,
        &["GetItem"],
    );
    assert!(
        init.ends_with("sync: init done: 4 written, 0 deleted, 0 dropped (over the size limit)"),
        "{init}"
    );
    assert!(patches[0].ends_with("version 9: applied"), "{patches:?}");
    assert!(
        patches[1].ends_with("version 5: ignored, the table holds this or a newer version"),
        "{patches:?}"
    );
}

/// What the edge server answers on `/sdk/latest-all`, serving `table` as
/// `user`; its log when the answer is a 503.
fn edge_answer(user: &Backend, table: &str) -> Result<Value, String> {
    let mut command = Command::new(project_root().join(".tools/bin/wasmtime"));
    command
        .env_clear()
        .env("AWS_ACCESS_KEY_ID", &user.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &user.secret_access_key);
    let vars = [
        format!("table={table}"),
        format!("prefix={PREFIX}"),
        format!("region={REGION}"),
        format!("endpoint={}", user.endpoint),
        "auth=none".into(),
    ];
    let served = Served::spawn(command, &vars);
    let (status, _, body) = served.get("/sdk/latest-all", &[]);
    if status == 200 {
        return Ok(serde_json::from_slice(&body).unwrap());
    }
    let answer: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (status, &answer["error"]),
        (
            503,
            &json!("the data store is unavailable; the server's log says why")
        )
    );
    // The cause is in the log, not in the answer.
    assert!(served.logged("AccessDenied"), "{}", served.log());
    Err(served.log())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edge_server_needs_the_edge_server_policy() {
    let (moto, policy, users) = users_of("edge-server", "iam-edge");
    let routes = routed(&moto, &users).await;
    let table = loaded_table(&moto, "iam-edge").await;
    let results = routes
        .iter()
        .map(|(user, _)| edge_answer(user, &table))
        .collect();
    let answer = check(&policy, &users, &routes, results, Clone::clone, &[]);
    assert_eq!(answer["flags"]["f1"]["version"], 1, "{answer}");
}
