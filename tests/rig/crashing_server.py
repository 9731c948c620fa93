"""A stand-in llama-server that crashes the way a CPU fault crashes the real one.

Run as ``python crashing_server.py --host H --port P ... [--no-repack]``. It answers
/health, /props and /v1/models like llama-server, and kills itself with SIGSEGV where
``CRASH_ON`` (an environment variable) says, unless ``--no-repack`` is on its command
line: ``probe`` on the raw ``/completion`` llmcli's start-up probe sends, ``chat`` on
the first ``/v1/chat/completions``, ``always`` on any request. The real binary cannot be
made to fault on a CPU that runs it fine, so this is how the tests reach those paths;
the crash while starting is shown with the real binary (tests/local/test_spawn_crash.py).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ARGV = sys.argv[1:]
HOST = ARGV[ARGV.index("--host") + 1]
PORT = int(ARGV[ARGV.index("--port") + 1])
ALIAS = ARGV[ARGV.index("--alias") + 1]
SAFE = "--no-repack" in ARGV
CRASH_ON = os.environ.get("CRASH_ON", "")


def crash_if(route: str) -> None:
    if not SAFE and CRASH_ON in (route, "always"):
        print(f"simulated CPU fault on {route}", flush=True)
        os.kill(os.getpid(), signal.SIGSEGV)
        # Some kernels (gVisor here) deliver a signal a process sends itself a moment
        # later: answer nothing meanwhile, as a faulting server would.
        time.sleep(60)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _send(self, status: int, body: bytes, kind: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("content-type", kind)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/health":
            self._send(200, b'{"status":"ok"}')
        elif self.path in ("/v1/models", "/models"):
            self._send(200, json.dumps({"data": [{"id": ALIAS}]}).encode())
        elif self.path == "/props":
            self._send(200, b'{"build_info":"fake"}')
        else:
            self._send(404, b'{"error":{"code":404,"message":"no"}}')

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        if self.path == "/completion":
            crash_if("probe")
            self._send(200, b'{"content":""}')
            return
        crash_if("chat")
        chunks = [
            {"choices": [{"index": 0, "delta": {"role": "assistant", "content": None}}]},
            {"choices": [{"index": 0, "delta": {"content": "Paris"}}]},
            {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        ]
        body = "".join(f"data: {json.dumps(chunk)}\n\n" for chunk in chunks) + "data: [DONE]\n\n"
        self._send(200, body.encode(), "text/event-stream")

    def log_message(self, format: str, *args: object) -> None:
        print(format % args, flush=True)


print(f"fake llama-server on {HOST}:{PORT}, repack {'off' if SAFE else 'on'}", flush=True)
ThreadingHTTPServer((HOST, PORT), Handler).serve_forever()
