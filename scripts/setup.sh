#!/usr/bin/env bash
# Installs everything the demo, the tests and the benchmark need, into git-ignored
# project folders: the wasm32-wasip2 Rust target, a Python venv (moto, boto3 and
# LaunchDarkly's Python SDK) in .tools/venv, and dynalite in .tools/node.
# Safe to run again: each step is skipped when already done.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tools="$root/.tools"
mkdir -p "$tools"

if ! rustup target list --installed | grep -qx wasm32-wasip2; then
  echo "setup: adding the wasm32-wasip2 Rust target" >&2
  rustup target add wasm32-wasip2 >&2
fi

venv="$tools/venv"
stamp="$venv/.installed-v1"
if [ ! -f "$stamp" ]; then
  echo "setup: installing moto, boto3 and launchdarkly-server-sdk into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "moto[dynamodb]==5.2.5" flask flask-cors "launchdarkly-server-sdk==9.20.0" boto3 >&2
  touch "$stamp"
fi

node_dir="$tools/node"
if [ ! -f "$node_dir/node_modules/dynalite/cli.js" ]; then
  echo "setup: installing dynalite into $node_dir" >&2
  mkdir -p "$node_dir"
  (cd "$node_dir" && npm install --silent --no-audit --no-fund --no-save dynalite@4.0.0 >&2)
fi
