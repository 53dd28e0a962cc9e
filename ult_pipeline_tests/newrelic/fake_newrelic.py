"""A local stand-in for New Relic's Event API, Metric API and NerdGraph (stdlib only).

    with FakeNewRelic(license_key="lic", user_key="NRAK-user", account_id=123) as nr:
        endpoints = NewRelicEndpoints.local(nr.base_url)
        nr.script(429, headers={"Retry-After": "1"})      # next ingest request gets a 429
        ...
        nr.requests                                        # every request, decompressed
        nr.requests[1].at - nr.requests[0].at              # seconds between their arrivals

Paths: ``POST /v1/accounts/<id>/events`` (200 ``{"success": true, "uuid": ...}``),
``POST /metric/v1`` (202 ``{"requestId": ...}``), ``POST /graphql`` (NerdGraph, answers
``{"data": {"actor": {"account": {"nrql": {"results": nr.nrql_results}}}}}``).

Checks, in order: the key (``Api-Key`` for ingest, ``API-Key`` for NerdGraph -- HTTP headers
are case-insensitive, so both spellings work everywhere) -> 403; the account id in the
events path (when ``account_id`` is set) -> 403; scripted answers queued with :meth:`script`;
``max_payload_bytes`` (decompressed JSON size) -> 413; gzip/JSON/shape validity -> 400.

Like New Relic, it accepts events that break the documented limits (too many attributes, long names
or values, a timestamp more than 24 h away) with a 200; ``kept_events`` leaves out those New Relic
would then drop, ``dropped_events`` says why.
"""

from __future__ import annotations

import gzip
import json
import re
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

_EVENTS_PATH = re.compile(r"^/v1/accounts/(\d+)/events$")
# What New Relic documents it keeps ("Data requirements and limits for custom event data", Metric API
# limits), written out here rather than imported, so the project's own constants are checked against it.
_EVENT_ATTRIBUTES, _NAME_CHARS, _VALUE_CHARS, _EVENT_WINDOW_S = 255, 255, 4096, 24 * 3600
_METRIC_ATTRIBUTES, _METRIC_AGE_S = 100, 48 * 3600


def _ms(value: float) -> float:
    return value * 1000 if value < 100_000_000_000 else value


def _event_dropped(event: dict[str, Any], now_s: float | None = None) -> str | None:
    """Why New Relic would drop an accepted event, or None."""
    if len(event) > _EVENT_ATTRIBUTES:
        return f"{len(event)} attributes (at most {_EVENT_ATTRIBUTES})"
    if any(len(name) > _NAME_CHARS for name in event):
        return f"an attribute name over {_NAME_CHARS} characters"
    if any(isinstance(v, str) and len(v) > _VALUE_CHARS for v in event.values()):
        return f"a string value over {_VALUE_CHARS} characters"
    now_ms = (time.time() if now_s is None else now_s) * 1000
    if "timestamp" in event and abs(now_ms - _ms(event["timestamp"])) > _EVENT_WINDOW_S * 1000:
        return "a timestamp more than 24 h from now"
    return None


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # as sent (original case)
    raw_body: bytes  # as sent (possibly gzipped)
    body: bytes  # decompressed
    json: Any  # parsed body, or None when it is not JSON
    status: int  # what the fake answered
    at: float = 0.0  # time.monotonic() when the request line arrived


    @property
    def kind(self) -> str:
        return _kind(self.path)

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lowered:
                return value
        return None


@dataclass
class ScriptedResponse:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None  # dict/list -> JSON, str/bytes -> as is, None -> a default error body
    kind: str | None = None  # "events" / "metrics" / "graphql" / None (any)
    delay_s: float = 0.0  # wait this long before answering (a client's read timeout)


def _kind(path: str) -> str:
    if _EVENTS_PATH.match(path):
        return "events"
    if path == "/metric/v1":
        return "metrics"
    if path == "/graphql":
        return "graphql"
    return "unknown"


