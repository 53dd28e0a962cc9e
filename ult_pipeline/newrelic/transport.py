"""What the New Relic clients share: endpoints, the error type, redaction, and one retry policy.

Retries are urllib3's :class:`~urllib3.util.retry.Retry` mounted on a ``requests.Session``
(as in ``ult_pipeline.target_api.client``): 408, 429 and 5xx answers are resent with
exponential backoff (``backoff_s * 2**(n-1)`` from the second retry on, capped at 60 s; the
first retry is immediate) or after the answer's ``Retry-After`` when it has one; a connection
that was never made is always retried. Whether a request is resent after it may have reached
New Relic without an answer (read timeout, dropped connection) is the caller's choice
(``resend_unanswered``): see :mod:`.ingest` for why ingest does not.

Keys never appear in ``repr()``, in exception messages, or in response bodies quoted in them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Self

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError
from urllib3.util.retry import Retry

BACKOFF_CAP_S = 60.0
BODY_SNIPPET = 300
USER_AGENT = "ult-pipeline-newrelic/0.1"
#: Answers that mean "not taken, try again": New Relic documents 429 (with Retry-After) and 5xx.
RETRY_STATUSES = frozenset({408, 429, *range(500, 600)})


class NewRelicError(Exception):
    """A New Relic request failed for good. The message never contains a key."""

    def __init__(self, message: str, *, status: int | None = None, attempts: int = 0) -> None:
        super().__init__(message)
        self.status = status
        self.attempts = attempts


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


class _Retry(Retry):
    # urllib3 also resends a 413 that carries Retry-After; a 413 is for the caller to split.
    RETRY_AFTER_STATUS_CODES = frozenset({429, 503})

    def increment(self, *args: Any, **kwargs: Any) -> Self:
        try:
            return super().increment(*args, **kwargs)
        except MaxRetryError as exc:  # remember how many requests were made, for the error message
            exc.attempts = len(self.history) + 1  # type: ignore[attr-defined]
            raise


def retry_policy(max_attempts: int, backoff_s: float, *, resend_unanswered: bool) -> Retry:
    """At most ``max_attempts`` requests per call; POST is retried (every call here is a POST)."""
    n = max(0, max_attempts - 1)
    return _Retry(
        total=n, connect=n, read=n if resend_unanswered else 0, status=n, other=0,
        status_forcelist=RETRY_STATUSES, allowed_methods=frozenset({"POST"}),
        backoff_factor=backoff_s, backoff_max=BACKOFF_CAP_S, respect_retry_after_header=True,
        raise_on_status=False,  # the last 429/5xx comes back as a response: the caller words the error
    )


def attempts_of(response: requests.Response) -> int:
    """How many requests urllib3 made to get this response (1 without retries)."""
    retries = getattr(response.raw, "retries", None)
    return len(retries.history) + 1 if retries is not None else 1


def failure_of(exc: requests.RequestException) -> tuple[int, bool]:
    """(requests made, whether the last one provably never reached the server) for a transport error."""
    inner = exc.args[0] if exc.args else None
    if isinstance(inner, MaxRetryError):
        never_sent = isinstance(inner.reason, (NewConnectionError, ConnectTimeoutError))
        return getattr(inner, "attempts", 1), never_sent
    return 1, isinstance(exc, requests.ConnectTimeout)


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


class SessionClient:
    """One HTTP session per client with the retry policy mounted; closed by `close()` or a `with` block."""

    def __init__(self, retry: Retry) -> None:
        self._retry = retry
        self._session = requests.Session()
        adapter = HTTPAdapter(max_retries=retry)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)

    @property
    def retry(self) -> Retry:
        return self._retry

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _secrets(self) -> list[str]:
        raise NotImplementedError

    def _redact(self, text: str) -> str:
        return redact(text, self._secrets())

    def _snippet(self, response: requests.Response) -> str:
        return self._redact(response.text[:BODY_SNIPPET]).strip() or "(empty body)"

    def _transport_failure(self, exc: requests.RequestException) -> str:
        return f"{type(exc).__name__}: {self._redact(str(exc))}"
