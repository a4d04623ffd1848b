//! Versioned WIT: each WIT package of this repository is recorded here by
//! version with a digest of its text, so a package whose text changes under
//! the same version fails this test (a host built against the recorded text
//! would break on the new one). CHANGELOG.md names every recorded version,
//! and every reference to a package (`ld-dynamodb:store/types@...` in a WIT
//! world, a script, a test) names its current version. Needs no emulator and
//! no built component.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The WIT files of this repository, each holding one package.
const PACKAGE_FILES: &[&str] = &[
    "wit/store.wit",
    "evaluator/wit/evaluator.wit",
    "edge-server/wit/world.wit",
];

/// Every version of each package since versions were recorded, with the
/// SHA-256 of its text as [`digest`] normalizes it. A new version adds a line
/// (the failure message gives it); a recorded line never changes.
const RECORDED: &[(&str, &str, &str)] = &[
    (
        "ld-dynamodb:store",
        "0.1.1",
        "a3104f09d1c3ac1a2e479004484ed2c41d1c69cb4a490872534dd431b451031e",
    ),
    (
        "ld-dynamodb:store",
        "0.2.0",
        "3875dae630a4d076f08f656a153bb41866f2f9667b2981999e41bbf27e6eeeb6",
    ),
    (
        "ld-dynamodb:evaluation",
        "0.2.2",
        "d9e643ec457220046c86c21da7a146abb8c540bf8cc10ce53b8628f3a77dcfd4",
    ),
    (
        "ld-dynamodb:evaluation",
        "0.3.0",
        "5d1576fb198fbadd8e76cd59a1b2f4c81aa3ae823eed769ec2bc262a12a20750",
    ),
    (
        "ld-dynamodb:edge-flags",
        "0.2.2",
        "23f391c7b9d1539895cb8ce0f0005edcabeb78b6a2aa5a005abf1d235e9e1490",
    ),
    (
        "ld-dynamodb:evaluation",
        "0.2.3",
        "72f9e48d5846f096148eda06c9f31a69dc182b3cfad073317885af4161ad54ed",
    ),
    (
        "ld-dynamodb:edge-flags",
        "0.2.3",
        "b95ee77066c48c65d9bab098949b890d12e629938c438bdf3e13c6b5e94ecbe9",
    ),
];

/// Folders whose files may name a package version (WIT worlds, host and
/// guest code, scripts, tests, benchmarks). Documents that tell the history
/// (README.md, docs/, CHANGELOG.md) are not among them.
const REFERENCING: &[&str] = &[
    "wit",
    "src",
    "evaluator/wit",
    "evaluator/src",
    "edge-server/wit",
    "edge-server/src",
    "host-example/src",
    "host-example/examples",
    "tests/it",
    "tests/support",
    "tests/jco",
    "tests/browser",
    "bench/src",
    "scripts",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate is in the workspace")
        .to_path_buf()
}

/// A package's name and version from its `package ns:name@version;` line.
fn package_of(text: &str) -> Option<(&str, &str)> {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("package "))?;
    let id = line.strip_prefix("package ")?.trim_end_matches(';').trim();
    id.split_once('@')
}

