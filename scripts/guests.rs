//! Builds guest components from a Cargo build script, by the project's own
//! build scripts (`scripts/build.sh`, `scripts/edge-build.sh`) in their
//! guests-only mode: the same steps as a build by hand, installing nothing.
//! Included by `host-example/build.rs` and `tests/build.rs`.

use std::path::Path;
use std::process::Command;

/// Declares `sources` (paths relative to `root`, the project root) as the
/// inputs of the calling build script, then runs `script` (relative to
/// `root`) with `LD_DYNAMODB_GUESTS_ONLY=1`. Panics with the script's own
/// error (which names a missing tool and the command that installs it).
pub fn build(root: &Path, script: &str, sources: &[&str]) {
    for source in sources {
        println!("cargo:rerun-if-changed={}", root.join(source).display());
    }
    let mut command = Command::new("bash");
    command
        .arg(root.join(script))
        .current_dir(root)
        .env("LD_DYNAMODB_GUESTS_ONLY", "1");
    // What Cargo sets for this build script is about the host's build, not
    // the guests' (their own target folder, target and profile).
    for variable in [
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "RUSTC",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTDOC",
    ] {
        command.env_remove(variable);
    }
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("running {script} (bash): {e}"));
    if !output.status.success() {
        panic!(
            "building the guest components (LD_DYNAMODB_GUESTS_ONLY=1 {script}) failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
