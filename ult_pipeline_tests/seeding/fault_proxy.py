"""A fault-injecting HTTP proxy on 127.0.0.1 in front of the sandbox, for exactly-once tests.

It forwards every POST to the upstream service and answers with the upstream's answer,
except for the first `count` calls of a chosen GraphQL operation, where it applies a fault
*after* forwarding (so the call did land):

- ``"500"``: answers HTTP 500 instead of the service's answer;
- ``"drop"``: closes the connection without answering;
- ``"late"``: answers, but only after ``late_s`` (beyond the client's timeout);
- ``"refuse"``: answers 500 *without* forwarding (the call never lands).

Bounded: at most ``max_requests`` requests are forwarded, then every request gets 503, so
a runaway retry loop ends.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import requests

MODES = ("500", "drop", "late", "refuse")


@dataclass
class Fault:
    operation: str
    mode: str
    count: int = 1
    injected: int = 0


@dataclass
class FaultProxy:
    upstream: str
    late_s: float = 4.0
    max_requests: int = 2_000
    faults: list[Fault] = field(default_factory=list)
    operations: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    def inject(self, operation: str, mode: str, count: int = 1) -> Fault:
        if mode not in MODES:
            raise ValueError(f"unknown fault mode {mode!r}; known: {MODES}")
        fault = Fault(operation, mode, count)
        self.faults.append(fault)
        return fault

    def _fault_for(self, operation: str) -> Fault | None:
        with self._lock:
            self.operations.append(operation)
            for fault in self.faults:
                if fault.operation == operation and fault.injected < fault.count:
                    fault.injected += 1
                    return fault
        return None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}{urlsplit(self.upstream).path}"

    def start(self) -> FaultProxy:
        proxy = self
        upstream = urlsplit(self.upstream)
        base = f"{upstream.scheme}://{upstream.netloc}"
        session = requests.Session()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    operation = json.loads(body).get("operationName") or ""
                except ValueError:
                    operation = ""
                if len(proxy.operations) >= proxy.max_requests:
                    return self._answer(503, b"fault proxy: request budget spent")
                fault = proxy._fault_for(operation)
                if fault is not None and fault.mode == "refuse":
                    return self._answer(500, b"fault proxy: refused without forwarding")
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "authorization")}
                upstream_answer = session.post(base + self.path, data=body, headers=headers, timeout=30)
                if fault is None:
                    return self._answer(upstream_answer.status_code, upstream_answer.content)
                if fault.mode == "500":
                    return self._answer(500, b"fault proxy: the call was forwarded, its answer replaced")
                if fault.mode == "drop":
                    self.close_connection = True
                    return None  # nothing written: the client sees the connection closed
                time.sleep(proxy.late_s)  # "late"
                return self._answer(upstream_answer.status_code, upstream_answer.content)

            def _answer(self, status: int, data: bytes) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    self.close_connection = True  # the client gave up (late answer)

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            block_on_close = False

        self._server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
