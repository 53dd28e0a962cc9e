"""The real service's HTTP limits: a JSON body above 100 KB (Express's `express.json()` default,
102,400 bytes) is refused before auth and GraphQL with HTTP 413 and Express's HTML error page;
and the client reports that answer in one line."""

from __future__ import annotations

import json
import socket

import pytest
import requests

from ult_pipeline.sandbox_service.body_limit import JSON_BODY_LIMIT
from ult_pipeline.target_api.client import GraphQLClient, TransportError

QUERY = "query Padded { __typename }"  # the unused variable pads the body


def padded_body(size: int) -> bytes:
    """A GraphQL body of exactly ``size`` bytes (an unused variable pads it)."""
    def body(pad: int) -> bytes:
        return json.dumps({"query": QUERY, "variables": {"pad": "x" * pad}, "operationName": "Padded"}).encode()

    empty = len(body(0))
    assert size >= empty
    sized = body(size - empty)
    assert len(sized) == size
    return sized


def post(service, body: bytes, **headers) -> requests.Response:
    return requests.post(service.graphql_url, data=body, timeout=30, headers={
        "Content-Type": "application/json", "Authorization": f"Bearer {service.api_key}", **headers})


def test_a_101_kb_body_is_refused_with_413_and_an_html_page_like_express(service):
    response = post(service, padded_body(101 * 1024))
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("text/html")
    assert response.text.startswith("<!DOCTYPE html>")
    assert "<pre>PayloadTooLargeError: request entity too large<br>" in response.text
    assert response.headers["x-content-type-options"] == "nosniff"
    # Counted in the service's telemetry, so a benchmark or test can tell that none was refused.
    from ult_pipeline_tests.seeding.test_seed_sandbox import refused_bodies

    assert refused_bodies(service.base_url) >= 1


def test_a_99_kb_body_is_answered(service):
    response = post(service, padded_body(99 * 1024))
    assert response.status_code == 200, response.text[:300]
    assert response.json()["data"] == {"__typename": "Query"}


def test_the_limit_is_100_kb_to_the_byte(service):
    assert post(service, padded_body(JSON_BODY_LIMIT)).status_code == 200
    assert post(service, padded_body(JSON_BODY_LIMIT + 1)).status_code == 413


def test_the_limit_is_checked_before_auth(service):
    response = requests.post(service.graphql_url, data=padded_body(101 * 1024), timeout=30,
                             headers={"Content-Type": "application/json"})
    assert response.status_code == 413


def test_a_chunked_body_without_length_is_measured_as_it_comes(service):
    body = padded_body(150 * 1024)
    response = post(service, iter([body[i:i + 8192] for i in range(0, len(body), 8192)]))
    assert response.status_code == 413
    small = padded_body(10 * 1024)
    assert post(service, iter([small[:5000], small[5000:]])).status_code == 200


def test_the_connection_survives_a_refusal(service):
    # Like body-parser, the refused body is read off the socket: the next request on the same
    # keep-alive connection is answered.
    with requests.Session() as session:
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {service.api_key}"}
        assert session.post(service.graphql_url, data=padded_body(200 * 1024), headers=headers,
                            timeout=30).status_code == 413
        assert session.post(service.graphql_url, data=padded_body(1024), headers=headers,
                            timeout=30).status_code == 200


def test_the_client_reports_the_413_in_one_line_without_the_page(service):
    client = GraphQLClient(service.graphql_url, api_key=service.api_key)
    ids = [f"00000000-0000-4000-8000-{n:012d}" for n in range(50)]
    too_big = [{"schoolId": f"10000000-0000-4000-8000-{s:012d}", "schoolRoleIds": [ids[0]], "userIds": ids}
               for s in range(50)]
    with pytest.raises(TransportError) as err:
        client.call("addUsersToSchools", {"input": too_big})
    message = str(err.value)
    assert message.startswith("addUsersToSchools: HTTP 413 request entity too large"), message
    assert "\n" not in message and "node_modules" not in message and "<" not in message
    assert service.api_key not in message
    assert not err.value.may_have_landed  # refused before GraphQL ran: nothing was written


def test_a_raw_socket_sees_the_413_before_sending_the_body(service):
    # Content-Length alone is enough to refuse; the answer comes once the body has been read.
    host, port = service.base_url.removeprefix("http://").split(":")
    body = padded_body(120 * 1024)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"POST /user/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        head = sock.recv(4096).decode("latin-1")
    assert head.startswith("HTTP/1.1 413")
