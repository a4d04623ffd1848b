#!/usr/bin/env bash
# Runs every test: native unit tests, then the built component in wasmtime
# against moto (SigV4 checking on) and dynalite, both started here on free
# 127.0.0.1 ports and stopped on exit.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
"$root/scripts/build.sh"
source "$root/scripts/emulators.sh"
start_moto "$logs/moto.log"
start_dynalite "$logs/dynalite.log"
export LD_TEST_PYTHON="$root/.tools/venv/bin/python"
cargo test --workspace -- --test-threads 4 "$@"
