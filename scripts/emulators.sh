# Sourced by the demo, test and bench scripts (with $root set): starts moto
# (with SigV4 checking on) and dynalite on free 127.0.0.1 ports, logging to
# $logs, and stops them on exit.
# Exports LD_TEST_MOTO_ENDPOINT, LD_TEST_MOTO_ACCESS_KEY_ID,
# LD_TEST_MOTO_SECRET_ACCESS_KEY and LD_TEST_DYNALITE_ENDPOINT.

logs="$root/target/emulator-logs"
mkdir -p "$logs"

EMULATOR_PIDS=()
# Stops every emulator: SIGTERM, then SIGKILL for any still running after a
# grace period of about 5 s.
stop_emulators() {
  local pid alive
  for pid in "${EMULATOR_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for _ in $(seq 1 50); do
    alive=0
    for pid in "${EMULATOR_PIDS[@]}"; do
      if kill -0 "$pid" 2>/dev/null; then alive=1; fi
    done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for pid in "${EMULATOR_PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      echo "emulator $pid ignored SIGTERM: killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  for pid in "${EMULATOR_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  EMULATOR_PIDS=()
}
trap stop_emulators EXIT

free_port() {
  "$root/.tools/venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_for_port() { # port name pid log
  for _ in $(seq 1 150); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    if ! kill -0 "$3" 2>/dev/null; then
      echo "$2 exited before listening on port $1; its log ($4):" >&2
      tail -n 20 "$4" >&2 || true
      return 1
    fi
    sleep 0.1
  done
  echo "$2 did not start on port $1 within 15 s" >&2
  return 1
}

start_moto() { # log file
  local port; port=$(free_port)
  "$root/.tools/venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$1" 2>&1 &
  EMULATOR_PIDS+=($!)
  wait_for_port "$port" moto "$!" "$1"
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
  wait_for_port "$port" dynalite "$!" "$1"
  export LD_TEST_DYNALITE_ENDPOINT="http://127.0.0.1:$port"
  echo "dynalite on $LD_TEST_DYNALITE_ENDPOINT" >&2
}
