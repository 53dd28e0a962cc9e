"""Ingest with a license key: custom events (Event API) and metrics (Metric API).

Protocol (New Relic docs):

* Event API: ``POST {events_url}`` with a JSON array of events, ``Api-Key: <license key>``,
  gzip advised, at most 1 MB (10^6 bytes) per POST; 200 on success (202 accepted too).
  Malformed events are accepted and surface later as ``NrIntegrationError`` events, which is
  why :mod:`.events` enforces the attribute limits before sending.
* Metric API: ``POST {metrics_url}`` with ``[{"common": {...}, "metrics": [...]}]``, same key
  and size limit; 202 on success; 400/403/413/429 (``Retry-After``)/5xx.

Resending, and duplicates. Neither API deduplicates: a batch that New Relic stored and then
failed to acknowledge would be stored twice if resent. The retry policy (:mod:`.transport`)
therefore resends a POST only when it was refused or never arrived:

* the connection was never made (refused, connect timeout): always safe;
* 408, 429 (after ``Retry-After``) and 5xx: New Relic takes a batch only with a 2xx and
  documents retrying these (its own Telemetry SDKs do). A collector that stored the data and
  still answered 5xx would cause a duplicate; the protocol gives no way to tell, and the
  events carry ``runId``/``partitionKey``/``operation``, so a duplicate is visible
  (``uniqueCount``) and ``latest()`` per facet is unaffected;
* no answer after the body was sent (read timeout, dropped connection): **not** resent, since
  the batch may have landed. The error says so; ``ult newrelic send`` resends after a check.

A 413 is never resent as is: the batch is split in two halves, sent separately (recursively);
a single item still too large raises.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import requests

from ult_pipeline.newrelic.events import check_event
from ult_pipeline.newrelic.limits import (
    EVENT_MAX_AGE_S,
    MAX_ATTRIBUTE_NAME_LENGTH,
    MAX_EVENT_ATTRIBUTES,
    MAX_METRIC_ATTRIBUTES,
    MAX_PAYLOAD_BYTES,
    MAX_STRING_VALUE_LENGTH,
    METRIC_MAX_AGE_S,
)
from ult_pipeline.newrelic.transport import (
    RETRY_STATUSES,
    USER_AGENT,
    NewRelicEndpoints,
    NewRelicError,
    SessionClient,
    attempts_of,
    failure_of,
    retry_policy,
)

DEFAULT_MAX_BATCH_BYTES = MAX_PAYLOAD_BYTES


@dataclass(frozen=True)
class SendReport:
    """What a ``send_*`` call delivered: accepted POSTs, items in them, HTTP attempts, gzipped bytes accepted."""

    batches: int
    events: int
    attempts: int
    bytes_sent: int


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


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def _key_hint(key: str) -> str:
    """Say what kind of key this looks like, without revealing it (only the public prefix)."""
    if key.startswith("NRAK-"):
        return " The configured key looks like a user key (NRAK-...), not a license key."
    if key.startswith("NRII-"):
        return " The configured key looks like an Insights insert key (NRII-...); prefer a license key."
    return ""


class NewRelicClient(SessionClient):
    """Send custom events (Event API) and metrics (Metric API) with a license (ingest) key.

    Items are batched so that each POST's JSON is at most ``max_batch_bytes`` both before and
    after gzip. At most ``max_attempts`` requests per batch (see the module docstring for what
    is resent). 400/401/403 and other 4xx raise :class:`NewRelicError` at once.
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
        super().__init__(retry_policy(max_attempts, backoff_s, resend_unanswered=False))

    def __repr__(self) -> str:
        return (
            f"NewRelicClient(account_id={self.account_id}, license_key='***', endpoints={self.endpoints!r}, "
            f"max_attempts={self.max_attempts}, max_batch_bytes={self.max_batch_bytes})"
        )

    __str__ = __repr__

    def _secrets(self) -> list[str]:
        return [self._license_key]

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
        """One POST (urllib3 retries inside it); the final status (a success or 413), or raise."""
        headers = {
            "Api-Key": self._license_key,
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
            "User-Agent": USER_AGENT,
        }
        gave_up = f"New Relic {api.name} API: gave up on a batch of {n_items} item(s)"
        try:
            response = self._session.post(api.url, data=payload, headers=headers, timeout=self.timeout_s)
        except requests.RequestException as exc:
            attempts, never_sent = failure_of(exc)
            tally.attempts += attempts
            maybe = "" if never_sent else (
                " The last request was sent but got no answer: the batch may have been delivered, so it was not "
                "resent (New Relic does not deduplicate); check with NRQL before sending it again."
            )
            raise NewRelicError(
                f"{gave_up} after {attempts} attempt(s) to {api.url}; last: {self._transport_failure(exc)}.{maybe}",
                attempts=tally.attempts,
            ) from None
        tally.attempts += attempts_of(response)
        status = response.status_code
        if status in api.ok or status == 413:
            return status
        if status in RETRY_STATUSES:
            raise NewRelicError(
                f"{gave_up} after {attempts_of(response)} attempts to {api.url}; "
                f"last: HTTP {status}: {self._snippet(response)}",
                status=status,
                attempts=tally.attempts,
            )
        raise self._client_error(api, response, tally.attempts)

    def _client_error(self, api: _Api, response: requests.Response, attempts: int) -> NewRelicError:
        status = response.status_code
        body = self._snippet(response)
        where = f"New Relic {api.name} API ({api.url})"
        if status == 400:
            msg = (
                f"{where} rejected the payload as malformed (HTTP 400): check the JSON shape and New Relic's "
                f"limits ({MAX_EVENT_ATTRIBUTES} attributes per event, {MAX_METRIC_ATTRIBUTES} per metric, names "
                f"<= {MAX_ATTRIBUTE_NAME_LENGTH} chars, string values <= {MAX_STRING_VALUE_LENGTH} chars, event "
                f"timestamps within {EVENT_MAX_AGE_S // 3600} h, metric timestamps within the last "
                f"{METRIC_MAX_AGE_S // 3600} h)"
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
        return NewRelicError(f"{msg.rstrip('.')}. Response: {body}", status=status, attempts=attempts)
