#!/usr/bin/env bash
# Builds the component (release, size-tuned profile), the host CLI and the
# benchmark, and prints the component's size.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
"$root/scripts/setup.sh"
cargo build --release --target wasm32-wasip2 -p ld-dynamodb-store
component="$root/target/wasm32-wasip2/release/ld_dynamodb_store.wasm"
size=$(wc -c <"$component")
gz=$(gzip -9c "$component" | wc -c)
echo "component: $component: $size bytes ($gz gzipped)" >&2
# The whole workspace, so dependency features unify exactly as in `cargo test
# --workspace` and the tests reuse this build instead of compiling wasmtime again.
cargo build --workspace
