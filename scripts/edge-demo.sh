#!/usr/bin/env bash
# The edge demo: builds the edge flag server, starts moto (SigV4
# checking on), loads examples/latest-all.json with the CLI, serves the
# component with `wasmtime serve` (settings through wasi:config, secrets through
# the environment with `--env NAME`, so none is on a command line), and curls
# its endpoints: the server-side polling routes, then a client-side evaluation
# as LaunchDarkly's JS client SDK asks for it (GET and REPORT). Stops
# everything on exit.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
"$root/scripts/edge-build.sh"
source "$root/scripts/emulators.sh"
start_moto "$logs/edge-demo-moto.log"

export AWS_ACCESS_KEY_ID="$LD_TEST_MOTO_ACCESS_KEY_ID"
export AWS_SECRET_ACCESS_KEY="$LD_TEST_MOTO_SECRET_ACCESS_KEY"
export AWS_REGION=us-east-1
export AWS_ENDPOINT_URL_DYNAMODB="$LD_TEST_MOTO_ENDPOINT"
export LD_DYNAMODB_TABLE=ld-edge-demo
export LD_DYNAMODB_PREFIX=demo
cli="$root/target/debug/ld-dynamodb"
"$cli" create-table
"$cli" init examples/latest-all.json

export LD_SDK_KEY=sdk-demo-key
port=$(free_port)
mapfile -t flags < <("$root/scripts/edge-serve-flags.sh")
"$root/.tools/bin/wasmtime" serve --addr "127.0.0.1:$port" "${flags[@]}" \
  -S config-var=table="$LD_DYNAMODB_TABLE" -S config-var=prefix="$LD_DYNAMODB_PREFIX" \
  -S config-var=region="$AWS_REGION" -S config-var=endpoint="$AWS_ENDPOINT_URL_DYNAMODB" \
  -S config-var=client-side-id=demo-client-side-id \
  target/component/edge-flags.wasm 2>"$logs/edge-demo-serve.log" &
EMULATOR_PIDS+=($!)
wait_for_port "$port" "wasmtime serve" "$!" "$logs/edge-demo-serve.log"

show() {
  echo
  echo "\$ curl $(printf '%q ' "$@")"
  curl -sS "$@"
  echo
}
base="http://127.0.0.1:$port"
show -H "Authorization: $LD_SDK_KEY" "$base/status"
show -H "Authorization: $LD_SDK_KEY" "$base/sdk/latest-all"
show -H "Authorization: $LD_SDK_KEY" "$base/sdk/latest-flags/checkout-banner"
show -i "$base/sdk/latest-all"
etag=$(curl -sS -D - -o /dev/null -H "Authorization: $LD_SDK_KEY" "$base/sdk/latest-all" | tr -d '\r' | awk -F': ' 'tolower($1)=="etag"{print $2}')
show -i -H "Authorization: $LD_SDK_KEY" -H "If-None-Match: $etag" "$base/sdk/latest-all"

# Client-side evaluation, as the JS client SDK asks for it: the context as
# base64url JSON in the path (GET), or as the body (REPORT). user-1 is in the
# beta-testers segment, so new-checkout's rule serves it true.
context='{"kind":"user","key":"user-1"}'
encoded=$(printf '%s' "$context" | base64 -w0 | tr '+/' '-_' | tr -d '=')
show -H "Origin: https://app.example.com" "$base/sdk/evalx/demo-client-side-id/contexts/$encoded?withReasons=true"
show -X REPORT -H "Content-Type: application/json" -d '{"kind":"user","key":"user-9"}' \
  "$base/sdk/evalx/demo-client-side-id/context"
echo
echo "edge demo finished: wasmtime serve and moto stop now"
