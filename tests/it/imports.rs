//! Pins the imports of the store component and of the flag evaluator (which
//! links the store's code): only interfaces of the `wasi:http/proxy@0.2.0`
//! world, at 0.2.0, so that every WASI 0.2 HTTP host (and tools without semver
//! matching) can link them. The test binary's own linker holds only the proxy
//! world, so every other integration test also proves that it is enough.

use ld_dynamodb_tests::{evaluator_component, runtime};

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

/// Checks that `imports` are exactly [`IMPORTS`], all in [`PROXY_WORLD`].
fn assert_pinned(mut actual: Vec<String>, what: &str) {
    actual.sort();
    let mut expected: Vec<String> = IMPORTS.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(actual, expected, "the imports of {what} changed");
    for import in &actual {
        assert!(
            PROXY_WORLD.contains(&import.as_str()),
            "{what}: {import} is outside the proxy world"
        );
    }
}

#[test]
fn imports_are_exactly_the_pinned_proxy_world_interfaces() {
    assert_pinned(runtime().imports(), "the store component");
}

#[test]
fn the_flag_evaluator_imports_the_same_interfaces_as_the_store() {
    let engine = ld_dynamodb_host::embed::new_engine().unwrap();
    let component =
        wasmtime::component::Component::from_file(&engine, evaluator_component()).unwrap();
    let imports = component
        .component_type()
        .imports(&engine)
        .map(|(name, _)| name.to_string())
        .collect();
    assert_pinned(imports, "flag-evaluator.wasm");
}
