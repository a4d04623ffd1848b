#!/usr/bin/env bash
# Builds the component (release, size-tuned), the host CLI and the benchmark,
# and prints the component's size.
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
tools="$root/.tools"
out="$root/target/component"
mkdir -p "$out"

cargo rustc --release --target wasm32-unknown-unknown -p ld-dynamodb-store --lib --crate-type cdylib
core="$root/target/wasm32-unknown-unknown/release/ld_dynamodb_store.wasm"
node "$tools/node/node_modules/binaryen/bin/wasm-opt" -Oz \
  --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
  --enable-mutable-globals --enable-multivalue --enable-reference-types \
  "$core" -o "$out/core.opt.wasm"
"$tools/venv/bin/wasm-tools" component new "$out/core.opt.wasm" -o "$out/component.unstripped.wasm"
"$tools/venv/bin/wasm-tools" strip -a "$out/component.unstripped.wasm" -o "$out/ld_dynamodb_store.wasm"
"$tools/venv/bin/wasm-tools" validate "$out/ld_dynamodb_store.wasm"
rm -f "$out/core.opt.wasm" "$out/component.unstripped.wasm"

component="$out/ld_dynamodb_store.wasm"
size=$(wc -c <"$component")
gz=$(gzip -9c "$component" | wc -c)
echo "component: $component: $size bytes ($gz gzipped)" >&2
# The whole workspace, so dependency features unify exactly as in `cargo test
# --workspace` and the tests reuse this build instead of compiling wasmtime again.
cargo build --workspace
# The CLI looks for the component beside its executable.
cp "$component" "$root/target/debug/"
