"""One embedded PostgreSQL and one in-process sandbox service for the whole session.

The service runs under uvicorn (uvloop + httptools, as in production) on a real socket
in a background thread; tests talk to it over HTTP like the load test does.
"""

from __future__ import annotations

import shutil
import socket
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field

import jwt
import pgserver
import pytest
import requests
import uvicorn

from ult_pipeline.sandbox_service.app import create_app
from ult_pipeline.sandbox_service.auth import DEBUG_ISSUER, DEBUG_SECRET
from ult_pipeline.sandbox_service.config import ServiceConfig

API_KEY = "sandbox-test-key-" + uuid.uuid4().hex
SLOW_OPERATION = "SlowOperation"
SLOW_MS = 150.0
HIDDEN_OPERATION = "HiddenOperation"


def make_token(
    user_id: str,
    email: str | None = None,
    *,
    algorithm: str = "HS256",
    secret: str = DEBUG_SECRET,
    issuer: str = DEBUG_ISSUER,
    expires_in: float | None = None,
    username: str | None = None,
) -> str:
    claims: dict = {"iss": issuer, "id": user_id}
    if email:
        claims["email"] = email
    if username:
        claims["user_name"] = username
    if expires_in is not None:
        claims["exp"] = int(time.time() + expires_in)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return jwt.encode(claims, secret, algorithm=algorithm)


class ThreadedServer:
    """uvicorn on an already-bound socket, so no port race; stopped via should_exit."""

    def __init__(self, app) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        config = uvicorn.Config(app, loop="uvloop", http="httptools", log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ThreadedServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("sandbox service did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.socket.close()


@dataclass
class Service:
    base_url: str
    api_key: str
    dsn: str
    db_schema: str
    session: requests.Session = field(default_factory=requests.Session)

    @property
    def graphql_url(self) -> str:
        return f"{self.base_url}/user/"

    def post(self, query: str, variables: dict | None = None, *, token: str | None = None,
             admin: bool = False, operation_name: str | None = None, headers: dict | None = None,
             cookies: dict | None = None) -> requests.Response:
        sent = dict(headers or {})
        if admin:
            sent["Authorization"] = f"Bearer {self.api_key}"
        elif token is not None:
            sent["Authorization"] = token
        body: dict = {"query": query, "variables": variables or {}}
        if operation_name:
            body["operationName"] = operation_name
        return self.session.post(self.graphql_url, json=body, headers=sent, cookies=cookies, timeout=30)

    def data(self, query: str, variables: dict | None = None, **kwargs) -> dict:
        """The `data` of a request that must succeed (HTTP 200, no errors)."""
        response = self.post(query, variables, **kwargs)
        assert response.status_code == 200, response.text
        body = response.json()
        assert "errors" not in body, body
        return body["data"]

    def errors(self, query: str, variables: dict | None = None, **kwargs) -> list[dict]:
        response = self.post(query, variables, **kwargs)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body.get("errors"), body
        return body["errors"]


@pytest.fixture(scope="session")
def postgres_uri():
    # Short path: the Unix socket path of PostgreSQL has a length limit.
    home = tempfile.mkdtemp(prefix="ultsvc", dir="/tmp")
    server = pgserver.get_server(home, cleanup_mode="stop")
    yield server.get_uri()
    server.cleanup()
    shutil.rmtree(home, ignore_errors=True)


def service_config(dsn: str, db_schema: str, **overrides) -> ServiceConfig:
    return ServiceConfig(dsn=dsn, api_key=API_KEY, db_schema=db_schema, pool_size=4, **overrides)


@pytest.fixture(scope="session")
def service(postgres_uri):
    config = service_config(
        postgres_uri,
        "sandbox_tests",
        latency_ms={SLOW_OPERATION: SLOW_MS},
        no_telemetry=frozenset({HIDDEN_OPERATION}),
    )
    running = ThreadedServer(create_app(config)).start()
    yield Service(running.base_url, API_KEY, postgres_uri, config.db_schema)
    running.stop()


@pytest.fixture(scope="session")
def world(service):
    from .world import seed_world

    return seed_world(service)


@pytest.fixture(scope="session")
def student_token(world):
    return make_token(world.student1, world.emails["student1"])


@pytest.fixture(scope="session")
def teacher_token(world):
    return make_token(world.teacher, world.emails["teacher"])


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: starts extra service instances (a few seconds)")
