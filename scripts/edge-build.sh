#!/usr/bin/env bash
# Builds the edge components: the store component and the CLI (scripts/build.sh);
# the evaluator component (evaluator/) composed with the store, and the app
# component (edge-server/) composed with the store and the evaluator
# built without one (target/component/evaluator-items.wasm, which imports no
# store), by `wasm-tools compose`:
#   target/component/flag-evaluator.wasm  (exports ld-dynamodb:evaluation/evaluator)
#   target/component/edge-flags.wasm      (a wasi:http/proxy component)
# Installs wasmtime (the CLI, for `wasmtime serve`) into .tools first.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
"$root/scripts/setup.sh" --edge
export LD_DYNAMODB_SETUP="${LD_DYNAMODB_SETUP:-} --edge"
"$root/scripts/build.sh"
tools="$root/.tools"
out="$root/target/component"

source "$root/scripts/component.sh"

# Composes ROOT with DEPS into OUT: each dependency's exports satisfy the
# root's imports of the same interfaces. `wasm-tools compose` comes with the
# wasm-tools package the setup installs (wac, the tool wasm-tools points to,
# would be built from crates: 1 min 56 s here). It names a dependency by its
# file name, which must be kebab-case, hence the links.
compose() {
  local root_component=$1 output=$2 dir dep name
  shift 2
  dir="$(mktemp -d)"
  local deps=()
  for dep in "$@"; do
    name="$(basename "$dep" .wasm | tr _ -).wasm"
    ln -s "$dep" "$dir/$name"
    deps+=(-d "$dir/$name")
  done
  if ! "$tools/venv/bin/wasm-tools" compose "$root_component" "${deps[@]}" -o "$output" \
      >"$dir/log" 2>&1; then
    cat "$dir/log" >&2
    rm -rf "$dir"
    return 1
  fi
  rm -rf "$dir"
  "$tools/venv/bin/wasm-tools" validate "$output"
}

# The evaluator twice: with the `store` feature (it imports the data store)
# and without it (it imports only stderr, for the edge app). Both builds write
# the same file (so each rebuilds the evaluator crate alone, about 10 s), hence
# a copy of each core module, replaced only when its bytes change: its time is
# what make_component compares.
release="$root/target/wasm32-unknown-unknown/release"
keep_core() {
  cmp -s "$release/ld_dynamodb_evaluator.wasm" "$1" || cp -p "$release/ld_dynamodb_evaluator.wasm" "$1"
}
cargo rustc --release --target wasm32-unknown-unknown -p ld-dynamodb-evaluator --lib --crate-type cdylib
keep_core "$release/ld_dynamodb_evaluator_store.wasm"
make_component "$release/ld_dynamodb_evaluator_store.wasm" "$out/evaluator.wasm"
compose "$out/evaluator.wasm" "$out/flag-evaluator.wasm" "$out/ld_dynamodb_store.wasm"
echo "flag evaluator: $out/flag-evaluator.wasm: $(wc -c <"$out/flag-evaluator.wasm") bytes ($(wc -c <"$out/evaluator.wasm") without the store)" >&2

cargo rustc --release --target wasm32-unknown-unknown -p ld-dynamodb-evaluator --lib \
  --crate-type cdylib --no-default-features
keep_core "$release/ld_dynamodb_evaluator_items.wasm"
make_component "$release/ld_dynamodb_evaluator_items.wasm" "$out/evaluator-items.wasm"
echo "evaluator without the store (from-items only): $out/evaluator-items.wasm: $(wc -c <"$out/evaluator-items.wasm") bytes" >&2

cargo rustc --release --target wasm32-unknown-unknown -p ld-dynamodb-edge-flags --lib --crate-type cdylib
make_component "$root/target/wasm32-unknown-unknown/release/ld_dynamodb_edge_flags.wasm" \
  "$out/edge-app.wasm"

# The app's `ld-dynamodb:store/data-store` import is satisfied by the store
# component's export, its `ld-dynamodb:evaluation/evaluator` import by the
# evaluator without a store (the app hands it its snapshot's items): one
# store per instance of the composition.
compose "$out/edge-app.wasm" "$out/edge-flags.wasm" \
  "$out/ld_dynamodb_store.wasm" "$out/evaluator-items.wasm"
echo "edge flag server: $out/edge-flags.wasm: $(wc -c <"$out/edge-flags.wasm") bytes" >&2
