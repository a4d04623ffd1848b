//! The README's shell blocks, run as a reader pastes them: in order, in one
//! bash session (so a block sees the variables and servers of the blocks
//! before it), from the project's root, without the test environment's AWS
//! and project variables. A block that cannot run here is preceded by
//! `<!-- readme-test: skip: why -->`. A README change that breaks a command
//! fails this test. (Processes the blocks start are stopped afterwards.)

use std::path::PathBuf;
use std::process::Command;

use ld_dynamodb_tests::{component_path, user_environment};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `sh` blocks: (line of the fence, the block, the skip reason if any).
fn shell_blocks(readme: &str) -> Vec<(usize, String, Option<String>)> {
    let lines: Vec<&str> = readme.lines().collect();
    let mut blocks = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim() == "```sh" {
            let skip = lines[..i]
                .iter()
                .rev()
                .find(|l| !l.trim().is_empty())
                .and_then(|l| l.trim().strip_prefix("<!-- readme-test: skip:"))
                .map(|reason| reason.trim_end_matches("-->").trim().to_string());
            let end = (i + 1..lines.len())
                .find(|&j| lines[j].trim() == "```")
                .expect("a closed block");
            blocks.push((i + 1, lines[i + 1..end].join("\n"), skip));
            i = end;
        }
        i += 1;
    }
    blocks
}

#[test]
fn every_shell_block_runs_as_written_or_says_why_not() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let blocks = shell_blocks(&readme);
    let mut script = String::from("set -euo pipefail\n");
    let mut run = 0;
    for (line, block, skip) in &blocks {
        if let Some(reason) = skip {
            assert!(
                !reason.is_empty(),
                "the skip marker before line {line} gives no reason"
            );
            continue;
        }
        script.push_str(&format!(
            "echo '== README line {line}' >&2\n{block}\necho '== done {line}' >&2\n"
        ));
        run += 1;
    }
    assert!(run >= 4, "{run} blocks run");
    // A session of its own, so every process a block leaves running is stopped.
    let mut command = Command::new("setsid");
    command
        .args(["bash", "-c", &script])
        .current_dir(root())
        .stdin(std::process::Stdio::null());
    user_environment(&mut command);
    // Into files, not pipes: a server a block leaves running keeps its
    // inherited output open.
    let dir = std::env::temp_dir().join(format!("ld-readme-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut child = command
        .stdout(std::fs::File::create(dir.join("stdout")).unwrap())
        .stderr(std::fs::File::create(dir.join("stderr")).unwrap())
        .spawn()
        .unwrap();
    let session = child.id();
    let status = child.wait().unwrap();
    let _ = Command::new("kill")
        .args(["-s", "TERM", "--", &format!("-{session}")])
        .status();
    let stdout = std::fs::read_to_string(dir.join("stdout")).unwrap();
    let stderr = std::fs::read_to_string(dir.join("stderr")).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        status.success(),
        "a README block failed:\n{stderr}\n{stdout}"
    );
    for (line, _, skip) in &blocks {
        if skip.is_none() {
            assert!(
                stderr.contains(&format!("== done {line}")),
                "block at line {line}: {stderr}"
            );
        }
    }
    // What the walkthrough promises: the example's values, and the edge
    // server's flag.
    assert!(
        stdout.contains(r#""value":"Try the new checkout""#),
        "{stdout}"
    );
    assert!(stdout.contains(r#""key":"checkout-banner""#), "{stdout}");
    // The client-side evaluation, with only the client-side flags.
    assert!(
        stdout.contains(
            r#"{"banner-text":{"value":"Hello","variation":1,"version":7},"new-checkout":{"value":true,"variation":0,"version":3}}"#
        ),
        "{stdout}"
    );
}

/// The README's Rust example of the flag evaluator is the doctest of
/// `host-example/src/evaluator.rs` (which `cargo test` compiles), line for line.
#[test]
fn the_evaluator_example_is_the_doctest_that_compiles() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let start = readme
        .find("```rust\nlet runtime = EvaluatorRuntime::load(")
        .expect("the README's evaluator example")
        + "```rust\n".len();
    let example = &readme[start..start + readme[start..].find("```").unwrap()];
    let source = std::fs::read_to_string(root().join("host-example/src/evaluator.rs")).unwrap();
    let doctest: String = source
        .lines()
        .filter_map(|l| l.strip_prefix("//!"))
        .map(|l| format!("{}\n", l.strip_prefix(' ').unwrap_or(l)))
        .collect();
    assert!(
        doctest.contains(example),
        "the README's example is not the doctest of host-example/src/evaluator.rs:\n{example}"
    );
}

/// The digits of a figure written with thousands separators (`369,520`).
fn figure(text: &str) -> u64 {
    text.replace(',', "")
        .parse()
        .unwrap_or_else(|_| panic!("{text:?}"))
}

/// The README's component size, gzipped size and budget are those of the
/// built component (`scripts/build.sh` makes it and prints the first two, and
/// holds the budget).
#[test]
fn the_readme_gives_the_built_component_s_size() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let row = readme
        .lines()
        .find(|l| l.starts_with("| size | "))
        .expect("the component's size row");
    let words: Vec<&str> = row.split_whitespace().collect();
    let before = |word: &str| {
        let at = words.iter().position(|w| w.starts_with(word)).unwrap();
        figure(words[at - 1])
    };
    let budget = row
        .split("fails above the ")
        .nth(1)
        .and_then(|rest| rest.split("-byte budget").next())
        .expect("the budget");

    let component = component_path();
    let size = std::fs::metadata(&component).unwrap().len();
    let gzip = Command::new("gzip")
        .arg("-9c")
        .arg(&component)
        .output()
        .unwrap();
    assert!(gzip.status.success());
    let build = std::fs::read_to_string(root().join("scripts/build.sh")).unwrap();
    let max_size = build
        .lines()
        .find_map(|l| l.strip_prefix("max_size="))
        .expect("the budget in scripts/build.sh");
    assert_eq!(
        (before("bytes,"), figure(budget)),
        (size, figure(max_size)),
        "README's size row (bytes, budget) against {}: {row}",
        component.display()
    );
    // Two builds of the same sources have the same size but may order their
    // functions differently (seen: 159,388 and 159,395 bytes gzipped), which
    // gzip sees: the gzipped figure is held to within 0.1%.
    let (said, built) = (before("gzipped") as f64, gzip.stdout.len() as f64);
    assert!(
        (said - built).abs() <= built / 1000.0,
        "README says {said} bytes gzipped, the build gives {built}: {row}"
    );
}
