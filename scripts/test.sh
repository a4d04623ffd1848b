#!/usr/bin/env bash
# Runs every check and test (`.ci/run` calls it): first a fast stage (format,
# lints, docs, the guests' builds and size budgets, native unit tests), then the
# built component in wasmtime (linked with the wasi:http/proxy world only)
# against moto (SigV4 checking on) and dynalite, both started here on free
# 127.0.0.1 ports and stopped on exit; then the same component transpiled by
# jco, in Node, against dynalite. The edge flag server runs under `wasmtime
# serve` in tests/it/edge.rs.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
# The Node packages and Chromium of the tests (and the wasmtime CLI the edge
# tests serve with, the first time).
"$root/scripts/setup.sh" --node --edge --browser
export LD_DYNAMODB_SETUP="--node --edge --browser"

# The fast stage, before any end-to-end test: the code as it is written
# (formatted; no lint, no doc warning, as errors), the guests built with their
# size budget (the store component, the evaluator, the edge flag server, and
# the CLI), and every crate's unit tests.
cargo fmt --all --check
"$root/scripts/edge-build.sh"
cargo clippy --workspace --all-targets -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps
cargo test --workspace --lib --bins

# End to end: the built components in wasmtime against moto and dynalite,
# then in jco.
source "$root/scripts/emulators.sh"
start_moto "$logs/moto.log"
start_dynalite "$logs/dynalite.log"
export LD_TEST_PYTHON="$root/.tools/venv/bin/python"
cargo test --workspace -- --test-threads 4 "$@"

jco_dir="$root/.tools/node/transpiled"
rm -rf "$jco_dir"
jco="$root/.tools/node/node_modules/@bytecodealliance/jco/dist/jco.js"
node "$jco" transpile "$root/target/component/ld_dynamodb_store.wasm" -o "$jco_dir" \
  --name store --quiet
node "$jco" transpile "$root/target/component/flag-evaluator.wasm" -o "$jco_dir" \
  --name flag-evaluator --quiet
LD_TEST_JCO_MODULE="$jco_dir/store.js" LD_TEST_JCO_EVALUATOR="$jco_dir/flag-evaluator.js" \
  LD_TEST_NODE_MODULES="$root/.tools/node/node_modules" node --test "$root/tests/jco/"
