//! Pins the component's imports: only interfaces of the `wasi:http/proxy@0.2.0`
//! world, at 0.2.0, so that every WASI 0.2 HTTP host (and tools without semver
//! matching) can link it. The test binary's own linker holds only the proxy
//! world, so every other integration test also proves that it is enough.

use ld_dynamodb_tests::runtime;

/// What the component imports: part of `wasi:http/proxy@0.2.0`.
const IMPORTS: &[&str] = &[
    "wasi:io/poll@0.2.0",
    "wasi:io/error@0.2.0",
    "wasi:io/streams@0.2.0",
    "wasi:clocks/monotonic-clock@0.2.0",
    "wasi:clocks/wall-clock@0.2.0",
    "wasi:random/random@0.2.0",
    "wasi:cli/stderr@0.2.0",
    "wasi:http/types@0.2.0",
    "wasi:http/outgoing-handler@0.2.0",
];

/// Every interface the `wasi:http/proxy@0.2.0` world imports.
const PROXY_WORLD: &[&str] = &[
    "wasi:io/poll@0.2.0",
    "wasi:io/error@0.2.0",
    "wasi:io/streams@0.2.0",
    "wasi:clocks/monotonic-clock@0.2.0",
    "wasi:clocks/wall-clock@0.2.0",
    "wasi:random/random@0.2.0",
    "wasi:cli/stdout@0.2.0",
    "wasi:cli/stderr@0.2.0",
    "wasi:cli/stdin@0.2.0",
    "wasi:http/types@0.2.0",
    "wasi:http/outgoing-handler@0.2.0",
];

#[test]
fn imports_are_exactly_the_pinned_proxy_world_interfaces() {
    let mut actual = runtime().imports();
    actual.sort();
    let mut expected: Vec<String> = IMPORTS.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(actual, expected, "the component's imports changed");
    for import in &actual {
        assert!(
            PROXY_WORLD.contains(&import.as_str()),
            "{import} is outside the proxy world"
        );
    }
}
