"""A stand-in for LaunchDarkly's events service, as a real process for the
events tests: it records every request (method, path with query, headers,
body, and the wall-clock times it arrived and was answered) and answers each
with a configurable status after a configurable delay.

    python3 events_receiver.py [--status 202] [--delay-ms 0]

It listens on 127.0.0.1 on a free port and prints `port N` on its first line
of stdout. Control routes (not recorded):
    GET  /_requests          the recorded requests, as a JSON list
    POST /_control           {"status": N, "delay_ms": N}: how later requests are answered
"""

import argparse
import base64
import gzip
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
REQUESTS = []
BEHAVIOUR = {"status": 202, "delay_ms": 0}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _reply(self, status, body=b"", content_type="application/json"):
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self):
        """The body, de-chunked and, when gzipped, decompressed."""
        if "chunked" in (self.headers.get("transfer-encoding") or "").lower():
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                body += self.rfile.read(size)
                self.rfile.readline()
        else:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
        if (self.headers.get("content-encoding") or "").lower() == "gzip":
            body = gzip.decompress(body)
        return body

    def _record(self):
        arrived = time.time()
        body = self._body()
        with LOCK:
            status, delay_ms = BEHAVIOUR["status"], BEHAVIOUR["delay_ms"]
        time.sleep(delay_ms / 1000)
        record = {
            "method": self.command,
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body_base64": base64.b64encode(body).decode(),
            "arrived": arrived,
            "answered": time.time(),
            "status": status,
        }
        try:
            record["json"] = json.loads(body) if body else None
        except ValueError:
            record["json"] = None
        with LOCK:
            REQUESTS.append(record)
        self._reply(status)

    def do_GET(self):
        if self.path == "/_requests":
            with LOCK:
                body = json.dumps(REQUESTS).encode()
            self._reply(200, body)
        else:
            self._record()

    def do_POST(self):
        if self.path == "/_control":
            change = json.loads(self._body() or b"{}")
            with LOCK:
                BEHAVIOUR.update({k: change[k] for k in ("status", "delay_ms") if k in change})
            self._reply(200)
        else:
            self._record()


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        """A client that went away mid-request (a server under test that
        was stopped) is no error of the receiver's."""


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--status", type=int, default=202)
    parser.add_argument("--delay-ms", type=int, default=0)
    args = parser.parse_args()
    BEHAVIOUR.update({"status": args.status, "delay_ms": args.delay_ms})
    server = Server(("127.0.0.1", 0), Handler)
    print(f"port {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
