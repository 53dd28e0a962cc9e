"""A GraphQL client for the user-service: retries transport failures, never GraphQL errors.

Queries (idempotent reads) are retried on connection errors, read errors and 5xx with
exponential backoff (urllib3's Retry). Mutations are not idempotent (a repeated
`createUsers` creates the users twice): they are resent only when the request provably
never reached the server (connection refused, connect timeout); any later failure raises
a `TransportError` with `may_have_landed=True`, and the caller decides (see
seeding/seeder.py). A body with `errors` is the server's answer about the request itself
and is raised at once, with the operation name and the server's messages (never the
credentials).
"""

from __future__ import annotations

import html
import json
import re
import threading
from typing import Literal

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError
from urllib3.util.retry import Retry

from ult_pipeline.target_api.documents import document


class GraphQLCallError(RuntimeError):
    """The service answered a call with GraphQL errors (validation or API input errors)."""

    def __init__(self, operation: str, errors: list[dict]):
        self.operation = operation
        self.errors = errors
        self.codes = sorted({code for e in errors for code in _codes(e)})
        messages = "; ".join(_describe(e) for e in errors[:5])
        super().__init__(f"{operation}: the service answered with errors: {messages}")


class TransportError(RuntimeError):
    """The call did not get a usable answer (after retries): connection, HTTP status, auth.

    ``may_have_landed`` is False only when the service provably did not run the call: the
    connection was never made (refused, connect timeout), or the request was refused before
    GraphQL ran (401, 413 and other 4xx). It is True when the request may have been executed
    (a 5xx, a read timeout, a dropped connection after sending, a 200 that is not JSON): for
    a mutation the caller must find out whether it took effect before sending it again.
    """

    def __init__(self, message: str, *, may_have_landed: bool):
        super().__init__(message)
        self.may_have_landed = may_have_landed


def _codes(error: dict) -> list[str]:
    """Every code of one GraphQL error: `extensions.code`, the real service's `extensions.exception.code`
    (e.g. the outer length check's ERR_INVALID_ARRAY_MAX_LENGTH under INTERNAL_SERVER_ERROR), and the
    per-element codes."""
    ext = error.get("extensions") or {}
    found = [ext["code"]] if ext.get("code") else []
    outer = (ext.get("exception") or {}).get("code")
    if isinstance(outer, str) and outer and outer not in found:
        found.append(outer)
    for inner in ext.get("errors") or (ext.get("exception") or {}).get("errors") or []:
        if isinstance(inner, dict) and inner.get("code"):
            found.append(inner["code"])
    return found


def element_errors(error: dict) -> list[dict]:
    """The per-element problems of one GraphQL error (`extensions.errors` in the sandbox,
    `extensions.exception.errors` in the real service), each with `code`, `index`,
    `message`; [] when it has none."""
    ext = error.get("extensions") or {}
    inner = ext.get("errors") or (ext.get("exception") or {}).get("errors") or []
    return [i for i in inner if isinstance(i, dict)]


def element_codes(error: dict) -> list[str]:
    """The per-element codes of one GraphQL error ([] when it has none)."""
    return [i["code"] for i in element_errors(error) if i.get("code")]


OperationKind = Literal["query", "mutation", "subscription"]
_FIRST_KEYWORD = re.compile(r"\s*(?:#[^\n]*\n\s*)*(query|mutation|subscription|fragment|\{)")


def operation_kind(document_text: str) -> OperationKind:
    """``query`` or ``mutation``, from the document's first keyword (`{` alone is a query).

    A document that starts with a fragment, or that cannot be read, counts as a mutation:
    treating a read as a write only costs retries, the reverse could duplicate data.
    """
    match = _FIRST_KEYWORD.match(document_text)
    if match is None or match.group(1) in ("fragment", "mutation"):
        return "mutation"
    return "query" if match.group(1) in ("query", "{") else "subscription"


