#!/usr/bin/env bash
# The benchmark: the component against LaunchDarkly's official Python store on
# the same local dynalite, directly and through a 10 ms and a 50 ms delay
# proxy. Prints one table and writes it to BENCHMARKS.md. Not part of the tests.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
"$root/scripts/build.sh"
source "$root/scripts/emulators.sh"
start_dynalite "$logs/bench-dynalite.log"
"$root/target/debug/ld-dynamodb-bench" run \
  --endpoint "$LD_TEST_DYNALITE_ENDPOINT" \
  --server-pid "${EMULATOR_PIDS[0]}" \
  --python "$root/.tools/venv/bin/python" \
  --runs "${BENCH_RUNS:-3}" \
  --out "$root/BENCHMARKS.md" \
  --command "scripts/bench.sh"