class FakeNewRelic:
    """Threaded HTTP server on 127.0.0.1 (random port) speaking New Relic's ingest and NerdGraph protocol."""

    def __init__(
        self,
        license_key: str = "fake-license-key",
        user_key: str | None = "NRAK-FAKEUSERKEY",
        *,
        account_id: int | None = None,
        nrql_results: list[dict[str, Any]] | None = None,
        max_payload_bytes: int | None = None,
    ) -> None:
        self.license_key = license_key
        self.user_key = user_key
        self.account_id = account_id
        self.nrql_results: list[dict[str, Any]] = list(nrql_results or [])
        self.graphql_errors: list[dict[str, Any]] | None = None  # answer NerdGraph with these errors instead
        self.max_payload_bytes = max_payload_bytes
        self.requests: list[RecordedRequest] = []
        self._script: deque[ScriptedResponse] = deque()
        self._lock = threading.Lock()
        self._tls = threading.local()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle --------------------------------------------------------------------------

    def start(self) -> FakeNewRelic:
        handler = _make_handler(self)
        self._server = _Server(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-newrelic", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeNewRelic:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "FakeNewRelic is not running"
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ---- scripting and inspection -----------------------------------------------------------

    def script(
        self, status: int, *, headers: dict[str, str] | None = None, body: Any = None, kind: str | None = None,
        delay_s: float = 0.0,
    ) -> None:
        """Answer the next matching request (``kind``: events/metrics/graphql/None = any) with ``status``.

        ``delay_s``: the request is recorded at once, the answer is sent that much later.
        """
        with self._lock:
            self._script.append(ScriptedResponse(status, dict(headers or {}), body, kind, delay_s))

    def script_many(self, *statuses: int, kind: str | None = None) -> None:
        for status in statuses:
            self.script(status, kind=kind)

    def requests_to(self, kind: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.kind == kind]

    def accepted(self, kind: str) -> list[RecordedRequest]:
        """Requests of a kind that were answered with success."""
        return [r for r in self.requests_to(kind) if r.status in (200, 202)]

    def received_events(self) -> list[dict[str, Any]]:
        """Every event in accepted Event API posts, in order."""
        return [e for r in self.accepted("events") for e in r.json]

    def received_metrics(self) -> list[dict[str, Any]]:
        """Every metric in accepted Metric API posts, in order."""
        return [m for r in self.accepted("metrics") for block in r.json for m in block.get("metrics", [])]

    def kept_events(self, now_s: float | None = None) -> list[dict[str, Any]]:
        """The received events New Relic would store: those it accepts with a 200 and then drops
        (NrIntegrationError) are left out; see `dropped_events`."""
        return [e for e in self.received_events() if _event_dropped(e, now_s) is None]

    def dropped_events(self, now_s: float | None = None) -> list[tuple[dict[str, Any], str]]:
        """(event, why New Relic drops it) for each received event it would not store."""
        found = [(e, _event_dropped(e, now_s)) for e in self.received_events()]
        return [(e, why) for e, why in found if why is not None]

    def kept_metrics(self, now_s: float | None = None) -> list[dict[str, Any]]:
        """The received metrics New Relic would store (timestamps within the last 48 h, <= 100 attributes)."""
        now_ms = (time.time() if now_s is None else now_s) * 1000
        return [m for m in self.received_metrics()
                if len(m.get("attributes") or {}) <= _METRIC_ATTRIBUTES
                and now_ms - _ms(m.get("timestamp", now_ms)) <= _METRIC_AGE_S * 1000]

    def _next_scripted(self, kind: str) -> ScriptedResponse | None:
        with self._lock:
            for i, scripted in enumerate(self._script):
                if scripted.kind in (None, kind):
                    del self._script[i]
                    return scripted
        return None

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    # ---- protocol ---------------------------------------------------------------------------

    def _answer(
        self, method: str, path: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, dict[str, str], Any, bytes, Any, float]:
        """(status, headers, body, decompressed body, parsed json, delay before answering)."""
        status, extra, payload, body, parsed = self._answer_now(method, path, headers, raw)
        return status, extra, payload, body, parsed, self._tls.delay

    def _answer_now(
        self, method: str, path: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, dict[str, str], Any, bytes, Any]:
        self._tls.delay = 0.0  # per handler thread
        kind = _kind(path)
        lower = {k.lower(): v for k, v in headers.items()}
        body = raw
        if lower.get("content-encoding", "").lower() == "gzip":
            try:
                body = gzip.decompress(raw)
            except (OSError, EOFError):
                return 400, {}, {"error": "could not decompress the gzip body"}, raw, None
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        if method != "POST" or kind == "unknown":
            return 404, {}, {"error": f"no route {method} {path}"}, body, parsed

        key = lower.get("api-key")
        expected = self.user_key if kind == "graphql" else self.license_key
        if not key or key != expected:
            return 403, {}, {"error": "Forbidden"}, body, parsed
        if kind == "events" and self.account_id is not None:
            m = _EVENTS_PATH.match(path)
            if m and int(m.group(1)) != self.account_id:
                return 403, {}, {"error": "Forbidden"}, body, parsed

        scripted = self._next_scripted(kind)
        if scripted is not None:
            default = {"error": f"scripted {scripted.status}"}
            self._tls.delay = scripted.delay_s
            return scripted.status, scripted.headers, default if scripted.body is None else scripted.body, body, parsed

        if kind != "graphql" and self.max_payload_bytes is not None and len(body) > self.max_payload_bytes:
            return 413, {}, {"error": "Payload Too Large"}, body, parsed
        if parsed is None:
            return 400, {}, {"error": "invalid JSON"}, body, parsed

        if kind == "events":
            events = parsed if isinstance(parsed, list) else [parsed]
            if not all(isinstance(e, dict) and isinstance(e.get("eventType"), str) for e in events):
                return 400, {}, {"error": "every event needs an eventType"}, body, parsed
            return 200, {}, {"success": True, "uuid": str(uuid.uuid4())}, body, parsed
        if kind == "metrics":
            ok = isinstance(parsed, list) and all(
                isinstance(block, dict)
                and isinstance(block.get("metrics"), list)
                and all(isinstance(m, dict) and "name" in m and "value" in m for m in block["metrics"])
                for block in parsed
            )
            if not ok:
                return 400, {}, {"error": "invalid metric payload"}, body, parsed
            return 202, {}, {"requestId": str(uuid.uuid4())}, body, parsed
        # graphql
        if not isinstance(parsed, dict) or "query" not in parsed:
            return 400, {}, {"errors": [{"message": "a GraphQL request needs a query"}]}, body, parsed
        if self.graphql_errors:
            return 200, {}, {"errors": self.graphql_errors, "data": None}, body, parsed
        variables = parsed.get("variables") or {}
        if "nrql" not in parsed["query"] or ("$nrql" in parsed["query"] and "nrql" not in variables):
            return 200, {}, {"errors": [{"message": "no nrql query"}], "data": None}, body, parsed
        answer = {"data": {"actor": {"account": {"nrql": {"results": list(self.nrql_results)}}}}}
        return 200, {}, answer, body, parsed


@pytest.fixture
def fake_newrelic():
    """A running :class:`FakeNewRelic` with its default keys; import this name into a test module to use it."""
    with FakeNewRelic() as fake:
        yield fake


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Clients keep connections alive: do not wait for their handler threads on close.
    block_on_close = False


def _make_handler(fake: FakeNewRelic) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _handle(self) -> None:
            arrived = time.monotonic()
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            headers = {k: v for k, v in self.headers.items()}
            status, extra_headers, payload, body, parsed, delay_s = fake._answer(self.command, self.path, headers, raw)
            fake._record(RecordedRequest(self.command, self.path, headers, raw, body, parsed, status, arrived))
            if delay_s:
                time.sleep(delay_s)
            if isinstance(payload, bytes):
                data = payload
            elif isinstance(payload, str):
                data = payload.encode("utf-8")
            else:
                data = json.dumps(payload).encode("utf-8")
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in extra_headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting (delay_s)
                self.close_connection = True

        do_POST = _handle
        do_GET = _handle
        do_PUT = _handle

    return Handler
