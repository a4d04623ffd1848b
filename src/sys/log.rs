//! The error log on `wasi:cli/stderr`.
//!
//! A failed write is ignored: a log line must never trap the instance (a host
//! may close or cap stderr at any time).

use super::bindings::cli::stderr;

/// Largest write to the stream at once (the `blocking-write-and-flush` limit).
const CHUNK: usize = 4096;

/// Writes `line` and a newline to stderr; gives up silently on the first failure.
pub fn write_line(line: &str) {
    let stream = stderr::get_stderr();
    let mut bytes = Vec::with_capacity(line.len() + 1);
    bytes.extend_from_slice(line.as_bytes());
    bytes.push(b'\n');
    for chunk in bytes.chunks(CHUNK) {
        if stream.blocking_write_and_flush(chunk).is_err() {
            return;
        }
    }
}