def _describe(error: dict) -> str:
    ext = error.get("extensions") or {}
    inner = ext.get("errors") or (ext.get("exception") or {}).get("errors") or []
    details = ", ".join(f"{i.get('code')}: {i.get('message')}" for i in inner[:3] if isinstance(i, dict))
    outer = (ext.get("exception") or {}).get("code")
    if not details and isinstance(outer, str) and outer:
        details = outer
    return f"{error.get('message')}" + (f" ({details})" if details else "")


class GraphQLClient:
    def __init__(
        self, url: str, *, api_key: str | None = None, token: str | None = None,
        timeout: float = 30.0, retries: int = 4, backoff: float = 0.25,
    ):
        if not url:
            raise ValueError("the target's GraphQL URL is empty: set it (e.g. http://127.0.0.1:18080/user/)")
        self.url = url
        self._timeout = timeout
        # Every request is a POST: allowed_methods=None lets urllib3 retry it at all; what may
        # be retried is decided by the document's kind, not by the HTTP method.
        self._retries: dict[str, Retry] = {
            "query": Retry(
                total=retries, connect=retries, read=retries, status=retries, backoff_factor=backoff,
                status_forcelist=(500, 502, 503, 504), allowed_methods=None, raise_on_status=False,
            ),
            # A mutation is resent only when the connection was never made: read errors, 5xx
            # and anything else after the request was sent are not retried (read=0, other=0,
            # no status_forcelist) but raised as ambiguous.
            "mutation": Retry(
                total=retries, connect=retries, read=0, status=0, other=0, redirect=0, backoff_factor=backoff,
                status_forcelist=(), allowed_methods=None, raise_on_status=False,
            ),
        }
        # The API key makes the caller a super-admin (`Bearer`); a user's JWT goes raw.
        self._auth = f"Bearer {api_key}" if api_key else (token or "")
        self._local = threading.local()
        self._lock = threading.Lock()
        self._calls = 0

    def __repr__(self) -> str:
        return f"GraphQLClient(url={self.url!r})"

    def _session(self, kind: str = "query") -> requests.Session:
        # One session per thread and kind: connection pools are not shared between threads,
        # and the retry rules hang on the session's adapters.
        sessions: dict[str, requests.Session] = self._local.__dict__.setdefault("sessions", {})
        retry = self._retries["query" if kind == "query" else "mutation"]
        session = sessions.get(kind)
        if session is None:
            session = requests.Session()
            session.mount("http://", HTTPAdapter(max_retries=retry))
            session.mount("https://", HTTPAdapter(max_retries=retry))
            session.headers.update({"Content-Type": "application/json", "Authorization": self._auth})
            sessions[kind] = session
        return session

    @property
    def calls(self) -> int:
        return self._calls

    def call(self, operation: str, variables: dict | None = None) -> dict:
        """Send the project's document named ``operation``; returns `data`."""
        return self.execute(document(operation), variables, operation)

    def execute(self, query: str, variables: dict | None, operation: str) -> dict:
        """Send ``query``; returns `data`.

        Raises GraphQLCallError (the service answered with `errors`; nothing was written by a
        list-input mutation, which is all-or-nothing) or TransportError (see its
        ``may_have_landed``).
        """
        body = request_body(query, variables, operation)
        kind = operation_kind(query)
        with self._lock:
            self._calls += 1
        try:
            response = self._session(kind).post(self.url, data=body, timeout=self._timeout)
        except requests.RequestException as err:
            landed = not _never_connected(err)
            hint = " (it may have been executed: not resent)" if landed and kind != "query" else ""
            raise TransportError(
                f"{operation}: no answer from {self.url}{hint}: {type(err).__name__}: {err}", may_have_landed=landed,
            ) from None
        if response.status_code == 401:
            raise TransportError(
                f"{operation}: {self.url} refused the credentials (401: {answer_summary(response)}); "
                "check the API key or token configured for the target", may_have_landed=False,
            )
        if response.status_code == 400 and "errors" in response.text:
            # Apollo answers a document that does not parse or validate with 400 and `errors`.
            raise GraphQLCallError(operation, _json(response).get("errors") or [{"message": answer_summary(response)}])
        if response.status_code == 413:
            raise TransportError(
                f"{operation}: HTTP 413 {answer_summary(response)} (the request body was {len(body):,} bytes; "
                f"{self.url} refused it before running it)", may_have_landed=False,
            )
        if response.status_code != 200:
            # 4xx are refusals before GraphQL runs (auth, body size); a 5xx may come after the
            # service wrote (a proxy's 502 after the service committed, a crash while answering).
            raise TransportError(
                f"{operation}: HTTP {response.status_code} {answer_summary(response)} (from {self.url})",
                may_have_landed=response.status_code >= 500,
            )
        try:
            payload = response.json()
        except ValueError:
            raise TransportError(
                f"{operation}: {self.url} answered HTTP 200 with a body that is not JSON: {answer_summary(response)}",
                may_have_landed=True,
            ) from None
        if payload.get("errors") or payload.get("data") is None:
            raise GraphQLCallError(operation, payload.get("errors") or [{"message": "no data in the answer"}])
        return payload["data"]

    def close(self) -> None:
        for session in self._local.__dict__.get("sessions", {}).values():
            session.close()


