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
#
# With LD_DYNAMODB_GUESTS_ONLY=1 (how host-example/build.rs runs it, so that
# `cargo build` never embeds a stale component): the component only, installing
# nothing (a missing tool is named) and building no host code.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
source "$root/scripts/component.sh"
guests_only="${LD_DYNAMODB_GUESTS_ONLY:-}"
if [ -n "$guests_only" ]; then
  require_guest_tools
else
  "$root/scripts/setup.sh"
fi
out="$root/target/component"
mkdir -p "$out"

guest_rustc ld-dynamodb-store
make_component "$guest_release/ld_dynamodb_store.wasm" "$out/ld_dynamodb_store.wasm"

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
[ -n "$guests_only" ] && exit 0
# The CLI (what the demos run; with LaunchDarkly's SDK, for `sync`), not the
# tests or the benchmark. `--workspace` resolves its dependencies' features as
# `cargo test --workspace` does (tests/it/build.rs checks), so the two share one
# build of wasmtime, rustls and the AWS crates; the library's manifest asks for
# nothing on their behalf. The library embeds the component built above
# (host-example/build.rs, which runs this script's first part again: a no-op).
cargo build --workspace --bin ld-dynamodb
