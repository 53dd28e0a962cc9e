"""HTTP clients for New Relic: Event API and Metric API (ingest, license key) and NerdGraph NRQL (user key).

Protocol (New Relic docs):

* Event API: ``POST {events_url}`` with a JSON array of events, ``Api-Key: <license key>``,
  gzip advised, at most 1 MB (10^6 bytes) per POST; 200 on success (202 accepted too).
  Malformed events are accepted and surface later as ``NrIntegrationError`` events, which is
  why :mod:`.events` enforces the attribute limits before sending.
* Metric API: ``POST {metrics_url}`` with ``[{"common": {...}, "metrics": [...]}]``, same key
  and size limit; 202 on success; 400/403/413/429 (``Retry-After``)/5xx.
* NerdGraph: ``POST {nerdgraph_url}`` with a GraphQL query, header ``API-Key: <user key>``.

Keys never appear in ``repr()``, in exception messages, or in response bodies quoted in them.
"""

from __future__ import annotations

import email.utils
import gzip
import json
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Self

import requests

from ult_pipeline.newrelic.events import MAX_METRIC_ATTRIBUTES, check_event

DEFAULT_MAX_BATCH_BYTES = 1_000_000
_BACKOFF_CAP_S = 60.0
_BODY_SNIPPET = 300
_USER_AGENT = "ult-pipeline-newrelic/0.1"


class NewRelicError(Exception):
    """A New Relic request failed for good. The message never contains a key."""

    def __init__(self, message: str, *, status: int | None = None, attempts: int = 0) -> None:
        super().__init__(message)
        self.status = status
        self.attempts = attempts


@dataclass(frozen=True)
class SendReport:
    """What a ``send_*`` call delivered: accepted POSTs, items in them, HTTP attempts, gzipped bytes accepted."""

    batches: int
    events: int
    attempts: int
    bytes_sent: int


@dataclass(frozen=True)
class NewRelicEndpoints:
    events_url_template: str  # contains "{account_id}"
    metrics_url: str
    nerdgraph_url: str

    @classmethod
    def for_region(cls, region: str) -> NewRelicEndpoints:
        """New Relic's public endpoints for a data-center region, ``"US"`` or ``"EU"``."""
        key = region.strip().upper()
        if key == "US":
            return cls(
                events_url_template="https://insights-collector.newrelic.com/v1/accounts/{account_id}/events",
                metrics_url="https://metric-api.newrelic.com/metric/v1",
                nerdgraph_url="https://api.newrelic.com/graphql",
            )
        if key == "EU":
            return cls(
                events_url_template="https://insights-collector.eu01.nr-data.net/v1/accounts/{account_id}/events",
                metrics_url="https://metric-api.eu.newrelic.com/metric/v1",
                nerdgraph_url="https://api.eu.newrelic.com/graphql",
            )
        raise ValueError(f"unknown New Relic region {region!r}: expected 'US' or 'EU'")

    @classmethod
    def local(cls, base_url: str) -> NewRelicEndpoints:
        """The same paths under ``base_url`` (a local fake server)."""
        base = base_url.rstrip("/")
        return cls(
            events_url_template=base + "/v1/accounts/{account_id}/events",
            metrics_url=base + "/metric/v1",
            nerdgraph_url=base + "/graphql",
        )

    def events_url(self, account_id: int) -> str:
        return self.events_url_template.format(account_id=int(account_id))


