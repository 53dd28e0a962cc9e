"""The client's retry rules against a local HTTP server that fails on purpose."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ult_pipeline.target_api.client import GraphQLCallError, GraphQLClient, TransportError


class Scripted(BaseHTTPRequestHandler):
    answers: list[tuple[int, dict]] = []
    seen: list[dict] = []

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Scripted.seen.append({"body": body, "auth": self.headers.get("Authorization")})
        status, payload = Scripted.answers.pop(0)
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture()
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Scripted)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    Scripted.answers, Scripted.seen = [], []
    yield f"http://127.0.0.1:{httpd.server_address[1]}/user/"
    httpd.shutdown()


def test_5xx_is_retried_then_succeeds(server):
    Scripted.answers = [(503, {}), (502, {}), (200, {"data": {"systemRoles": 1}})]
    client = GraphQLClient(server, api_key="secret-key", backoff=0.01)
    assert client.call("systemRoles") == {"systemRoles": 1}
    assert len(Scripted.seen) == 3
    assert Scripted.seen[0]["auth"] == "Bearer secret-key"
    assert Scripted.seen[0]["body"]["operationName"] == "systemRoles"


def test_graphql_errors_are_not_retried(server):
    Scripted.answers = [(200, {"errors": [{"message": "Cannot query field 'x'"}], "data": None})]
    client = GraphQLClient(server, api_key="secret-key", backoff=0.01)
    with pytest.raises(GraphQLCallError, match="systemRoles.*Cannot query field"):
        client.call("systemRoles")
    assert len(Scripted.seen) == 1


def test_persistent_5xx_and_401_are_clear_and_do_not_leak_the_key(server):
    Scripted.answers = [(500, {})] * 3
    client = GraphQLClient(server, api_key="secret-key", retries=2, backoff=0.01)
    with pytest.raises(TransportError) as err:
        client.call("systemRoles")
    assert "HTTP 500" in str(err.value) and "secret-key" not in str(err.value)
    Scripted.answers = [(401, {"code": "UNAUTHORIZED", "message": "Invalid API key provided"})]
    with pytest.raises(TransportError, match="refused the credentials") as err:
        client.call("systemRoles")
    assert "secret-key" not in str(err.value)


def test_a_user_token_is_sent_raw():
    client = GraphQLClient("http://127.0.0.1:9/user/", token="eyJ.token")
    assert client._session().headers["Authorization"] == "eyJ.token"
