//! Builds the guest components the integration tests load from
//! `target/component/` (the store, the flag evaluator, the edge flag server)
//! when their sources change, by `scripts/edge-build.sh` in its guests-only
//! mode: `cargo test` never runs an old build (`support/mod.rs` still refuses
//! an artifact older than its sources, for one built by hand).

use std::path::PathBuf;

#[path = "../scripts/guests.rs"]
mod guests;

fn main() {
    let root =
        PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo")).join("..");
    guests::build(
        &root,
        "scripts/edge-build.sh",
        &[
            "src",
            "wit",
            "evaluator/src",
            "evaluator/wit",
            "evaluator/Cargo.toml",
            "edge-server/src",
            "edge-server/wit",
            "edge-server/Cargo.toml",
            "Cargo.toml",
            "Cargo.lock",
            "scripts/build.sh",
            "scripts/component.sh",
            "scripts/edge-build.sh",
        ],
    );
}
