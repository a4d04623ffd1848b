//! Embeds the release store component into the library, so the CLI, the
//! examples and any crate that depends on this one carry it: nothing has to be
//! installed beside them.
//!
//! The component is built here when its sources change (the store crate, its
//! WIT, the manifests and the build scripts), by the script that builds it for
//! the project (`scripts/build.sh`, guests only): `cargo build` and `cargo
//! test` never embed a stale component. A missing piece of the guest toolchain
//! (the wasm32 target, wasm-opt, wasm-tools) is named in the error, with
//! `scripts/setup.sh`, which installs them. `LD_DYNAMODB_COMPONENT_BUILD` names
//! a component built elsewhere instead (nothing is built then).

use std::path::{Path, PathBuf};

#[path = "../scripts/guests.rs"]
mod guests;

/// What the store component is built from, relative to the project root:
/// Cargo reruns this script when any of them changes.
const SOURCES: &[&str] = &[
    "src",
    "wit",
    "Cargo.toml",
    "Cargo.lock",
    "scripts/build.sh",
    "scripts/component.sh",
];

fn main() {
    println!("cargo:rerun-if-env-changed=LD_DYNAMODB_COMPONENT_BUILD");
    let root =
        PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo")).join("..");
    let path = match std::env::var_os("LD_DYNAMODB_COMPONENT_BUILD") {
        Some(path) => PathBuf::from(path),
        None => build_component(&root),
    };
    if !path.is_file() {
        panic!(
            "the store component {} is not built: set LD_DYNAMODB_COMPONENT_BUILD to a built \
             component, or unset it to build one here",
            path.display()
        );
    }
    let path = path.canonicalize().expect("the component's path");
    println!("cargo:rerun-if-changed={}", path.display());
    println!(
        "cargo:rustc-env=LD_DYNAMODB_EMBEDDED_COMPONENT={}",
        path.display()
    );
}

/// Builds the component (`scripts/build.sh`, guests only) and returns its path.
fn build_component(root: &Path) -> PathBuf {
    guests::build(root, "scripts/build.sh", SOURCES);
    root.join("target/component/ld_dynamodb_store.wasm")
}
