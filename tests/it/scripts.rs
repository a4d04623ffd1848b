//! `scripts/emulators.sh`: a dead emulator is noticed at once, and one that
//! ignores SIGTERM is killed.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// Runs `body` in bash after sourcing the emulator script; (status, stderr, elapsed).
fn with_script(body: &str) -> (bool, String, Duration) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let script = format!(
        "root={root:?}; source \"$root/scripts/emulators.sh\"; trap - EXIT; {body}",
        root = root.canonicalize().unwrap()
    );
    let started = Instant::now();
    let out = Command::new("bash").arg("-c").arg(script).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        started.elapsed(),
    )
}

#[test]
fn wait_for_port_notices_an_emulator_that_died() {
    let log = std::env::temp_dir().join(format!("ld-dynamodb-dead-{}.log", std::process::id()));
    std::fs::write(&log, "fatal: cannot start\n").unwrap();
    // Port 9 (discard) has no listener here; the "emulator" exits at once.
    let (ok, stderr, elapsed) = with_script(&format!(
        "(exit 3) & pid=$!; wait_for_port 9 fake-emulator $pid {log:?}",
    ));
    assert!(!ok);
    assert!(
        stderr.contains("fake-emulator exited before listening"),
        "{stderr}"
    );
    assert!(
        stderr.contains("fatal: cannot start"),
        "the log is shown: {stderr}"
    );
    assert!(
        elapsed < Duration::from_secs(5),
        "noticed in {elapsed:?}, not after the full wait"
    );
    let _ = std::fs::remove_file(&log);
}

#[test]
fn stop_emulators_kills_what_ignores_sigterm() {
    let (ok, stderr, elapsed) = with_script(
        "bash -c 'trap \"\" TERM; while :; do sleep 0.1; done' & pid=$!; \
         EMULATOR_PIDS+=($pid); sleep 0.3; stop_emulators; \
         if kill -0 $pid 2>/dev/null; then echo still-alive >&2; exit 1; fi",
    );
    assert!(ok, "{stderr}");
    assert!(stderr.contains("ignored SIGTERM: killing it"), "{stderr}");
    assert!(elapsed < Duration::from_secs(15), "{elapsed:?}");
}
