"""Writes land exactly once: seeding through a proxy that loses the answer of a call that did
land ends with the exact dataset or a clear error, never with duplicates reported as success.

Every test wipes the session sandbox, seeds the `tiny` profile through a fault proxy
(fault_proxy.py) with a short client timeout, and checks the whole database: the counts
read back equal the profile's, and no email is held twice.
"""

from __future__ import annotations

import dataclasses

import psycopg
import pytest

from ult_pipeline.sandbox import manager
from ult_pipeline.seeding.dataset import generate
from ult_pipeline.seeding.identities import TokenSigner
from ult_pipeline.seeding.profiles import PROFILES
from ult_pipeline.seeding.run import prepare
from ult_pipeline.seeding.seeder import SeedingError, read_counts
from ult_pipeline.target_api.client import GraphQLClient
from ult_pipeline.target_db.wipe import wipe

from .fault_proxy import FaultProxy

CLIENT_TIMEOUT_S = 2.0
LATE_S = 4.0  # the proxy's late answer comes after the client gave up


def user_rows(dsn: str) -> tuple[int, int]:
    """(users, distinct emails) in the whole database."""
    with psycopg.connect(dsn) as conn:
        return conn.execute('SELECT count(*), count(DISTINCT lower(email)) FROM "user"').fetchone()


@pytest.fixture()
def proxy(sandbox):
    proxy = FaultProxy(sandbox.url, late_s=LATE_S).start()
    yield proxy
    proxy.stop()


def seed_through(proxy, sandbox, sandbox_settings, tmp_path, dataset):
    client = GraphQLClient(proxy.url, api_key=sandbox.api_key, timeout=CLIENT_TIMEOUT_S, retries=2, backoff=0.05)
    try:
        return prepare(
            client=client, dataset=dataset, signer=TokenSigner(), identities_path=tmp_path / "identities.json",
            wipe=lambda: wipe(sandbox.dsn, "sandbox", restart_service=lambda: manager.restart_service(sandbox_settings)),
        )
    finally:
        client.close()


@pytest.mark.parametrize("mode", ["500", "drop", "late"])
@pytest.mark.parametrize("operation", ["createUsers", "addStudentsToClasses"])
def test_a_lost_answer_of_a_call_that_landed_gives_the_exact_dataset(
    proxy, sandbox, sandbox_settings, tmp_path, operation, mode
):
    dataset = generate(PROFILES["tiny"], 11)
    fault = proxy.inject(operation, mode)
    prepared = seed_through(proxy, sandbox, sandbox_settings, tmp_path, dataset)
    assert fault.injected == 1  # the fault did happen
    assert prepared.counts_scope == "whole_target"
    assert prepared.counts_match, (prepared.expected_counts, prepared.actual_counts)
    assert user_rows(sandbox.dsn) == (110, 110)
    calls = next(stage.calls for stage in prepared.seeding.stages if stage.name == operation)
    if operation.startswith("create"):
        # The lost call was looked up, not resent.
        assert proxy.operations.count(operation) == calls and "usersByEmail" in proxy.operations
    else:
        # The add was resent once, and refused as a duplicate.
        assert proxy.operations.count(operation) == calls + 1


def test_a_call_that_never_landed_is_sent_again(proxy, sandbox, sandbox_settings, tmp_path):
    dataset = generate(PROFILES["tiny"], 11)
    proxy.inject("createUsers", "refuse")
    prepared = seed_through(proxy, sandbox, sandbox_settings, tmp_path, dataset)
    assert prepared.counts_match, (prepared.expected_counts, prepared.actual_counts)
    assert user_rows(sandbox.dsn) == (110, 110)
    calls = next(stage.calls for stage in prepared.seeding.stages if stage.name == "createUsers")
    assert proxy.operations.count("createUsers") == calls + 1  # one of the calls sent twice


def test_when_it_cannot_be_known_whether_a_call_landed_seeding_stops_and_says_so(
    proxy, sandbox, sandbox_settings, tmp_path
):
    dataset = generate(PROFILES["tiny"], 11)
    proxy.inject("createUsers", "500")
    proxy.inject("usersByEmail", "refuse", count=10)  # the lookup itself fails (after the client's retries)
    with pytest.raises(SeedingError, match="may have landed.*Wipe the target and seed again"):
        seed_through(proxy, sandbox, sandbox_settings, tmp_path, dataset)
    users, emails = user_rows(sandbox.dsn)
    assert users == emails  # stopped before any resend: nothing twice


def test_seeded_counts_match_fails_on_one_duplicated_user(sandbox, sandbox_settings, tmp_path):
    client = GraphQLClient(sandbox.url, api_key=sandbox.api_key)
    try:
        dataset = generate(PROFILES["tiny"], 12)
        prepared = prepare(
            client=client, dataset=dataset, signer=TokenSigner(), identities_path=tmp_path / "identities.json",
            wipe=lambda: wipe(sandbox.dsn, "sandbox", restart_service=lambda: manager.restart_service(sandbox_settings)),
        )
        assert prepared.counts_match, (prepared.expected_counts, prepared.actual_counts)
        twin = dataset.users[-1]
        # A second user with a seeded user's email, in no organization: what a blind resend left.
        client.call("createUsers", {"input": [{
            "givenName": twin.given_name + "x", "familyName": twin.family_name, "gender": twin.gender,
            "contactInfo": {"email": twin.email},
        }]})
        recounted = dataclasses.replace(
            prepared, actual_counts=read_counts(client, dataset, prepared.seeding.ids, whole_target=True)
        )
        assert not recounted.counts_match
        assert recounted.actual_counts["users"] == recounted.expected_counts["users"] + 1

        # Beside other data (no wipe), a namespaced dataset is checked on its own emails.
        namespaced = generate(PROFILES["tiny"], 12, namespace="dup1")
        beside = prepare(
            client=client, dataset=namespaced, signer=TokenSigner(), identities_path=tmp_path / "ns.json", wipe=None,
        )
        assert beside.counts_scope == "namespace"
        assert beside.counts_match, (beside.expected_counts, beside.actual_counts)
        twin = namespaced.users[0]
        client.call("createUsers", {"input": [{
            "givenName": twin.given_name + "x", "familyName": twin.family_name, "gender": twin.gender,
            "contactInfo": {"email": twin.email},
        }]})
        recounted = read_counts(client, namespaced, beside.seeding.ids, whole_target=False)
        assert recounted["users"] == beside.expected_counts["users"] + 1
    finally:
        client.close()
