//! The README's and the `docs/` pages' shell blocks, run as a reader pastes
//! them: each page in a bash session of its own (so a block sees the variables
//! and servers of the page's blocks before it), the pages in the order of
//! [`PAGES`], from the project's root, without the test environment's AWS and
//! project variables. A block that cannot run here is preceded by
//! `<!-- readme-test: skip: why -->`. A page change that breaks a command
//! fails this test. (Processes the blocks start are stopped afterwards.)
//! Also: the README's length and diagram, every relative link of the pages,
//! and the figures and example the pages share with the code.

use std::path::{Path, PathBuf};
use std::process::Command;

use ld_dynamodb_tests::{component_path, user_environment};

/// The pages, in the order their blocks run: the README, then every page of
/// `docs/` (`every_page_of_docs_is_listed` holds the list to the folder).
const PAGES: &[&str] = &[
    "README.md",
    "docs/store.md",
    "docs/cli.md",
    "docs/rust.md",
    "docs/edge.md",
    "docs/evaluator.md",
    "docs/operations.md",
    "docs/layout.md",
];

/// The README's length limit, in lines.
const README_MAX_LINES: usize = 150;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(page: &str) -> String {
    std::fs::read_to_string(root().join(page)).unwrap_or_else(|e| panic!("{page}: {e}"))
}

/// The `sh` blocks: (line of the fence, the block, the skip reason if any).
fn shell_blocks(text: &str) -> Vec<(usize, String, Option<String>)> {
    let lines: Vec<&str> = text.lines().collect();
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

/// The text outside fenced code blocks, line by line (a line inside a block
/// is left empty, so line numbers stay those of the page).
fn prose(text: &str) -> Vec<&str> {
    let mut fenced = false;
    text.lines()
        .map(|line| {
            if line.trim_start().starts_with("```") {
                fenced = !fenced;
                ""
            } else if fenced {
                ""
            } else {
                line
            }
        })
        .collect()
}

/// What one page's session printed: (stdout, stderr).
struct Session {
    stdout: String,
    stderr: String,
}

/// Runs the page's blocks that are not skipped in one bash session; `None`
/// when every block is skipped.
fn run_page(page: &str) -> Option<Session> {
    let blocks = shell_blocks(&read(page));
    let mut script = String::from("set -euo pipefail\n");
    let mut run = Vec::new();
    for (line, block, skip) in &blocks {
        if let Some(reason) = skip {
            assert!(
                !reason.is_empty(),
                "{page}: the skip marker before line {line} gives no reason"
            );
            continue;
        }
        script.push_str(&format!(
            "echo '== {page} line {line}' >&2\n{block}\necho '== done {line}' >&2\n"
        ));
        run.push(*line);
    }
    if run.is_empty() {
        return None;
    }
    // A session of its own, so every process a block leaves running is stopped.
    let mut command = Command::new("setsid");
    command
        .args(["bash", "-c", &script])
        .current_dir(root())
        .stdin(std::process::Stdio::null());
    user_environment(&mut command);
    // Into files, not pipes: a server a block leaves running keeps its
    // inherited output open.
    let dir = std::env::temp_dir().join(format!(
        "ld-docs-{}-{}",
        std::process::id(),
        page.replace('/', "-")
    ));
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
        "a block of {page} failed:\n{stderr}\n{stdout}"
    );
    for line in run {
        assert!(
            stderr.contains(&format!("== done {line}")),
            "{page}: block at line {line}: {stderr}"
        );
    }
    Some(Session { stdout, stderr })
}

