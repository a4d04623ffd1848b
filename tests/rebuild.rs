//! `cargo build` and `cargo test` never embed or load an old guest: the build
//! scripts (`host-example/build.rs`, `tests/build.rs`) watch every source a
//! guest is built from, and a changed source rebuilds the component they hand
//! on. A test binary of its own: it changes a source's modification time,
//! which the other tests, running beside each other, would see as an edit.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use ld_dynamodb_host::embed::EMBEDDED_COMPONENT;
use ld_dynamodb_tests::{depinfo_sources, project_root};

#[path = "../scripts/guests.rs"]
mod guests;

/// One test at a time: a rebuild rewrites the dep-info the other one reads.
static BUILD: Mutex<()> = Mutex::new(());

/// The paths a build script of `package` declared as its inputs, in its most
/// recent run (the `output` Cargo keeps in `target/debug/build/`).
fn watched_by(package: &str) -> Vec<PathBuf> {
    let build = project_root().join("target/debug/build");
    let output = std::fs::read_dir(&build)
        .unwrap()
        .filter_map(|entry| {
            let path = entry.ok()?.path().join("output");
            let name = path.parent()?.file_name()?.to_str()?.to_string();
            let modified = std::fs::metadata(&path).ok()?.modified().ok()?;
            name.strip_prefix(package)?
                .strip_prefix('-')
                .map(|_| (modified, path))
        })
        .max()
        .map(|(_, path)| path)
        .unwrap_or_else(|| panic!("no run of {package}'s build script in {}", build.display()));
    std::fs::read_to_string(&output)
        .unwrap()
        .lines()
        .filter_map(|line| line.strip_prefix("cargo:rerun-if-changed="))
        .filter_map(|path| Path::new(path).canonicalize().ok())
        .collect()
}

/// The project's files among the inputs of the guest whose dep-info is
/// `depinfo` (under `target/guests/wasm32-unknown-unknown/release/`), that
/// none of `watched` covers.
fn unwatched(depinfo: &str, watched: &[PathBuf]) -> Vec<PathBuf> {
    let root = project_root().canonicalize().unwrap();
    let depfile = root
        .join("target/guests/wasm32-unknown-unknown/release")
        .join(depinfo);
    let sources = depinfo_sources(&depfile);
    assert!(!sources.is_empty(), "no dep-info in {}", depfile.display());
    sources
        .into_iter()
        .filter(|source| source.starts_with(&root) && !source.starts_with(root.join("target")))
        .filter(|source| !watched.iter().any(|w| source.starts_with(w)))
        .collect()
}

#[test]
fn the_build_scripts_watch_every_source_of_the_guests() {
    let _build = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let host = watched_by("ld-dynamodb-host");
    assert_eq!(
        unwatched("ld_dynamodb_store.d", &host),
        Vec::<PathBuf>::new()
    );
    let tests = watched_by("ld-dynamodb-tests");
    for guest in [
        "ld_dynamodb_store.d",
        "ld_dynamodb_evaluator.d",
        "ld_dynamodb_edge_flags.d",
    ] {
        assert_eq!(unwatched(guest, &tests), Vec::<PathBuf>::new(), "{guest}");
    }
    // The scripts that build them, and the manifests.
    for (watched, files) in [
        (
            &host,
            &["scripts/build.sh", "scripts/component.sh", "Cargo.lock"][..],
        ),
        (
            &tests,
            &["scripts/edge-build.sh", "scripts/build.sh", "Cargo.lock"][..],
        ),
    ] {
        for file in files {
            let file = project_root().join(file).canonicalize().unwrap();
            assert!(
                watched.iter().any(|w| file.starts_with(w)),
                "{}",
                file.display()
            );
        }
    }
}

/// Sets the modification time of `path`, and puts it back when dropped.
struct Touched {
    path: PathBuf,
    was: SystemTime,
}

impl Touched {
    fn now(path: PathBuf) -> Touched {
        let file = std::fs::File::options().append(true).open(&path).unwrap();
        let was = file.metadata().unwrap().modified().unwrap();
        file.set_modified(SystemTime::now()).unwrap();
        Touched { path, was }
    }
}

impl Drop for Touched {
    fn drop(&mut self) {
        let file = std::fs::File::options()
            .append(true)
            .open(&self.path)
            .unwrap();
        file.set_modified(self.was).unwrap();
    }
}

fn modified(path: &Path) -> SystemTime {
    std::fs::metadata(path).unwrap().modified().unwrap()
}

#[test]
fn a_changed_source_rebuilds_the_component_the_library_embeds() {
    let _build = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let root = project_root();
    let component = root.join("target/component/ld_dynamodb_store.wasm");
    let core = root.join("target/guests/wasm32-unknown-unknown/release/ld_dynamodb_store.wasm");
    // What this test binary embeds is the component as last built.
    assert!(
        std::fs::read(&component).unwrap() == EMBEDDED_COMPONENT,
        "the library embeds another component than {}",
        component.display()
    );
    let touched = Touched::now(root.join("src/lib.rs"));
    let edited = modified(&touched.path);
    // Filesystem times can be coarse: the rebuild must come after the edit.
    std::thread::sleep(Duration::from_millis(20));
    // What host-example/build.rs runs when Cargo sees the change.
    guests::build(&root, "scripts/build.sh", &[]);
    assert!(modified(&core) > edited, "the core module was not rebuilt");
    assert!(
        modified(&component) > edited,
        "the component was not refreshed"
    );
    // The same source gives the same component.
    assert!(std::fs::read(&component).unwrap() == EMBEDDED_COMPONENT);
    drop(touched);
}
