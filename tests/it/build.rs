//! The build stays lean: the CLI alone (`scripts/build.sh`: `cargo build
//! --workspace --bin ld-dynamodb`) and the whole workspace (`cargo test
//! --workspace`) resolve every dependency of the CLI with the same features, so
//! the two share one build of wasmtime, rustls and the AWS crates instead of
//! compiling a second copy of each; the library's manifest asks for no feature
//! on the workspace's behalf.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use ld_dynamodb_tests::{project_root, user_environment};

/// The standard output of `command`, which must succeed (its error output
/// is the failure's message).
fn stdout_of(command: &mut Command) -> String {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Each package of `cargo tree ARGS` with the feature sets it is built with
/// (one per build context: a package can be built for build scripts too).
fn features(args: &[&str]) -> BTreeMap<String, BTreeSet<String>> {
    let out = stdout_of(
        user_environment(&mut Command::new("cargo"))
            .arg("tree")
            .args(args)
            .args([
                "--offline",
                "--locked",
                "--prefix",
                "none",
                "--format",
                "{p}|{f}",
            ])
            .current_dir(project_root()),
    );
    let mut packages = BTreeMap::<String, BTreeSet<String>>::new();
    for line in out.lines() {
        let Some((package, features)) = line.split_once('|') else {
            continue;
        };
        // "name vX.Y.Z (/path) (*)" → "name vX.Y.Z".
        let package = package.split(" (").next().unwrap().to_string();
        let features = features.trim_end_matches(" (*)").to_string();
        packages.entry(package).or_default().insert(features);
    }
    packages
}

#[test]
fn the_cli_alone_and_the_workspace_build_its_dependencies_alike() {
    // The CLI's dependencies, then their features as `scripts/build.sh`
    // resolves them (no dev-dependencies: it builds a binary) and as the tests
    // do.
    let cli = features(&["-p", "ld-dynamodb-host", "-e", "normal,build"]);
    let built = features(&["--workspace", "-e", "normal,build"]);
    let tested = features(&["--workspace", "-e", "normal,build,dev"]);
    assert!(cli.keys().any(|p| p.starts_with("wasmtime v")), "{cli:?}");
    let differing: Vec<String> = cli
        .keys()
        .filter(|package| built.get(*package) != tested.get(*package))
        .map(|package| {
            format!(
                "{package}: the CLI's build {:?}, the tests' {:?}",
                built.get(package),
                tested.get(package)
            )
        })
        .collect();
    assert!(
        differing.is_empty(),
        "a dev-dependency turns on features the CLI's build lacks (a second build of each):\n{}",
        differing.join("\n")
    );
}

/// The core instances one instantiation of `component` creates: its
/// `(core instance (instantiate ..))` entries as `wasm-tools print` lists
/// them (each nested component of a composition is instantiated once, so
/// nesting counts each of its modules once too).
fn core_instances(component: &std::path::Path) -> usize {
    stdout_of(
        Command::new(project_root().join(".tools/venv/bin/wasm-tools"))
            .arg("print")
            .arg(component),
    )
    .lines()
    .filter(|line| line.trim_start().starts_with("(core instance") && line.contains("(instantiate"))
    .count()
}

/// The edge server and the flag evaluator link the store crate (and the
/// edge server the evaluator crate) into one core module each, composed with
/// nothing: 3 core instances per request or evaluator (the module, and the
/// shim and fixup modules `wasm-tools component new` adds for its imports),
/// where the compositions of a component per crate made 9 and 6 (issue 29:
/// at most 8 per edge request).
#[test]
fn the_edge_server_and_the_flag_evaluator_are_one_core_module_each() {
    use ld_dynamodb_tests::{edge_component, evaluator_component};
    assert_eq!(core_instances(&edge_component()), 3, "edge-flags.wasm");
    assert_eq!(
        core_instances(&evaluator_component()),
        3,
        "flag-evaluator.wasm"
    );
}

/// The environment of the shell that ran `cargo test`: the one cargo itself
/// was started with (this process's parent), nothing cargo adds for a test.
fn shell(command: &mut Command) -> &mut Command {
    let parent = std::os::unix::process::parent_id();
    let environ = std::fs::read(format!("/proc/{parent}/environ"))
        .unwrap_or_else(|e| panic!("the environment of cargo (process {parent}): {e}"));
    command.env_clear();
    for entry in environ.split(|b| *b == 0).filter(|e| !e.is_empty()) {
        let entry = String::from_utf8_lossy(entry);
        if let Some((name, value)) = entry.split_once('=') {
            command.env(name, value);
        }
    }
    command
}

/// `scripts/build.sh`'s build of the CLI in `command`'s environment: the
/// crates cargo compiled again (none when the build was current).
fn rebuilt(command: &mut Command) -> Vec<String> {
    let out = command
        .args([
            "build",
            "--workspace",
            "--bin",
            "ld-dynamodb",
            "--offline",
            "--locked",
            "-v",
        ])
        .current_dir(project_root())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    stderr
        .lines()
        .map(str::trim)
        .filter(|line| line.starts_with("Compiling ") || line.starts_with("Dirty "))
        .map(str::to_string)
        .collect()
}

/// A cargo build run by a test (`user_environment`) and one run from a shell
/// leave each other current: the variables cargo sets for a test process
/// (`OUT_DIR`, `CARGO_MANIFEST_DIR`, ...) are watched by ring's build script,
/// so passing one on made every `scripts/test.sh` run compile ring, rustls,
/// wasmtime's HTTP and LaunchDarkly's SDK twice (a run beside two CPU hogs
/// took 424 to 530 s so, and 235 to 270 s since).
#[test]
fn a_build_by_a_test_and_one_from_a_shell_share_their_artifacts() {
    rebuilt(user_environment(&mut Command::new("cargo")));
    let from_shell = rebuilt(shell(&mut Command::new("cargo")));
    assert!(
        from_shell.is_empty(),
        "a shell's build after a test's compiled again:\n{}",
        from_shell.join("\n")
    );
}
