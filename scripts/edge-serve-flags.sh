#!/usr/bin/env bash
# Prints the `wasmtime serve` options of the edge flag server, one argument per
# line: everything but --addr, the -S config-var settings and the component.
# Use:  mapfile -t flags < <(scripts/edge-serve-flags.sh)
#       .tools/bin/wasmtime serve --addr 127.0.0.1:8030 "${flags[@]}" -S config-var=... target/component/edge-flags.wasm
set -euo pipefail
args=(
  # wasi:config for the settings, wasi:cli for the environment (secrets).
  -S config
  -S cli
  # The secrets, copied by name from wasmtime's own environment.
  --env AWS_ACCESS_KEY_ID
  --env AWS_SECRET_ACCESS_KEY
  --env AWS_SESSION_TOKEN
  --env LD_SDK_KEY
  --env LD_MOBILE_KEY
  # One request instantiates the composed component: 12 core instances (the
  # app, the evaluator and two stores, each with its shim and fixup module)
  # and 4 memories. The pooling allocator's fixed totals (1,000 core
  # instances by default) ran out at a few hundred requests at once, and
  # wasmtime answered 500. The on-demand allocator has no such total: each
  # instance maps its own memory (instantiation stays well under a millisecond).
  -O pooling-allocator=n
  # Each linear memory may grow to 64 MiB (the store reads pages of up to
  # 16 MiB); a request that needs more fails alone.
  -W max-memory-size=67108864
)
printf '%s\n' "${args[@]}"