def _redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _retry_after_s(response: requests.Response) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or an HTTP date), or None."""
    raw = response.headers.get("Retry-After")
    if not raw:
        return None
    raw = raw.strip()
    try:
        seconds = float(raw)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def _is_retryable(status: int) -> bool:
    return status in (408, 429) or 500 <= status <= 599


def _key_hint(key: str) -> str:
    """Say what kind of key this looks like, without revealing it (only the public prefix)."""
    if key.startswith("NRAK-"):
        return " The configured key looks like a user key (NRAK-...), not a license key."
    if key.startswith("NRII-"):
        return " The configured key looks like an Insights insert key (NRII-...); prefer a license key."
    return ""


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


@dataclass
class _Tally:
    batches: int = 0
    items: int = 0
    attempts: int = 0
    bytes_sent: int = 0

    def report(self) -> SendReport:
        return SendReport(batches=self.batches, events=self.items, attempts=self.attempts, bytes_sent=self.bytes_sent)


@dataclass(frozen=True)
class _Api:
    name: str  # "Event" / "Metric"
    url: str
    ok: frozenset[int]
    prefix: bytes
    suffix: bytes

    def body(self, items: Sequence[bytes]) -> bytes:
        return self.prefix + b",".join(items) + self.suffix


class _SessionClient:
    """One HTTP session per client, closed by `close()` or on leaving a `with` block."""

    _session: requests.Session

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class NewRelicClient(_SessionClient):
    """Send custom events (Event API) and metrics (Metric API) with a license (ingest) key.

    Items are batched so that each POST's JSON is at most ``max_batch_bytes`` both before and
    after gzip. Connection errors, 408, 429 and 5xx are retried up to ``max_attempts`` times
    per batch with exponential backoff (``backoff_s * 2**n``, capped at 60 s), or after
    ``Retry-After`` when the answer has one. A 413 splits the batch in two halves, sent
    separately (recursively); a single item still too large raises. 400/401/403 and other 4xx
    raise :class:`NewRelicError` at once.
    """

    def __init__(
        self,
        account_id: int,
        license_key: str,
        endpoints: NewRelicEndpoints,
        *,
        timeout_s: float = 30,
        max_attempts: int = 5,
        backoff_s: float = 1.0,
        max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not license_key:
            raise ValueError("a New Relic license (ingest) key is required")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.account_id = int(account_id)
        self._license_key = license_key
        self.endpoints = endpoints
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.max_batch_bytes = max_batch_bytes
        self._sleep = sleep
        self._session = requests.Session()

    def __repr__(self) -> str:
        return (
            f"NewRelicClient(account_id={self.account_id}, license_key='***', endpoints={self.endpoints!r}, "
            f"max_attempts={self.max_attempts}, max_batch_bytes={self.max_batch_bytes})"
        )

    __str__ = __repr__


    # ---- public API -------------------------------------------------------------------------

    def send_events(self, events: Sequence[Mapping[str, Any]]) -> SendReport:
        """POST custom events (each with an ``eventType``) to the Event API."""
        items = [_dumps(check_event(e)) for e in events]
        api = _Api("Event", self.endpoints.events_url(self.account_id), frozenset({200, 202}), b"[", b"]")
        return self._send(api, items)

    def send_metrics(self, metrics: Sequence[Mapping[str, Any]], common: Mapping[str, Any] | None = None) -> SendReport:
        """POST metrics (``{"name", "type", "value", "timestamp", "attributes"}``) to the Metric API.

        ``common`` (optional) becomes each batch's ``common`` block, e.g. ``{"attributes": {...}}``.
        """
        for m in metrics:
            if not isinstance(m.get("name"), str) or "value" not in m:
                raise ValueError(f"a metric needs a name and a value: {dict(m)!r}"[:300])
            if len(m.get("attributes") or {}) > MAX_METRIC_ATTRIBUTES:
                raise ValueError(f"metric {m['name']!r} has more than {MAX_METRIC_ATTRIBUTES} attributes")
        items = [_dumps(m) for m in metrics]
        prefix = b'[{"common":' + _dumps(dict(common)) + b',"metrics":[' if common else b'[{"metrics":['
        api = _Api("Metric", self.endpoints.metrics_url, frozenset({202, 200}), prefix, b"]}]")
        return self._send(api, items)

    # ---- batching ---------------------------------------------------------------------------

    def _batches(self, api: _Api, items: list[bytes]) -> list[list[bytes]]:
        overhead = len(api.prefix) + len(api.suffix)
        batches: list[list[bytes]] = []
        current: list[bytes] = []
        size = overhead
        for item in items:
            if overhead + len(item) > self.max_batch_bytes:
                raise NewRelicError(
                    f"one {api.name} API item is {len(item)} bytes of JSON, over the {self.max_batch_bytes}-byte "
                    "limit per POST; shorten its attributes"
                )
            extra = len(item) + (1 if current else 0)
            if current and size + extra > self.max_batch_bytes:
                batches.append(current)
                current, size = [], overhead
                extra = len(item)
            current.append(item)
            size += extra
        if current:
            batches.append(current)
        return batches

    def _send(self, api: _Api, items: list[bytes]) -> SendReport:
        tally = _Tally()
        for batch in self._batches(api, items):
            self._send_batch(api, batch, tally)
        return tally.report()

    def _send_batch(self, api: _Api, items: list[bytes], tally: _Tally) -> None:
        body = api.body(items)
        payload = gzip.compress(body)
        if len(items) > 1 and len(payload) > self.max_batch_bytes:  # never seen in practice: JSON compresses well
            self._split(api, items, tally)
            return
        status = self._post(api, payload, len(items), tally)
        if status == 413:
            if len(items) == 1:
                raise NewRelicError(
                    f"New Relic {api.name} API rejected a single item of {len(body)} bytes "
                    f"({len(payload)} gzipped) as too large (HTTP 413)",
                    status=413,
                    attempts=tally.attempts,
                )
            self._split(api, items, tally)
            return
        tally.batches += 1
        tally.items += len(items)
        tally.bytes_sent += len(payload)

    def _split(self, api: _Api, items: list[bytes], tally: _Tally) -> None:
        half = len(items) // 2
        self._send_batch(api, items[:half], tally)
        self._send_batch(api, items[half:], tally)

    # ---- HTTP -------------------------------------------------------------------------------

    def _post(self, api: _Api, payload: bytes, n_items: int, tally: _Tally) -> int:
        """POST with retries; the final status (a success or 413), or raise."""
        headers = {
            "Api-Key": self._license_key,
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
            "User-Agent": _USER_AGENT,
        }
        last = ""
        for attempt in range(1, self.max_attempts + 1):
            tally.attempts += 1
            delay = min(self.backoff_s * 2 ** (attempt - 1), _BACKOFF_CAP_S)
            try:
                response = self._session.post(api.url, data=payload, headers=headers, timeout=self.timeout_s)
            except requests.RequestException as exc:
                last = f"{type(exc).__name__}: {self._redact(str(exc))}"
            else:
                status = response.status_code
                if status in api.ok or status == 413:
                    return status
                if not _is_retryable(status):
                    raise self._client_error(api, response, tally.attempts)
                last = f"HTTP {status}: {self._snippet(response)}"
                retry_after = _retry_after_s(response)
                if retry_after is not None:
                    delay = retry_after
            if attempt < self.max_attempts:
                self._sleep(delay)
        raise NewRelicError(
            f"New Relic {api.name} API: gave up on a batch of {n_items} item(s) after {self.max_attempts} "
            f"attempts to {api.url}; last: {last}",
            attempts=tally.attempts,
        )

    def _redact(self, text: str) -> str:
        return _redact(text, [self._license_key])

    def _snippet(self, response: requests.Response) -> str:
        return self._redact(response.text[:_BODY_SNIPPET]).strip() or "(empty body)"

    def _client_error(self, api: _Api, response: requests.Response, attempts: int) -> NewRelicError:
        status = response.status_code
        body = self._snippet(response)
        where = f"New Relic {api.name} API ({api.url})"
        if status == 400:
            msg = (
                f"{where} rejected the payload as malformed (HTTP 400): check the JSON shape and New Relic's "
                "limits (255 attributes per event, 100 per metric, names <= 255 chars, string values <= 4096 "
                "chars, metric timestamps within the last 48 h)"
            )
        elif status == 401:
            msg = (
                f"{where} found no valid key (HTTP 401): send a license (ingest) key of account "
                f"{self.account_id} in the Api-Key header"
            )
        elif status == 403:
            msg = (
                f"{where} refused the key (HTTP 403): the {api.name} API needs a license (ingest) key, not a "
                f"user key, and it must belong to account {self.account_id} (a key of another account, or "
                f"an EU key on the US endpoint or vice versa, is refused).{_key_hint(self._license_key)}"
            )
        else:
            msg = f"{where} answered HTTP {status}"
        return NewRelicError(f"{msg}. Response: {body}", status=status, attempts=attempts)


# ---- NerdGraph ------------------------------------------------------------------------------

OTHER_API_NERDGRAPH_NRQL_QUERY = "query($id: Int!, $nrql: Nrql!) { actor { account(id: $id) { nrql(query: $nrql) { results } } } }"


class NerdGraphClient(_SessionClient):
    """Run NRQL through NerdGraph with a user key (``API-Key`` header).

    The NRQL travels as a GraphQL variable, so it needs no escaping in the GraphQL document.
    Connection errors, 429 and 5xx are retried (``max_attempts`` in all); GraphQL ``errors``
    raise :class:`NewRelicError` with their messages.
    """

    def __init__(
        self,
        account_id: int,
        user_key: str,
        endpoints: NewRelicEndpoints,
        timeout_s: float = 30,
        max_attempts: int = 3,
        *,
        backoff_s: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not user_key:
            raise ValueError("a New Relic user key is required for NerdGraph")
        self.account_id = int(account_id)
        self._user_key = user_key
        self.endpoints = endpoints
        self.timeout_s = timeout_s
        self.max_attempts = max(1, max_attempts)
        self.backoff_s = backoff_s
        self._sleep = sleep
        self._session = requests.Session()

    def __repr__(self) -> str:
        return f"NerdGraphClient(account_id={self.account_id}, user_key='***', endpoints={self.endpoints!r})"

    __str__ = __repr__


    def _redact(self, text: str) -> str:
        return _redact(text, [self._user_key])

    def nrql(self, query: str) -> list[dict[str, Any]]:
        """The ``results`` of one NRQL query in this account."""
        url = self.endpoints.nerdgraph_url
        payload = {"query": OTHER_API_NERDGRAPH_NRQL_QUERY, "variables": {"id": self.account_id, "nrql": query}}
        headers = {"API-Key": self._user_key, "Content-Type": "application/json", "User-Agent": _USER_AGENT}
        last = ""
        for attempt in range(1, self.max_attempts + 1):
            delay = min(self.backoff_s * 2 ** (attempt - 1), _BACKOFF_CAP_S)
            try:
                response = self._session.post(url, json=payload, headers=headers, timeout=self.timeout_s)
            except requests.RequestException as exc:
                last = f"{type(exc).__name__}: {self._redact(str(exc))}"
            else:
                status = response.status_code
                if status == 200:
                    return self._results(response)
                body = self._redact(response.text[:_BODY_SNIPPET]).strip() or "(empty body)"
                if status in (401, 403):
                    raise NewRelicError(
                        f"NerdGraph ({url}) refused the key (HTTP {status}): NRQL queries need a user key "
                        f"(NRAK-...) with access to account {self.account_id}. Response: {body}",
                        status=status,
                        attempts=attempt,
                    )
                if not _is_retryable(status):
                    raise NewRelicError(
                        f"NerdGraph ({url}) answered HTTP {status}: {body}", status=status, attempts=attempt
                    )
                last = f"HTTP {status}: {body}"
                retry_after = _retry_after_s(response)
                if retry_after is not None:
                    delay = retry_after
            if attempt < self.max_attempts:
                self._sleep(delay)
        raise NewRelicError(
            f"NerdGraph ({url}): gave up after {self.max_attempts} attempts; last: {last}", attempts=self.max_attempts
        )

    def _results(self, response: requests.Response) -> list[dict[str, Any]]:
        try:
            answer = response.json()
        except ValueError:
            raise NewRelicError(
                f"NerdGraph answered with something that is not JSON: {self._redact(response.text[:_BODY_SNIPPET])}"
            ) from None
        errors = answer.get("errors") if isinstance(answer, dict) else None
        if errors:
            messages = "; ".join(str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors)
            raise NewRelicError(f"NerdGraph NRQL query for account {self.account_id} failed: {self._redact(messages)}")
        try:
            results = answer["data"]["actor"]["account"]["nrql"]["results"]
        except (KeyError, TypeError):
            raise NewRelicError(
                f"NerdGraph answer for account {self.account_id} has no data.actor.account.nrql.results: "
                f"{self._redact(json.dumps(answer)[:_BODY_SNIPPET])}"
            ) from None
        if not isinstance(results, list):
            raise NewRelicError(f"NerdGraph NRQL results are not a list: {type(results).__name__}")
        return results


# ---- server-side view of a test window ------------------------------------------------------


def nrql_string(value: str) -> str:
    """A single-quoted NRQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def server_view_nrql(app_name: str, since_ms: int, until_ms: int) -> str:
    """NRQL giving, per transaction name, the count, error count and p95 ``duration`` (seconds) in a window.

    ``since_ms``/``until_ms`` are Unix epoch milliseconds (NRQL takes them as is).
    """
    if until_ms <= since_ms:
        raise ValueError(f"empty window: since {since_ms} >= until {until_ms}")
    return (
        "SELECT count(*) AS 'count', filter(count(*), WHERE error IS true) AS 'errors', "
        "percentile(duration, 95) AS 'p95' "
        f"FROM Transaction WHERE appName = {nrql_string(app_name)} "
        f"SINCE {int(since_ms)} UNTIL {int(until_ms)} FACET name LIMIT MAX"
    )


