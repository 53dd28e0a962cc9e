"""The client's retry rules against a local HTTP server that fails on purpose."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ult_pipeline.target_api.client import (
    GraphQLCallError,
    GraphQLClient,
    TransportError,
    element_codes,
    operation_kind,
)


class Scripted(BaseHTTPRequestHandler):
    answers: list[tuple[int, dict]] = []
    seen: list[dict] = []

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Scripted.seen.append({"body": body, "auth": self.headers.get("Authorization")})
        status, payload = Scripted.answers.pop(0)
        if status == 0:  # hold the answer past the client's timeout
            time.sleep(payload["sleep"])
            status, payload = 200, {"data": {}}
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


def test_a_mutation_answered_500_is_not_resent_and_may_have_landed(server):
    Scripted.answers = [(500, {}), (200, {"data": {"createUsers": {"users": []}}})]
    client = GraphQLClient(server, api_key="secret-key", backoff=0.01)
    with pytest.raises(TransportError, match="HTTP 500") as err:
        client.call("createUsers", {"input": []})
    assert err.value.may_have_landed
    assert len(Scripted.seen) == 1


def test_a_mutation_answered_late_is_not_resent_and_may_have_landed(server):
    Scripted.answers = [(0, {"sleep": 1.0}), (200, {"data": {}})]
    client = GraphQLClient(server, api_key="secret-key", timeout=0.3, backoff=0.01)
    with pytest.raises(TransportError) as err:
        client.call("addStudentsToClasses", {"input": []})
    assert err.value.may_have_landed
    assert len(Scripted.seen) == 1


def test_a_query_answered_late_is_retried(server):
    Scripted.answers = [(0, {"sleep": 1.0}), (200, {"data": {"rolesConnection": 1}})]
    client = GraphQLClient(server, api_key="secret-key", timeout=0.3, backoff=0.01)
    assert client.call("systemRoles") == {"rolesConnection": 1}
    assert len(Scripted.seen) == 2


def test_a_refused_connection_never_landed():
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = GraphQLClient(f"http://127.0.0.1:{port}/user/", api_key="k", retries=1, backoff=0.01)
    with pytest.raises(TransportError) as err:
        client.call("createUsers", {"input": []})
    assert not err.value.may_have_landed


def test_a_refusal_before_graphql_never_landed(server):
    Scripted.answers = [(413, {"message": "too large"})]
    client = GraphQLClient(server, api_key="secret-key", backoff=0.01)
    with pytest.raises(TransportError, match="HTTP 413") as err:
        client.call("createUsers", {"input": []})
    assert not err.value.may_have_landed


# Not documents for the service: only their first keyword matters.
INVALID_KIND_CASES = [
    ("query q { a }", "query"), ("  # why\n mutation m { a }", "mutation"), ("{ a }", "query"),
    ("fragment F on User { id } query q { a }", "mutation"), ("", "mutation"),
]


@pytest.mark.parametrize("text,kind", INVALID_KIND_CASES)
def test_the_kind_is_the_documents_first_keyword(text, kind):
    assert operation_kind(text) == kind


def test_every_shipped_mutation_document_is_a_mutation():
    from ult_pipeline.target_api.documents import document

    assert operation_kind(document("createUsers")) == "mutation"
    assert operation_kind(document("addUsersToSchools")) == "mutation"
    assert operation_kind(document("usersByEmail")) == "query"


def test_element_codes_are_read_from_both_shapes():
    real = {"extensions": {"code": "ERR_API_BAD_INPUT", "exception": {"errors": [{"code": "ERR_DUPLICATE_CHILD_ENTITY"}]}}}
    sandbox = {"extensions": {"code": "ERR_API_BAD_INPUT", "errors": [{"code": "ERR_DUPLICATE_CHILD_ENTITY"}]}}
    assert element_codes(real) == element_codes(sandbox) == ["ERR_DUPLICATE_CHILD_ENTITY"]


class _Answer:
    def __init__(self, text: str, reason: str = "Payload Too Large"):
        self.text, self.reason = text, reason

    def json(self):
        return json.loads(self.text)


@pytest.mark.parametrize("text,summary", [
    # Express's error page under NODE_ENV=development: the stack, file paths and all.
    ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Error</title>\n</head>\n"
     "<body>\n<pre>PayloadTooLargeError: request entity too large<br> &nbsp; &nbsp;at readStream "
     "(/usr/src/app/node_modules/raw-body/index.js:156:17)</pre>\n</body>\n</html>\n", "request entity too large"),
    # ... and under production: the status's text only.
    ("<!DOCTYPE html><html><head><title>Error</title></head><body><pre>Payload Too Large</pre></body></html>",
     "Payload Too Large"),
    ("<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center>"
     "<hr><center>nginx</center></body></html>", "502 Bad Gateway"),
    ('{"code":"UNAUTHORIZED","message":"Invalid API key provided"}', "Invalid API key provided"),
    ('{"errors":[{"message":"Syntax Error"}]}', "Syntax Error"),
    ("upstream connect error\nor disconnect/reset before headers", "upstream connect error"),
    ("", "Payload Too Large"),
])
def test_an_answer_outside_graphql_is_summed_up_in_one_line(text, summary):
    from ult_pipeline.target_api.client import answer_summary

    assert answer_summary(_Answer(text)) == summary


def test_a_413_names_the_operation_status_meaning_and_body_size(server):
    Scripted.answers = [(413, {"message": "request entity too large"})]
    client = GraphQLClient(server, api_key="secret-key", backoff=0.01)
    with pytest.raises(TransportError) as err:
        client.call("createUsers", {"input": []})
    assert str(err.value).startswith("createUsers: HTTP 413 request entity too large (the request body was ")
    assert "secret-key" not in str(err.value)
