"""Seeding through the sandbox's real API, as `ult seed` and the pipeline do it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import psycopg
import pytest

from ult_pipeline.sandbox import manager
from ult_pipeline.seeding.dataset import generate
from ult_pipeline.seeding.profiles import PROFILES
from ult_pipeline.seeding.seeder import Seeder
from ult_pipeline.target_api.client import GraphQLCallError, GraphQLClient


def ult(*args, settings, results, env=None, timeout=120):
    return subprocess.run(
        [sys.executable, "-m", "ult_pipeline.cli", *args], capture_output=True, text=True, timeout=timeout,
        env={**os.environ, "ULT_SANDBOX_HOME": str(settings.home), "ULT_SANDBOX_PORT": str(settings.port),
             "ULT_RESULTS_DIR": str(results), **(env or {})},
    )


def user_rows(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        return conn.execute('SELECT count(*) FROM "user"').fetchone()[0]


def test_ult_seed_twice_gives_the_same_data_and_wipes_first(sandbox, sandbox_settings, tmp_path):
    runs = [ult("seed", "--profile", "tiny", settings=sandbox_settings, results=tmp_path) for _ in range(2)]
    for run in runs:
        assert run.returncode == 0, run.stderr
    hashes = [line for run in runs for line in run.stdout.splitlines() if line.startswith("content hash")]
    counts = [line for run in runs for line in run.stdout.splitlines() if line.startswith("counts")]
    assert len(hashes) == 2 and hashes[0] == hashes[1]
    assert counts[0] == counts[1] == (
        "counts organizations 1, schools 2, classes 4, teachers 5, students 100, organization_admins 3, "
        "school_admins 2, users 110, organization_memberships 110, school_memberships 107, school_classes 4, "
        "class_students 100, class_teachers 5"
    )
    assert "wiped (recreate)" in runs[1].stdout
    assert user_rows(sandbox.dsn) == 110  # not doubled
    identities = json.loads((tmp_path / "identities.json").read_text())
    # Everyone but the owner: 100 students, 5 teachers, 2 org admins, 2 school admins.
    assert len(identities["identities"]) == 109
    # Tokens live in the identities file only, never in what is printed.
    assert not any(i["token"] in runs[1].stdout + runs[1].stderr for i in identities["identities"])
    assert sandbox.api_key not in runs[1].stdout + runs[1].stderr


def test_ult_wipe_refuses_an_unmarked_database_and_keeps_every_row(sandbox, sandbox_settings, tmp_path):
    with psycopg.connect(sandbox.dsn, autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS unmarked WITH (FORCE)")
        admin.execute("CREATE DATABASE unmarked")
    dsn = sandbox.dsn.replace("/postgres?", "/unmarked?")
    with psycopg.connect(dsn) as conn:
        conn.execute('CREATE TABLE "user" (user_id int); INSERT INTO "user" SELECT generate_series(1, 25)')
    result = ult("wipe", "--dsn", dsn, "--environment", "loadtest", settings=sandbox_settings, results=tmp_path)
    assert result.returncode != 0
    assert "no load-test marker" in result.stderr and "ult target-db mark" in result.stderr
    assert user_rows(dsn) == 25


def test_a_refused_call_names_the_call_and_the_servers_message_and_is_not_retried(sandbox):
    client = GraphQLClient(sandbox.url, api_key=sandbox.api_key)
    too_many = [{"givenName": "A", "familyName": "B", "gender": "female"}] * 51
    with pytest.raises(GraphQLCallError, match="createUsers.*ERR_") as err:
        client.call("createUsers", {"input": too_many})
    assert "ERR_INVALID_ARRAY_MAX_LENGTH" in err.value.codes
    assert client.calls == 1
    assert sandbox.api_key not in str(err.value)


def test_sequential_and_concurrent_seeding_create_the_same_data(sandbox, sandbox_settings):
    from ult_pipeline.seeding.seeder import read_counts
    from ult_pipeline.target_db.wipe import wipe

    dataset = generate(PROFILES["tiny"], 5)
    results = []
    for concurrency in (1, 4):
        wipe(sandbox.dsn, "sandbox", restart_service=lambda: manager.restart_service(sandbox_settings))
        client = GraphQLClient(sandbox.url, api_key=sandbox.api_key)
        seeded = Seeder(client, concurrency=concurrency).seed(dataset)
        results.append(read_counts(client, dataset, seeded.ids))
    # (Call counts differ: at concurrency 4, stages of fewer calls are cut finer to run at once.)
    assert results[0] == results[1] == dataset.expected_counts()


def refused_bodies(base_url: str) -> float:
    """Requests the sandbox refused with 413 since its service last started (its telemetry)."""
    import re

    import requests

    text = requests.get(f"{base_url}/user/metrics", timeout=10).text
    match = re.search(r'ult_sandbox_graphql_requests_total\{operation="payload_too_large"\} ([0-9.e+]+)', text)
    return float(match.group(1)) if match else 0.0


@pytest.mark.slow
def test_ult_seed_large_completes_and_no_body_is_above_the_limit(sandbox, sandbox_settings, tmp_path):
    # The sandbox refuses bodies above 100 KB like the real service (sandbox_service/body_limit.py),
    # so a seed that completes sent none; its telemetry says so too. About a minute on 2 cores.
    run = ult("seed", "--profile", "large", settings=sandbox_settings, results=tmp_path, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    assert ("counts organizations 10, schools 100, classes 400, teachers 500, students 100000, "
            "organization_admins 30, school_admins 100, users 100630") in run.stdout
    assert refused_bodies(sandbox.base_url) == 0


# What a user's own token shows of its memberships, roles and permissions (read only).
ADMIN_SCOPE = """
query adminScope($organizationId: ID!, $permissionIds: [String!]!) {
  myUser {
    node {
      id
      organizationMembershipsConnection {
        edges { node { organizationId rolesConnection { edges { node { name } } } } }
      }
      schoolMembershipsConnection {
        edges { node { schoolId rolesConnection { edges { node { name } } } } }
      }
    }
    hasPermissionsInOrganization(organizationId: $organizationId, permissionIds: $permissionIds) {
      permissionId
      allowed
    }
  }
}
"""
# create_class_20224: both admins (MUTATIONS.md); edit_users_40330 and delete_class_20444: Org Admins only.
PERMISSIONS = ["create_class_20224", "edit_users_40330", "delete_class_20444"]


def scope_of(url: str, identity: dict) -> dict:
    import requests

    response = requests.post(url, json={"query": ADMIN_SCOPE, "operationName": "adminScope", "variables": {
        "organizationId": identity["organization_id"], "permissionIds": PERMISSIONS,
    }}, headers={"Authorization": identity["token"]}, timeout=30)
    assert response.status_code == 200, response.text[:500]
    body = response.json()
    assert not body.get("errors"), body["errors"]
    my_user = body["data"]["myUser"]
    node = my_user["node"]

    def roles(connection):
        return {e["node"]["organizationId" if "organizationId" in e["node"] else "schoolId"]:
                sorted(r["node"]["name"] for r in e["node"]["rolesConnection"]["edges"]) for e in connection["edges"]}

    return {
        "user_id": node["id"],
        "organizations": roles(node["organizationMembershipsConnection"]),
        "schools": roles(node["schoolMembershipsConnection"]),
        "allowed": {p["permissionId"]: p["allowed"] for p in my_user["hasPermissionsInOrganization"]},
    }


def test_admin_tokens_are_accepted_and_hold_their_roles(sandbox, sandbox_settings, tmp_path):
    from ult_pipeline.seeding.identities import TokenSigner
    from ult_pipeline.seeding.run import prepare
    from ult_pipeline.target_db.wipe import wipe

    client = GraphQLClient(sandbox.url, api_key=sandbox.api_key)
    prepared = prepare(
        client=client, dataset=generate(PROFILES["tiny"], 4), signer=TokenSigner(),
        identities_path=tmp_path / "identities.json",
        wipe=lambda: wipe(sandbox.dsn, "sandbox", restart_service=lambda: manager.restart_service(sandbox_settings)),
    )
    assert prepared.counts_match, (prepared.expected_counts, prepared.actual_counts)
    identities = json.loads((tmp_path / "identities.json").read_text())["identities"]
    by_role: dict[str, list[dict]] = {}
    for identity in identities:
        by_role.setdefault(identity["role"], []).append(identity)
    assert (len(by_role["org_admin"]), len(by_role["school_admin"])) == (2, 2)

    for org_admin in by_role["org_admin"]:
        scope = scope_of(sandbox.url, org_admin)
        assert scope["user_id"] == org_admin["user_id"]
        assert scope["organizations"] == {org_admin["organization_id"]: ["Organization Admin"]}
        assert scope["schools"] == {}
        assert scope["allowed"] == dict.fromkeys(PERMISSIONS, True)
    for school_admin in by_role["school_admin"]:
        scope = scope_of(sandbox.url, school_admin)
        assert scope["user_id"] == school_admin["user_id"]
        # The School Admin role on the organization membership, and a member of its school.
        assert scope["organizations"] == {school_admin["organization_id"]: ["School Admin"]}
        assert scope["schools"] == {school_admin["school_id"]: ["School Admin"]}
        assert scope["allowed"] == {"create_class_20224": True, "edit_users_40330": False,
                                    "delete_class_20444": False}
    # A teacher's token, for contrast: no write permission at all.
    teacher = scope_of(sandbox.url, by_role["teacher"][0])
    assert teacher["organizations"] == {by_role["teacher"][0]["organization_id"]: ["Teacher"]}
    assert teacher["allowed"] == dict.fromkeys(PERMISSIONS, False)


def test_a_custom_profile_without_admins_seeds_and_counts(sandbox, sandbox_settings, tmp_path):
    from ult_pipeline.seeding.identities import TokenSigner
    from ult_pipeline.seeding.profiles import get_profile
    from ult_pipeline.seeding.run import prepare
    from ult_pipeline.target_db.wipe import wipe

    profile = get_profile("plain", {"plain": {"organizations": 1, "schools_per_organization": 1, "classes_per_school": 1,
                                              "teachers_per_organization": 1, "students_per_organization": 3,
                                              "org_admins_per_organization": 0, "school_admins_per_school": 0}})
    prepared = prepare(
        client=GraphQLClient(sandbox.url, api_key=sandbox.api_key), dataset=generate(profile, 1), signer=TokenSigner(),
        identities_path=tmp_path / "identities.json",
        wipe=lambda: wipe(sandbox.dsn, "sandbox", restart_service=lambda: manager.restart_service(sandbox_settings)),
    )
    assert prepared.counts_match, (prepared.expected_counts, prepared.actual_counts)
    assert (prepared.actual_counts["organization_admins"], prepared.actual_counts["school_admins"]) == (1, 0)
    roles = {i["role"] for i in json.loads((tmp_path / "identities.json").read_text())["identities"]}
    assert roles == {"student", "teacher"}
