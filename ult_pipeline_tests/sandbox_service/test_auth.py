"""Refusals happen before GraphQL, as HTTP 401 JSON, and never echo the credential."""

from __future__ import annotations

import pytest
import requests

from .conftest import make_token

MY_ID = "query MyId { myUser { node { id } } }"


def refusal(service, **kwargs) -> str:
    response = service.post(MY_ID, **kwargs)
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["code"] == "UNAUTHORIZED"
    return body["message"]


def test_no_token(service):
    assert refusal(service).startswith("No authentication token")


def test_malformed_token(service):
    message = refusal(service, headers={"Authorization": "not-a-jwt"})
    assert message.startswith("Malformed authentication token")
    assert "not-a-jwt" not in message


def test_wrong_api_key(service):
    message = refusal(service, headers={"Authorization": "Bearer wrong-key-value"})
    assert message.startswith("Invalid API key provided")
    assert "wrong-key-value" not in message


def test_a_jwt_with_bearer_prefix_is_checked_as_an_api_key(world, service):
    token = make_token(world.student1, world.emails["student1"])
    message = refusal(service, headers={"Authorization": f"Bearer {token}"})
    assert message.startswith("Invalid API key provided")


def test_expired_token(world, service):
    token = make_token(world.student1, world.emails["student1"], expires_in=-60)
    message = refusal(service, token=token)
    assert message.startswith("Invalid token provided: jwt expired")
    assert token not in message


def test_wrong_secret(world, service):
    token = make_token(world.student1, world.emails["student1"], secret="not-the-shared-secret")
    assert refusal(service, token=token).startswith("Invalid token provided:")


def test_unknown_issuer(world, service):
    token = make_token(world.student1, world.emails["student1"], issuer="someone-else")
    assert refusal(service, token=token).startswith("Invalid token provided:")


@pytest.mark.parametrize("algorithm", ["HS256", "HS384", "HS512"])
def test_debug_issuer_algorithms_are_accepted(world, service, algorithm):
    token = make_token(world.student1, world.emails["student1"], algorithm=algorithm, expires_in=600)
    assert service.data(MY_ID, token=token)["myUser"]["node"]["id"] == world.student1


def test_access_cookie_is_accepted(world, service):
    token = make_token(world.student1, world.emails["student1"])
    assert service.data(MY_ID, cookies={"access": token})["myUser"]["node"]["id"] == world.student1


def test_api_key_is_a_super_admin(world, service):
    data = service.data(
        "query AllOrganizations { organizationsConnection(direction: FORWARD) { totalCount } }", admin=True
    )
    assert data["organizationsConnection"]["totalCount"] >= 2


def test_open_routes_need_no_auth(service):
    assert requests.get(f"{service.base_url}/user/health", timeout=5).json() == {"status": "pass"}
    assert requests.get(f"{service.base_url}/user/version", timeout=5).json() == {"version": "4.5.0"}
    metrics = requests.get(f"{service.base_url}/user/metrics", timeout=5)
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
