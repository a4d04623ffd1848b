#!/usr/bin/env bash
# The benchmark: the component against LaunchDarkly's official Python store on
# the same local dynalite, directly and through a 10 ms and a 50 ms delay
# proxy; the component beside the build of an earlier commit
# (BENCH_BASELINE_REV); and the edge flag server under `wasmtime
# serve`; then Init through a partition emulator and through the fault mix of
# issue 27 beside the Python store, and
# the flag evaluator beside LaunchDarkly's Node server SDK, the edge server
# under 16 to 1,024 connections, its snapshot beside a new instance per answer
# (which runs the load section again), and its client-side evaluation routes
# (evalx GET and REPORT), hostile contexts, and its analytics events on and
# off. Prints the tables
# and writes each section of BENCHMARKS.md. Not part of the tests.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
# dynalite and LaunchDarkly's Node SDK (the evaluator's oracle), the wasmtime CLI.
"$root/scripts/setup.sh" --node --edge
export LD_DYNAMODB_SETUP="--node --edge"
"$root/scripts/edge-build.sh"
cargo build -p ld-dynamodb-bench

# The baseline component, built from its commit in a scratch worktree
# (BENCH_BASELINE_REV, by default ba6b244: the build before the proxy-world,
# size-tuned one).
baseline_rev="${BENCH_BASELINE_REV:-ba6b244}"
baseline="$root/target/baseline/$baseline_rev/ld_dynamodb_store.wasm"
if [ ! -f "$baseline" ]; then
  rustup target add wasm32-wasip2 >&2
  src="$root/target/baseline/src"
  rm -rf "$src"
  git -C "$root" worktree prune
  git -C "$root" worktree add --detach "$src" "$baseline_rev" >&2
  (cd "$src" && cargo build --release --target wasm32-wasip2 -p ld-dynamodb-store \
    --target-dir "$root/target/baseline/target" >&2)
  mkdir -p "$(dirname "$baseline")"
  cp "$root/target/baseline/target/wasm32-wasip2/release/ld_dynamodb_store.wasm" "$baseline"
  git -C "$root" worktree remove --force "$src"
fi

source "$root/scripts/emulators.sh"
start_dynalite "$logs/bench-dynalite.log"
"$root/target/debug/ld-dynamodb-bench" run \
  --endpoint "$LD_TEST_DYNALITE_ENDPOINT" \
  --server-pid "${EMULATOR_PIDS[0]}" \
  --python "$root/.tools/venv/bin/python" \
  --runs "${BENCH_RUNS:-3}" \
  --baseline "$baseline" \
  --baseline-rev "$baseline_rev" \
  --wasmtime "$root/.tools/bin/wasmtime" \
  --out "$root/BENCHMARKS.md" \
  --command "scripts/bench.sh"
"$root/target/debug/ld-dynamodb-bench" reads \
  --endpoint "$LD_TEST_DYNALITE_ENDPOINT" \
  --server-pid "${EMULATOR_PIDS[0]}" \
  --python "$root/.tools/venv/bin/python" \
  --out "$root/BENCHMARKS.md"
"$root/target/debug/ld-dynamodb-bench" pacing \
  --endpoint "$LD_TEST_DYNALITE_ENDPOINT" \
  --server-pid "${EMULATOR_PIDS[0]}" \
  --python "$root/.tools/venv/bin/python" \
  --runs "${BENCH_RUNS:-3}" \
  --out "$root/BENCHMARKS.md"
"$root/target/debug/ld-dynamodb-bench" fault-mix \
  --endpoint "$LD_TEST_DYNALITE_ENDPOINT" \
  --server-pid "${EMULATOR_PIDS[0]}" \
  --python "$root/.tools/venv/bin/python" \
  --runs "${BENCH_RUNS:-3}" \
  --out "$root/BENCHMARKS.md"
"$root/target/debug/ld-dynamodb-bench" evaluator \
  --endpoint "$LD_TEST_DYNALITE_ENDPOINT" \
  --evaluator "$root/target/component/flag-evaluator.wasm" \
  --out "$root/BENCHMARKS.md"
"$root/target/debug/ld-dynamodb-bench" edge-load \
  --endpoint "$LD_TEST_DYNALITE_ENDPOINT" \
  --wasmtime "$root/.tools/bin/wasmtime" \
  --out "$root/BENCHMARKS.md"
"$root/target/debug/ld-dynamodb-bench" edge-snapshot \
  --endpoint "$LD_TEST_DYNALITE_ENDPOINT" \
  --wasmtime "$root/.tools/bin/wasmtime" \
  --out "$root/BENCHMARKS.md"
"$root/target/debug/ld-dynamodb-bench" client-side \
  --endpoint "$LD_TEST_DYNALITE_ENDPOINT" \
  --wasmtime "$root/.tools/bin/wasmtime" \
  --out "$root/BENCHMARKS.md"
"$root/target/debug/ld-dynamodb-bench" hostile \
  --endpoint "$LD_TEST_DYNALITE_ENDPOINT" \
  --wasmtime "$root/.tools/bin/wasmtime" \
  --out "$root/BENCHMARKS.md"
"$root/target/debug/ld-dynamodb-bench" events \
  --endpoint "$LD_TEST_DYNALITE_ENDPOINT" \
  --wasmtime "$root/.tools/bin/wasmtime" \
  --out "$root/BENCHMARKS.md"
