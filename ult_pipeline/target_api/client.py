"""A GraphQL client for the user-service: retries transport failures, never GraphQL errors.

Connection errors and 5xx are retried with exponential backoff (urllib3's Retry); a body
with `errors` is the server's answer about the request itself and is raised at once, with
the operation name and the server's messages (never the credentials).
"""

from __future__ import annotations

import threading

import requests
from requests.adapters import HTTPAdapter
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
    """The call did not get a usable answer (after retries): connection, HTTP status, auth."""


def _codes(error: dict) -> list[str]:
    ext = error.get("extensions") or {}
    found = [ext["code"]] if ext.get("code") else []
    for inner in ext.get("errors") or (ext.get("exception") or {}).get("errors") or []:
        if isinstance(inner, dict) and inner.get("code"):
            found.append(inner["code"])
    return found


def _describe(error: dict) -> str:
    ext = error.get("extensions") or {}
    inner = ext.get("errors") or (ext.get("exception") or {}).get("errors") or []
    details = ", ".join(f"{i.get('code')}: {i.get('message')}" for i in inner[:3] if isinstance(i, dict))
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
        self._retry = Retry(
            total=retries, connect=retries, read=retries, status=retries, backoff_factor=backoff,
            status_forcelist=(500, 502, 503, 504), allowed_methods=None, raise_on_status=False,
        )
        # The API key makes the caller a super-admin (`Bearer`); a user's JWT goes raw.
        self._auth = f"Bearer {api_key}" if api_key else (token or "")
        self._local = threading.local()
        self._lock = threading.Lock()
        self._calls = 0

    def __repr__(self) -> str:
        return f"GraphQLClient(url={self.url!r})"

    def _session(self) -> requests.Session:
        # One session per thread: connection pools are not shared between threads.
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.mount("http://", HTTPAdapter(max_retries=self._retry))
            session.mount("https://", HTTPAdapter(max_retries=self._retry))
            session.headers.update({"Content-Type": "application/json", "Authorization": self._auth})
            self._local.session = session
        return session

    @property
    def calls(self) -> int:
        return self._calls

    def call(self, operation: str, variables: dict | None = None) -> dict:
        """Send the project's document named ``operation``; returns `data`."""
        return self.execute(document(operation), variables, operation)

    def execute(self, query: str, variables: dict | None, operation: str) -> dict:
        body = {"query": query, "variables": variables or {}, "operationName": operation}
        with self._lock:
            self._calls += 1
        try:
            response = self._session().post(self.url, json=body, timeout=self._timeout)
        except requests.RequestException as err:
            raise TransportError(f"{operation}: no answer from {self.url}: {type(err).__name__}: {err}") from None
        if response.status_code == 401:
            raise TransportError(
                f"{operation}: {self.url} refused the credentials (401: {_short(response.text)}); "
                "check the API key or token configured for the target"
            )
        if response.status_code == 400 and "errors" in response.text:
            # Apollo answers a document that does not parse or validate with 400 and `errors`.
            raise GraphQLCallError(operation, _json(response).get("errors") or [{"message": _short(response.text)}])
        if response.status_code != 200:
            raise TransportError(f"{operation}: HTTP {response.status_code} from {self.url}: {_short(response.text)}")
        try:
            payload = response.json()
        except ValueError:
            raise TransportError(f"{operation}: {self.url} answered with a body that is not JSON: {_short(response.text)}") from None
        if payload.get("errors") or payload.get("data") is None:
            raise GraphQLCallError(operation, payload.get("errors") or [{"message": "no data in the answer"}])
        return payload["data"]

    def close(self) -> None:
        session = getattr(self._local, "session", None)
        if session is not None:
            session.close()


def _json(response: requests.Response) -> dict:
    try:
        payload = response.json()
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
