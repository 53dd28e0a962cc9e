"""NRQL through NerdGraph with a user key.

NerdGraph: ``POST {nerdgraph_url}`` with a GraphQL query, header ``API-Key: <user key>``. An
NRQL query only reads, so it is resent on every transport failure (also when the request
may have arrived), on 408, 429 (after ``Retry-After``) and 5xx: see :mod:`.transport`.
"""

from __future__ import annotations

import json
from typing import Any

import requests

from ult_pipeline.newrelic.transport import (
    BODY_SNIPPET,
    RETRY_STATUSES,
    USER_AGENT,
    NewRelicEndpoints,
    NewRelicError,
    SessionClient,
    attempts_of,
    failure_of,
    retry_policy,
)

OTHER_API_NERDGRAPH_NRQL_QUERY = "query($id: Int!, $nrql: Nrql!) { actor { account(id: $id) { nrql(query: $nrql) { results } } } }"


class NerdGraphClient(SessionClient):
    """Run NRQL through NerdGraph with a user key (``API-Key`` header).

    The NRQL travels as a GraphQL variable, so it needs no escaping in the GraphQL document.
    At most ``max_attempts`` requests per query; GraphQL ``errors`` raise
    :class:`NewRelicError` with their messages.
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
    ) -> None:
        if not user_key:
            raise ValueError("a New Relic user key is required for NerdGraph")
        self.account_id = int(account_id)
        self._user_key = user_key
        self.endpoints = endpoints
        self.timeout_s = timeout_s
        self.max_attempts = max(1, max_attempts)
        self.backoff_s = backoff_s
        super().__init__(retry_policy(self.max_attempts, backoff_s, resend_unanswered=True))

    def __repr__(self) -> str:
        return f"NerdGraphClient(account_id={self.account_id}, user_key='***', endpoints={self.endpoints!r})"

    __str__ = __repr__

    def _secrets(self) -> list[str]:
        return [self._user_key]

    def nrql(self, query: str) -> list[dict[str, Any]]:
        """The ``results`` of one NRQL query in this account."""
        url = self.endpoints.nerdgraph_url
        payload = {"query": OTHER_API_NERDGRAPH_NRQL_QUERY, "variables": {"id": self.account_id, "nrql": query}}
        headers = {"API-Key": self._user_key, "Content-Type": "application/json", "User-Agent": USER_AGENT}
        try:
            response = self._session.post(url, json=payload, headers=headers, timeout=self.timeout_s)
        except requests.RequestException as exc:
            attempts, _ = failure_of(exc)
            raise NewRelicError(
                f"NerdGraph ({url}): gave up after {attempts} attempt(s); last: {self._transport_failure(exc)}",
                attempts=attempts,
            ) from None
        status, attempts = response.status_code, attempts_of(response)
        if status == 200:
            return self._results(response)
        body = self._snippet(response)
        if status in (401, 403):
            raise NewRelicError(
                f"NerdGraph ({url}) refused the key (HTTP {status}): NRQL queries need a user key "
                f"(NRAK-...) with access to account {self.account_id}. Response: {body}",
                status=status,
                attempts=attempts,
            )
        if status in RETRY_STATUSES:
            raise NewRelicError(
                f"NerdGraph ({url}): gave up after {attempts} attempts; last: HTTP {status}: {body}",
                status=status,
                attempts=attempts,
            )
        raise NewRelicError(f"NerdGraph ({url}) answered HTTP {status}: {body}", status=status, attempts=attempts)

    def _results(self, response: requests.Response) -> list[dict[str, Any]]:
        try:
            answer = response.json()
        except ValueError:
            raise NewRelicError(
                f"NerdGraph answered with something that is not JSON: {self._redact(response.text[:BODY_SNIPPET])}"
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
                f"{self._redact(json.dumps(answer)[:BODY_SNIPPET])}"
            ) from None
        if not isinstance(results, list):
            raise NewRelicError(f"NerdGraph NRQL results are not a list: {type(results).__name__}")
        return results
