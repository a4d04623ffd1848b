"""A LaunchDarkly stand-in for the tests: a real HTTP server on 127.0.0.1
serving what a server-side SDK reads, controlled through stdin.

    LD_STANDIN_SDK_KEY=... python ld_standin.py < commands

Prints the port it listens on as the first stdout line. Routes:
  GET  /all               the streaming service: server-sent events, first a
                          `put` of the whole data ({"path": "/", "data": ...}),
                          then each `patch` and `delete` the commands send;
  GET  /sdk/latest-all    the polling service: the whole data as JSON;
  POST /bulk, /diagnostic the events service: 202.
A request whose Authorization header is not the key (from the environment,
never the command line) gets 401.

Commands, one JSON object a line; each is answered with one line
{"ok": true, "streams": accepted stream connections, "open": open ones,
 "unauthorized": 401s answered, "polls": /sdk/latest-all answers}:
  {"op": "put", "data": {"flags": {...}, "segments": {...}}}  replace the data,
                          send it to every open stream as a `put`;
  {"op": "patch", "kind": "flags"|"segments", "item": {...}}  send a `patch`
                          (the data keeps the newer version);
  {"op": "delete", "kind": ..., "key": ..., "version": N}      send a `delete`;
  {"op": "drop", "data": {...}?}  close every open stream (answered once they
                          are closed), with new data for the next connection;
  {"op": "key", "key": "..."}   accept only this SDK key from now on;
  {"op": "status"}.
"""
import json
import os
import queue
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Condition()
STATE = {
    "key": os.environ["LD_STANDIN_SDK_KEY"],
    "data": {"flags": {}, "segments": {}},
    "streams": [],  # one queue per open stream
    "accepted": 0,
    "unauthorized": 0,
    "polls": 0,
}
DROP = object()


def status():
    return {
        "ok": True,
        "streams": STATE["accepted"],
        "open": len(STATE["streams"]),
        "unauthorized": STATE["unauthorized"],
        "polls": STATE["polls"],
    }


def event(name, payload):
    return f"event: {name}\ndata: {json.dumps(payload)}\n\n".encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def authorized(self):
        with LOCK:
            if self.headers.get("Authorization") == STATE["key"]:
                return True
            STATE["unauthorized"] += 1
        self.answer(401, b'{"message":"invalid SDK key"}')
        return False

    def answer(self, status, body, content_type="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def do_GET(self):
        if self.path == "/all":
            if self.authorized():
                self.stream()
        elif self.path == "/sdk/latest-all":
            if self.authorized():
                with LOCK:
                    STATE["polls"] += 1
                    body = json.dumps(STATE["data"]).encode()
                self.answer(200, body)
        else:
            self.answer(404, b"{}")

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        if self.path in ("/bulk", "/diagnostic"):
            self.answer(202, b"")
        else:
            self.answer(404, b"{}")

    def stream(self):
        events = queue.Queue()
        with LOCK:
            STATE["accepted"] += 1
            STATE["streams"].append(events)
            first = event("put", {"path": "/", "data": STATE["data"]})
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(first)
            self.wfile.flush()
            while True:
                item = events.get()
                if item is DROP:
                    break
                self.wfile.write(item)
                self.wfile.flush()
        except OSError:
            pass
        finally:
            with LOCK:
                STATE["streams"].remove(events)
                LOCK.notify_all()
            self.close_connection = True


def broadcast(payload):
    for events in STATE["streams"]:
        events.put(payload)


def command(cmd):
    op = cmd["op"]
    with LOCK:
        data = STATE["data"]
        if op == "put":
            STATE["data"] = cmd["data"]
            broadcast(event("put", {"path": "/", "data": cmd["data"]}))
        elif op == "patch":
            item = cmd["item"]
            items = data.setdefault(cmd["kind"], {})
            held = items.get(item["key"])
            if held is None or held["version"] < item["version"]:
                items[item["key"]] = item
            broadcast(event("patch", {"path": f"/{cmd['kind']}/{item['key']}", "data": item}))
        elif op == "delete":
            key, version = cmd["key"], cmd["version"]
            items = data.setdefault(cmd["kind"], {})
            held = items.get(key)
            if held is None or held["version"] < version:
                items[key] = {"key": key, "version": version, "deleted": True}
            broadcast(event("delete", {"path": f"/{cmd['kind']}/{key}", "version": version}))
        elif op == "drop":
            if "data" in cmd:
                STATE["data"] = cmd["data"]
            broadcast(DROP)
            LOCK.wait_for(lambda: not STATE["streams"], timeout=30)
        elif op == "key":
            STATE["key"] = cmd["key"]
        elif op != "status":
            return {"ok": False, "error": f"unknown op {op!r}"}
        return status()


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(server.server_address[1], flush=True)
    for line in sys.stdin:
        if line.strip():
            print(json.dumps(command(json.loads(line))), flush=True)
    server.shutdown()


if __name__ == "__main__":
    main()