#[test]
fn every_shell_block_runs_as_written_or_says_why_not() {
    let mut walkthrough = None;
    let mut pages_run = 0;
    for page in PAGES {
        if let Some(session) = run_page(page) {
            pages_run += 1;
            if *page == "docs/cli.md" {
                walkthrough = Some(session);
            }
        }
    }
    assert!(pages_run >= 3, "{pages_run} pages with blocks that run");
    let Session { stdout, stderr } = walkthrough.expect("docs/cli.md's walkthrough runs");
    // What the walkthrough promises: the example's values, and the edge
    // server's flag.
    assert!(
        stdout.contains(r#""value":"Try the new checkout""#),
        "{stdout}\n{stderr}"
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

/// A shell block under another name (`bash`, `shell`, `console`) would escape
/// the test above: every shell block is an `sh` block.
#[test]
fn every_shell_block_is_marked_sh() {
    for page in PAGES {
        for (n, line) in read(page).lines().enumerate() {
            let fence = line.trim();
            assert!(
                !["```bash", "```shell", "```console", "```zsh"].contains(&fence),
                "{page}:{}: mark shell blocks ```sh, so that they run",
                n + 1
            );
        }
    }
}

#[test]
fn every_page_of_docs_is_listed() {
    let mut found: Vec<String> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".md"))
        .map(|name| format!("docs/{name}"))
        .collect();
    found.sort();
    let mut listed: Vec<String> = PAGES[1..].iter().map(|p| p.to_string()).collect();
    listed.sort();
    assert_eq!(listed, found, "PAGES lists every page of docs/");
}

#[test]
fn the_readme_is_short_and_has_the_diagram_of_the_parts() {
    let readme = read("README.md");
    let lines = readme.lines().count();
    assert!(
        lines <= README_MAX_LINES,
        "README.md has {lines} lines, more than {README_MAX_LINES}: move the detail to docs/"
    );
    let start = readme
        .find("```mermaid\n")
        .expect("a Mermaid diagram in the README")
        + "```mermaid\n".len();
    let diagram = &readme[start..start + readme[start..].find("```").expect("a closed diagram")];
    for part in [
        "LaunchDarkly",
        "sync",
        "Relay Proxy",
        "DynamoDB table",
        "store component",
        "evaluator component",
        "edge flag server",
        "SDKs",
        "host library",
        "CLI",
    ] {
        assert!(
            diagram.contains(part),
            "the diagram lacks {part}:\n{diagram}"
        );
    }
}

/// The anchor GitHub gives a heading: lower case, punctuation but `-` and
/// `_` dropped, spaces as `-`.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a Markdown file's headings.
fn anchors(text: &str) -> Vec<String> {
    prose(text)
        .into_iter()
        .filter_map(|line| {
            let title = line.trim_start_matches('#');
            (line.starts_with('#') && title.starts_with(' ')).then(|| slug(title))
        })
        .collect()
}

/// The targets of a page's inline links, outside code: (line, target).
fn link_targets(text: &str) -> Vec<(usize, String)> {
    let mut targets = Vec::new();
    for (n, line) in prose(text).into_iter().enumerate() {
        let mut rest = line;
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let end = after.find(')').unwrap_or(after.len());
            targets.push((n + 1, after[..end].to_string()));
            rest = &after[end..];
        }
    }
    targets
}

#[test]
fn every_relative_link_resolves() {
    let mut checked = 0;
    for page in PAGES {
        let text = read(page);
        let dir = Path::new(page).parent().unwrap();
        for (line, target) in link_targets(&text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (path, anchor) = match target.split_once('#') {
                Some((path, anchor)) => (path, Some(anchor)),
                None => (target.as_str(), None),
            };
            let file = if path.is_empty() {
                root().join(page)
            } else {
                root().join(dir).join(path)
            };
            assert!(
                file.exists(),
                "{page}:{line}: the link {target} names {}, which does not exist",
                file.display()
            );
            if let Some(anchor) = anchor {
                let heading_text = std::fs::read_to_string(&file).unwrap();
                assert!(
                    anchors(&heading_text).iter().any(|a| a == anchor),
                    "{page}:{line}: the link {target}: no heading of {} has the anchor #{anchor}",
                    file.display()
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 20, "{checked} links checked");
}

/// The Rust example of the flag evaluator in docs/evaluator.md is the doctest
/// of `host-example/src/evaluator.rs` (which `cargo test` compiles), line for
/// line.
#[test]
fn the_evaluator_example_is_the_doctest_that_compiles() {
    let page = read("docs/evaluator.md");
    let start = page
        .find("```rust\nlet runtime = EvaluatorRuntime::load(")
        .expect("docs/evaluator.md's evaluator example")
        + "```rust\n".len();
    let example = &page[start..start + page[start..].find("```").unwrap()];
    let source = std::fs::read_to_string(root().join("host-example/src/evaluator.rs")).unwrap();
    let doctest: String = source
        .lines()
        .filter_map(|l| l.strip_prefix("//!"))
        .map(|l| format!("{}\n", l.strip_prefix(' ').unwrap_or(l)))
        .collect();
    assert!(
        doctest.contains(example),
        "docs/evaluator.md's example is not the doctest of host-example/src/evaluator.rs:\n{example}"
    );
}

/// The digits of a figure written with thousands separators (`369,520`).
fn figure(text: &str) -> u64 {
    text.replace(',', "")
        .parse()
        .unwrap_or_else(|_| panic!("{text:?}"))
}

/// docs/store.md's component size, gzipped size and budget are those of the
/// built component (`scripts/build.sh` makes it and prints the first two, and
/// holds the budget).
#[test]
fn the_store_page_gives_the_built_component_s_size() {
    let page = read("docs/store.md");
    let row = page
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
        "docs/store.md's size row (bytes, budget) against {}: {row}",
        component.display()
    );
    // Two builds of the same sources have the same size but may order their
    // functions differently (seen: 159,388 and 159,395 bytes gzipped), which
    // gzip sees: the gzipped figure is held to within 0.1%.
    let (said, built) = (before("gzipped") as f64, gzip.stdout.len() as f64);
    assert!(
        (said - built).abs() <= built / 1000.0,
        "docs/store.md says {said} bytes gzipped, the build gives {built}: {row}"
    );
}
