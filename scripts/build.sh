#!/usr/bin/env bash
# Builds the component (release, size-tuned) and the host CLI, and prints the
# component's size. The tests and the benchmark build the rest of the workspace.
#
# The component is built for wasm32-unknown-unknown, so Rust's std links no
# WASI interface of its own: the component imports only what its code uses, all
# from the wasi:http/proxy@0.2.0 world. Steps: the core module (`cargo rustc
# --crate-type cdylib`, so the release profile's LTO applies), `wasm-opt -Oz`,
# `wasm-tools component new` (wit-bindgen embedded the component type), and
# `wasm-tools strip -a`.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
"$root/scripts/setup.sh"
out="$root/target/component"
mkdir -p "$out"

source "$root/scripts/component.sh"
cargo rustc --release --target wasm32-unknown-unknown -p ld-dynamodb-store --lib --crate-type cdylib
make_component "$root/target/wasm32-unknown-unknown/release/ld_dynamodb_store.wasm" \
  "$out/ld_dynamodb_store.wasm"

component="$out/ld_dynamodb_store.wasm"
size=$(wc -c <"$component")
gz=$(gzip -9c "$component" | wc -c)
echo "component: $component: $size bytes ($gz gzipped)" >&2
# The size budget of the release component (360 KiB).
max_size=368640
if [ "$size" -gt "$max_size" ]; then
  echo "the component is $size bytes, over its budget of $max_size" >&2
  exit 1
fi
# The CLI alone (what the demos run; with LaunchDarkly's SDK, for `sync`): not
# the tests or the benchmark.
# It asks for the features the rest of the workspace turns on in its
# dependencies (host-example/Cargo.toml), so `cargo test --workspace` reuses
# this build of them.
# The host library embeds the component built above (host-example/build.rs).
cargo build -p ld-dynamodb-host --bin ld-dynamodb
