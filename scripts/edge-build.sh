#!/usr/bin/env bash
# Builds the edge components: the store component and the CLI (scripts/build.sh),
# then two guests that link the store crate (on its WASI platform, without the
# store's exports) into their own core module, each one component composed
# with nothing:
#   target/component/flag-evaluator.wasm  (evaluator/: exports ld-dynamodb:evaluation/evaluator)
#   target/component/edge-flags.wasm      (edge-server/, which links the evaluator
#                                          crate too: a wasi:http/proxy component)
# Installs wasmtime (the CLI, for `wasmtime serve`) into .tools first.
# With LD_DYNAMODB_GUESTS_ONLY=1 (how tests/build.rs runs it): the components
# only, installing nothing and building no host code (see scripts/build.sh).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
if [ -z "${LD_DYNAMODB_GUESTS_ONLY:-}" ]; then
  "$root/scripts/setup.sh" --edge
  export LD_DYNAMODB_SETUP="${LD_DYNAMODB_SETUP:-} --edge"
fi
"$root/scripts/build.sh"
out="$root/target/component"

source "$root/scripts/component.sh"

guest_rustc ld-dynamodb-evaluator
make_component "$guest_release/ld_dynamodb_evaluator.wasm" "$out/flag-evaluator.wasm"
echo "flag evaluator: $out/flag-evaluator.wasm: $(wc -c <"$out/flag-evaluator.wasm") bytes" >&2

guest_rustc ld-dynamodb-edge-flags
make_component "$guest_release/ld_dynamodb_edge_flags.wasm" "$out/edge-flags.wasm"
echo "edge flag server: $out/edge-flags.wasm: $(wc -c <"$out/edge-flags.wasm") bytes" >&2
