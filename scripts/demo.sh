#!/usr/bin/env bash
# The demo: builds the component and the CLI, starts a local moto with SigV4
# checking on, creates a table, loads examples/latest-all.json through the
# component, reads it back, upserts and deletes a flag, shows the status, and
# stops the server.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
"$root/scripts/build.sh"
source "$root/scripts/emulators.sh"
start_moto "$logs/demo-moto.log"

export AWS_ACCESS_KEY_ID="$LD_TEST_MOTO_ACCESS_KEY_ID"
export AWS_SECRET_ACCESS_KEY="$LD_TEST_MOTO_SECRET_ACCESS_KEY"
export AWS_REGION=us-east-1
export AWS_ENDPOINT_URL_DYNAMODB="$LD_TEST_MOTO_ENDPOINT"
export LD_DYNAMODB_TABLE=ld-demo
export LD_DYNAMODB_PREFIX=demo

step() {
  echo
  echo "\$ ld-dynamodb $*"
  "$root/target/debug/ld-dynamodb" "$@"
}

step create-table
step status
step init examples/latest-all.json
step status
step all flags
step get segments beta-testers
echo
echo '$ echo {"key":"banner-text","version":8,...} | ld-dynamodb upsert flags -'
echo '{"key":"banner-text","version":8,"on":true,"variations":["Welcome back!","Hello"],"fallthrough":{"variation":0},"offVariation":1,"salt":"9a2c"}' \
  | "$root/target/debug/ld-dynamodb" upsert flags -
echo
echo '$ echo {"key":"banner-text","version":5,...} | ld-dynamodb upsert flags -   # older: not applied'
echo '{"key":"banner-text","version":5,"on":false}' | "$root/target/debug/ld-dynamodb" upsert flags -
step get flags banner-text
step delete flags new-checkout 4
step get flags new-checkout
step get flags new-checkout --raw
step all flags
step big-segments metadata
step big-segments membership user-1
echo
echo "demo finished: moto stops now"
# The Rust example needs LaunchDarkly's SDK, which the demo does not build (it
# would add minutes to it): say so before a reader's first `cargo run` of it.
echo "next: docs/cli.md's \"A local walkthrough\"; its Rust example is not built yet, so its" \
  "first \`cargo run --example evaluate-flags\` compiles LaunchDarkly's Rust SDK first (minutes)"
