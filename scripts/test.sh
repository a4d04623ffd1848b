#!/usr/bin/env bash
# Runs every test: native unit tests, then the built component in wasmtime
# (linked with the wasi:http/proxy world only) against moto (SigV4 checking on)
# and dynalite, both started here on free 127.0.0.1 ports and stopped on exit;
# then the same component transpiled by jco, in Node, against dynalite. The
# edge flag server runs under `wasmtime serve` in tests/it/edge.rs.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
# The Node packages and Chromium of the tests, then everything built: the
# store component, the CLI, the evaluator, the edge flag server (and the
# wasmtime CLI it needs, the first time).
"$root/scripts/setup.sh" --node --edge --browser
# The code as it is written: formatted, and no lint (fails fast, before the build).
cargo fmt --all --check
export LD_DYNAMODB_SETUP="--node --edge --browser"
"$root/scripts/edge-build.sh"
source "$root/scripts/emulators.sh"
start_moto "$logs/moto.log"
start_dynalite "$logs/dynalite.log"
export LD_TEST_PYTHON="$root/.tools/venv/bin/python"
cargo test --workspace -- --test-threads 4 "$@"
# Every crate's lints, tests and benchmark included, as errors.
cargo clippy --workspace --all-targets -- -D warnings

jco_dir="$root/.tools/node/transpiled"
rm -rf "$jco_dir"
jco="$root/.tools/node/node_modules/@bytecodealliance/jco/dist/jco.js"
node "$jco" transpile "$root/target/component/ld_dynamodb_store.wasm" -o "$jco_dir" \
  --name store --quiet
node "$jco" transpile "$root/target/component/flag-evaluator.wasm" -o "$jco_dir" \
  --name flag-evaluator --quiet
LD_TEST_JCO_MODULE="$jco_dir/store.js" LD_TEST_JCO_EVALUATOR="$jco_dir/flag-evaluator.js" \
  LD_TEST_NODE_MODULES="$root/.tools/node/node_modules" node --test "$root/tests/jco/"