/// The SHA-256 (hex) of the package's text without comments and with runs of
/// white space as one space: a change in what a host sees (a type, a field, a
/// function, a world's imports) changes it; a doc comment or a re-indent does not.
fn digest(text: &str) -> String {
    let code: Vec<&str> = text
        .lines()
        .map(|l| l.find("//").map_or(l, |at| &l[..at]))
        .flat_map(str::split_whitespace)
        .collect();
    Sha256::digest(code.join(" ").as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Checks the text of the package in `file` against the recorded versions.
fn check(file: &str, text: &str, recorded: &[(&str, &str, &str)]) -> Result<(), String> {
    let (name, version) =
        package_of(text).ok_or_else(|| format!("{file} has no `package ns:name@version;` line"))?;
    let actual = digest(text);
    let line = format!("(\"{name}\", \"{version}\", \"{actual}\")");
    match recorded
        .iter()
        .find(|(n, v, _)| *n == name && *v == version)
    {
        None => Err(format!(
            "{file}: {name}@{version} is a new version: record it in CHANGELOG.md and add \
             {line} to RECORDED in tests/it/wit_versions.rs"
        )),
        Some((_, _, expected)) if *expected != actual => Err(format!(
            "{file} changed, but its package is still {name}@{version}, recorded with another \
             text: a host built against it would break. Give the package a new version (in 0.x \
             a minor step, such as 0.1.x -> 0.2.0, for anything that breaks a host: a field or \
             case added to or removed from a record or variant, a function changed or removed; \
             a patch step for a new function or interface only), make every reference to it \
             follow, record the version in CHANGELOG.md and add {line} to RECORDED"
        )),
        Some(_) => Ok(()),
    }
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(root().join(relative))
        .unwrap_or_else(|e| panic!("cannot read {relative}: {e}"))
}

/// The current version of each package, by name.
fn current_versions() -> Vec<(String, String)> {
    PACKAGE_FILES
        .iter()
        .map(|file| {
            let text = read(file);
            let (name, version) = package_of(&text).expect("a package line");
            (name.to_string(), version.to_string())
        })
        .collect()
}

#[test]
fn every_wit_package_is_recorded_under_its_version() {
    let failures: Vec<String> = PACKAGE_FILES
        .iter()
        .filter_map(|file| check(file, &read(file), RECORDED).err())
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn a_changed_package_under_the_same_version_fails_and_says_what_to_do() {
    let text = read("wit/store.wit");
    let (name, version) = package_of(&text).unwrap();
    let recorded = [(name, version, digest(&text).leak() as &str)];
    assert_eq!(check("wit/store.wit", &text, &recorded), Ok(()));

    // A field added to the config record: what broke hosts under 0.1.0.
    let grown = text.replacen(
        "        table: string,",
        "        table: string,\n        init-extra-ms: option<u32>,",
        1,
    );
    assert_ne!(grown, text);
    let failure = check("wit/store.wit", &grown, &recorded).unwrap_err();
    assert!(
        failure.contains(&format!("still {name}@{version}"))
            && failure.contains("new version")
            && failure.contains("CHANGELOG.md")
            && failure.contains(&digest(&grown)),
        "{failure}"
    );

    // A doc comment or a re-indent is not an interface change.
    let reworded = text.replacen(
        "/// Name of an existing table",
        "/// The name of a table",
        1,
    );
    assert_ne!(reworded, text);
    assert_eq!(check("wit/store.wit", &reworded, &recorded), Ok(()));

    // A new version that is not recorded yet gets its line.
    let bumped = grown.replacen(&format!("@{version};"), "@9.9.9;", 1);
    let failure = check("wit/store.wit", &bumped, &recorded).unwrap_err();
    assert!(
        failure.contains(&format!("{name}@9.9.9 is a new version"))
            && failure.contains(&digest(&bumped)),
        "{failure}"
    );
}

#[test]
fn the_changelog_names_every_recorded_version() {
    let changelog = read("CHANGELOG.md");
    let missing: Vec<String> = RECORDED
        .iter()
        .map(|(name, version, _)| format!("{name}@{version}"))
        .filter(|id| !changelog.contains(id.as_str()))
        .collect();
    assert!(missing.is_empty(), "CHANGELOG.md does not name {missing:?}");
}

/// Files under `dir` (recursively), skipping what no one edits by hand.
fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        // This file's own examples name versions on purpose.
        if name == "deps" || name == "node_modules" || name == "target" || name == "wit_versions.rs"
        {
            continue;
        }
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// The `ld-dynamodb:<package>[/<interface>]@<version>` references in `text`.
fn references(text: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("ld-dynamodb:") {
        rest = &rest[at + "ld-dynamodb:".len()..];
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || "-/@.".contains(c)))
            .unwrap_or(rest.len());
        let id = rest[..end].trim_end_matches('.');
        if let Some((path, version)) = id.split_once('@') {
            let package = path.split('/').next().unwrap_or(path);
            found.push((format!("ld-dynamodb:{package}"), version.to_string()));
        }
    }
    found
}

#[test]
fn every_reference_names_the_current_version() {
    let current = current_versions();
    let mut files = Vec::new();
    for dir in REFERENCING {
        files_under(&root().join(dir), &mut files);
    }
    let mut stale = Vec::new();
    for file in &files {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for (package, version) in references(&text) {
            let Some((_, now)) = current.iter().find(|(name, _)| *name == package) else {
                stale.push(format!("{}: unknown package {package}", file.display()));
                continue;
            };
            if *now != version {
                stale.push(format!(
                    "{}: {package}@{version}, but the package is at {now}",
                    file.display()
                ));
            }
        }
    }
    assert!(stale.is_empty(), "{}", stale.join("\n"));
}

#[test]
fn references_are_found_with_their_package_and_version() {
    assert_eq!(
        references("import ld-dynamodb:store/data-store@0.1.1;\n`ld-dynamodb:evaluation@0.2.2`."),
        vec![
            ("ld-dynamodb:store".to_string(), "0.1.1".to_string()),
            ("ld-dynamodb:evaluation".to_string(), "0.2.2".to_string()),
        ]
    );
}
