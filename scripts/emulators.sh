# Sourced by the demo, test and bench scripts (with $root set): starts moto
# (with SigV4 checking on) and dynalite on free 127.0.0.1 ports, logging to
# $logs, and stops them on exit.
# Exports LD_TEST_MOTO_ENDPOINT, LD_TEST_MOTO_ACCESS_KEY_ID,
# LD_TEST_MOTO_SECRET_ACCESS_KEY and LD_TEST_DYNALITE_ENDPOINT.

logs="$root/target/emulator-logs"
mkdir -p "$logs"

EMULATOR_PIDS=()
stop_emulators() {
  for pid in "${EMULATOR_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${EMULATOR_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  logs="$root/target/emulator-logs"
mkdir -p "$logs"

EMULATOR_PIDS=()
}
trap stop_emulators EXIT

free_port() {
  "$root/.tools/venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_for_port() { # port name
  for _ in $(seq 1 150); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "$2 did not start on port $1" >&2
  return 1
}

start_moto() { # log file
  local port; port=$(free_port)
  "$root/.tools/venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$1" 2>&1 &
  EMULATOR_PIDS+=($!)
  wait_for_port "$port" moto
  export LD_TEST_MOTO_ENDPOINT="http://127.0.0.1:$port"
  local creds
  creds=$("$root/.tools/venv/bin/python" "$root/tests/support/ddb.py" moto-auth "$LD_TEST_MOTO_ENDPOINT")
  LD_TEST_MOTO_ACCESS_KEY_ID=$(echo "$creds" | "$root/.tools/venv/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["access_key_id"])')
  LD_TEST_MOTO_SECRET_ACCESS_KEY=$(echo "$creds" | "$root/.tools/venv/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["secret_access_key"])')
  export LD_TEST_MOTO_ACCESS_KEY_ID LD_TEST_MOTO_SECRET_ACCESS_KEY
  echo "moto on $LD_TEST_MOTO_ENDPOINT (SigV4 checking on)" >&2
}

start_dynalite() { # log file
  local port; port=$(free_port)
  node "$root/.tools/node/node_modules/dynalite/cli.js" --host 127.0.0.1 --port "$port" \
    --createTableMs 0 --deleteTableMs 0 --updateTableMs 0 >"$1" 2>&1 &
  EMULATOR_PIDS+=($!)
  wait_for_port "$port" dynalite
  export LD_TEST_DYNALITE_ENDPOINT="http://127.0.0.1:$port"
  echo "dynalite on $LD_TEST_DYNALITE_ENDPOINT" >&2
}