def _never_connected(err: requests.RequestException) -> bool:
    """True when the request provably never reached the server: the connection was refused
    or timed out while connecting (urllib3 counts these as connect errors, raised before any
    byte of the request is sent). Anything else (read timeout, connection reset or closed
    after sending) may have been executed."""
    if isinstance(err, requests.ConnectTimeout):
        return True
    if not isinstance(err, requests.ConnectionError) or isinstance(err, requests.ReadTimeout):
        return False
    reason = err.args[0] if err.args else None
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    return isinstance(reason, (NewConnectionError, ConnectTimeoutError))


def _json(response: requests.Response) -> dict:
    try:
        payload = response.json()
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}


def request_body(query: str, variables: dict | None, operation: str) -> bytes:
    """The exact bytes `GraphQLClient.execute` posts (what a service's body limit measures)."""
    body = {"query": query, "variables": variables or {}, "operationName": operation}
    return json.dumps(body, allow_nan=False).encode("utf-8")


_TAG = re.compile(r"<[^>]*>")
_LINE_BREAK = re.compile(r"<br\s*/?>|</(?:p|div|h[1-6]|title|pre|li|tr)>", re.IGNORECASE)
_NOISE = re.compile(r"<(script|style|head)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
# "PayloadTooLargeError: request entity too large": the class name says nothing more.
_ERROR_CLASS = re.compile(r"^[A-Za-z_$][\w$]*(?:Error|Exception): ")


def answer_summary(response: requests.Response, limit: int = 200) -> str:
    """The first line of meaning of an answer that is not GraphQL's, for a one-line error:
    a JSON body's `message` (or first error's), an HTML page's first line of text (an Express
    error page is its error's stack, file paths and all: only its first line is kept, without
    the error's class name), a text body's first line; the status's reason when there is none."""
    text = response.text or ""
    payload = _json(response) if text.lstrip()[:1] in "{[" and text.strip() else {}
    line = ""
    if payload:
        errors = payload.get("errors")
        first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
        line = str(payload.get("message") or first.get("message") or "")
    elif "<" in text and ">" in text:
        page = _NOISE.sub("", text)
        pre = re.search(r"<pre\b[^>]*>(.*?)</pre>", page, re.IGNORECASE | re.DOTALL)
        if pre:
            page = pre.group(1)
        page = html.unescape(_TAG.sub("", _LINE_BREAK.sub("\n", page)))
        line = next((ln.strip() for ln in page.splitlines() if ln.strip()), "")
        line = _ERROR_CLASS.sub("", line)
    else:
        line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    line = " ".join(line.split()) or (response.reason or "no body")
    return line if len(line) <= limit else line[:limit] + "..."
