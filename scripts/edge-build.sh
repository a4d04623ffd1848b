#!/usr/bin/env bash
# Builds the edge components: the store component and the CLI (scripts/build.sh);
# the evaluator component (evaluator/) composed with the store, and the app
# component (examples/edge-flags) composed with the store and that, by `wac plug`:
#   target/component/flag-evaluator.wasm  (exports ld-dynamodb:evaluation/evaluator)
#   target/component/edge-flags.wasm      (a wasi:http/proxy component)
# Installs wasmtime (the CLI, for `wasmtime serve`) and wac into .tools first.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
"$root/scripts/setup.sh" --edge
export LD_DYNAMODB_SETUP="${LD_DYNAMODB_SETUP:-} --edge"
"$root/scripts/build.sh"
tools="$root/.tools"
out="$root/target/component"

source "$root/scripts/component.sh"
cargo rustc --release --target wasm32-unknown-unknown -p ld-dynamodb-evaluator --lib --crate-type cdylib
make_component "$root/target/wasm32-unknown-unknown/release/ld_dynamodb_evaluator.wasm" \
  "$out/evaluator.wasm"
"$tools/bin/wac" plug "$out/evaluator.wasm" --plug "$out/ld_dynamodb_store.wasm" -o "$out/flag-evaluator.wasm"
"$tools/venv/bin/wasm-tools" validate "$out/flag-evaluator.wasm"
echo "flag evaluator: $out/flag-evaluator.wasm: $(wc -c <"$out/flag-evaluator.wasm") bytes ($(wc -c <"$out/evaluator.wasm") without the store)" >&2

cargo rustc --release --target wasm32-unknown-unknown -p ld-dynamodb-edge-flags --lib --crate-type cdylib
make_component "$root/target/wasm32-unknown-unknown/release/ld_dynamodb_edge_flags.wasm" \
  "$out/edge-app.wasm"

# The one composition command: the app's `ld-dynamodb:store/data-store` import
# is satisfied by the store component's export, its
# `ld-dynamodb:evaluation/evaluator` import by the flag evaluator (which holds
# its own instance of the store).
"$tools/bin/wac" plug "$out/edge-app.wasm" --plug "$out/ld_dynamodb_store.wasm" \
  --plug "$out/flag-evaluator.wasm" -o "$out/edge-flags.wasm"
"$tools/venv/bin/wasm-tools" validate "$out/edge-flags.wasm"
echo "edge flag server: $out/edge-flags.wasm: $(wc -c <"$out/edge-flags.wasm") bytes" >&2
