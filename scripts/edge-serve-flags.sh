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
  # An instance serves request after request, so the app's snapshot of the
  # table (read once per refresh interval, 15 s by default) outlives each
  # answer: without this, every answer reads the whole table. The count only
  # bounds how long one instance lives.
  --max-instance-reuse-count 1000000
  # An idle instance is kept 5 minutes, longer than any SDK's poll interval
  # (30 s by default), so that a quiet edge still answers from memory, and
  # from its last snapshot through an outage.
  --idle-instance-timeout 300s
  # One request in the app per core: answers from memory are CPU-bound, and a
  # request that finds every instance busy gets a new one, which reads the
  # whole table and holds a snapshot. wasmtime frees the slot once the answer's
  # head is out, so bodies still stream from busier instances: at 1,024
  # connections on 2 cores, 32 slots made 414-490 instances, 2 made 80-98.
  --max-concurrent-requests "$(nproc)"
  # One instance of the component: 3 core instances (the app's module, which
  # links the store and the evaluator, with its shim and fixup modules) and
  # one memory. The pooling allocator's fixed totals (1,000 core instances by
  # default) ran out at a few hundred requests at once (with the 9 core
  # instances of the earlier composition), and wasmtime answered 500. The
  # on-demand allocator has no such total: each instance maps its own memory.
  -O pooling-allocator=n
  # The linear memory may grow to 128 MiB: the app keeps the snapshot's items
  # and bodies (about 3 times the table's JSON) and the evaluator's parsed
  # flags; an instance that needs more fails alone.
  -W max-memory-size=134217728
  # No request may run longer than 10 s (a refresh included): past it the
  # host answers 500, logs "guest timed out" and drops the instance, so a
  # pathological request never holds a core for long.
  -W timeout=10s
)
# The server reads its key at each request, and `wasmtime serve` starts
# before any: say now what its first answer would say.
if [ -z "${LD_SDK_KEY:-}" ]; then
  echo "edge-serve-flags.sh: LD_SDK_KEY is not set: unless the server is configured with" \
    "auth=none, every route will answer 503 (export LD_SDK_KEY before serving)" >&2
fi
printf '%s\n' "${args[@]}"