_OPERATION_TYPES = ("query", "mutation", "subscription")


def operation_from_transaction_name(name: str) -> str:
    """The GraphQL operation name in a New Relic transaction name.

    Assumption (not checked against a live account): with ``NODE_ENV=production`` the
    service's transactions are named after the GraphQL operation, in one of these shapes:

    * ``WebTransaction/Expressjs/POST//user/myUser`` -> ``myUser`` (last path segment);
    * ``WebTransaction/Expressjs/POST//graphql/query/myUser`` and New Relic's Apollo
      instrumentation, ``.../query/<operationName>/<deepest.unique.path>`` -> the segment after
      ``query``/``mutation``/``subscription`` (for ``<anonymous>`` operations, the first field of
      the deepest path);
    * ``.../query myUser`` (type and name separated by a space) -> ``myUser``.

    Anything else yields its last non-empty segment, so unknown shapes still group stably.
    """
    segments = [s.strip() for s in name.split("/") if s.strip()]
    if not segments:
        return name
    for i, seg in enumerate(segments[1:], start=1):
        head, _, rest = seg.partition(" ")
        if head.lower() in _OPERATION_TYPES and rest.strip():
            return rest.strip().split("(")[0].strip()
        if seg.lower() in _OPERATION_TYPES and i + 1 < len(segments):
            candidate = segments[i + 1]
            if candidate == "<anonymous>" and i + 2 < len(segments):
                return segments[i + 2].split(".")[0]
            return candidate
    return segments[-1].split("(")[0].strip()


