//! Pins the component's imports: the `wasi:http/imports` world plus the few
//! interfaces Rust's std links by itself, and nothing else (no filesystem, no
//! sockets), so it runs on any WASI HTTP runtime.

use ld_dynamodb_tests::runtime;

/// `wasi:http/imports@0.2.12`.
const WASI_HTTP_IMPORTS: &[&str] = &[
    "wasi:io/poll@0.2.12",
    "wasi:clocks/monotonic-clock@0.2.12",
    "wasi:clocks/wall-clock@0.2.12",
    "wasi:random/random@0.2.12",
    "wasi:io/error@0.2.12",
    "wasi:io/streams@0.2.12",
    "wasi:cli/stdout@0.2.12",
    "wasi:cli/stderr@0.2.12",
    "wasi:cli/stdin@0.2.12",
    "wasi:http/types@0.2.12",
    "wasi:http/outgoing-handler@0.2.12",
];

/// What Rust's std imports on wasm32-wasip2 by itself (environment, exit,
/// terminals for stdio, the HashMap seed).
const STD_IMPORTS: &[&str] = &[
    "wasi:cli/environment@0.2.12",
    "wasi:cli/exit@0.2.12",
    "wasi:cli/terminal-input@0.2.12",
    "wasi:cli/terminal-output@0.2.12",
    "wasi:cli/terminal-stdin@0.2.12",
    "wasi:cli/terminal-stdout@0.2.12",
    "wasi:cli/terminal-stderr@0.2.12",
    "wasi:random/insecure-seed@0.2.12",
];

#[test]
fn imports_are_exactly_wasi_http_and_std() {
    let mut actual = runtime().imports();
    actual.sort();
    let mut expected: Vec<String> = WASI_HTTP_IMPORTS
        .iter()
        .chain(STD_IMPORTS)
        .map(|s| s.to_string())
        .collect();
    expected.sort();
    assert_eq!(actual, expected, "the component's imports changed");
}
