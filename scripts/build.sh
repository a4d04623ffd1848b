#!/usr/bin/env bash
# Builds the component (release, size-tuned profile) and the host CLI, and
# prints the component's size.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
"$root/scripts/setup.sh"
cargo build --release --target wasm32-wasip2 -p ld-dynamodb-store
component="$root/target/wasm32-wasip2/release/ld_dynamodb_store.wasm"
size=$(wc -c <"$component")
gz=$(gzip -9c "$component" | wc -c)
echo "component: $component: $size bytes ($gz gzipped)" >&2
cargo build -p ld-dynamodb-host