def _number(value: Any) -> float | None:
    if isinstance(value, Mapping):  # percentile(...) answers {"95": x}
        value = next(iter(value.values()), None)
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def parse_server_view(results: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Map the rows of :func:`server_view_nrql` to ``operation -> {"count", "errors", "p95_ms"}``.

    Several transaction names mapping to one operation are merged: counts and errors add up,
    ``p95_ms`` is the largest p95 (conservative; exact percentiles cannot be merged). A row
    without a p95 gives ``nan``.
    """
    view: dict[str, dict[str, Any]] = {}
    for row in results:
        name = row.get("name", row.get("facet"))
        if isinstance(name, (list, tuple)):
            name = name[0] if name else None
        if not name:
            continue
        operation = operation_from_transaction_name(str(name))
        count = int(_number(row.get("count")) or 0)
        errors = int(_number(row.get("errors")) or 0)
        p95_s = _number(row.get("p95", row.get("percentile.duration")))
        p95_ms = p95_s * 1000.0 if p95_s is not None else math.nan
        entry = view.get(operation)
        if entry is None:
            view[operation] = {"count": count, "errors": errors, "p95_ms": p95_ms}
        else:
            entry["count"] += count
            entry["errors"] += errors
            if math.isnan(entry["p95_ms"]) or (not math.isnan(p95_ms) and p95_ms > entry["p95_ms"]):
                entry["p95_ms"] = p95_ms
    return view
