"""The wipe reaches only the target's own database: two sandboxes, each a marked load-test database.

Both databases carry the same marker ("sandbox"), so the marker alone cannot tell them apart;
the proof (the service's system role ids, read through its API, stored in this database) can.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import psycopg
import pytest

from ult_pipeline.sandbox import manager
from ult_pipeline.sandbox.settings import SandboxSettings
from ult_pipeline.target_api.client import GraphQLClient
from ult_pipeline.target_db.wipe import IN_PLACE, RECREATE, TargetCheck, TargetMismatchError, WipeError, wipe
from ult_pipeline_tests.conftest import free_port
from ult_pipeline_tests.seeding.test_seed_sandbox import ult


@pytest.fixture(scope="module")
def second_sandbox():
    settings = SandboxSettings(home=Path(tempfile.mkdtemp(prefix="ult-sb2-")), port=free_port(), external_dsn=None,
                               aws_port=free_port())
    status = manager.up(settings)
    yield settings, status
    manager.down(settings, purge=True)


def state(dsn: str) -> dict:
    """What a wipe would change: the tenant rows and the system role ids (a recreate makes new ones)."""
    with psycopg.connect(dsn) as conn:
        return {
            "users": conn.execute('SELECT count(*) FROM "user"').fetchone()[0],
            "organizations": conn.execute("SELECT count(*) FROM organization").fetchone()[0],
            "roles": sorted(conn.execute("SELECT role_id::text FROM role WHERE system_role").fetchall()),
        }


def seeded(settings, results) -> None:
    run = ult("seed", "--profile", "tiny", settings=settings, results=results)
    assert run.returncode == 0, run.stderr


def test_a_dsn_of_another_sandbox_is_refused_and_neither_database_changes(sandbox, sandbox_settings, second_sandbox,
                                                                         tmp_path):
    other_settings, other = second_sandbox
    seeded(other_settings, tmp_path / "other")
    before = (state(sandbox.dsn), state(other.dsn))
    run = ult("seed", "--target", sandbox.url, "--dsn", other.dsn, "--environment", "sandbox", "--strategy", IN_PLACE,
              settings=sandbox_settings, results=tmp_path, env={"ULT_TARGET_API_KEY": sandbox.api_key})
    assert run.returncode == 1, run.stdout + run.stderr
    assert "not the database behind " + sandbox.url in run.stderr and "nothing was changed" in run.stderr
    assert "database: " in run.stdout and "(from --dsn)" in run.stdout
    assert "Traceback" not in run.stderr
    assert (state(sandbox.dsn), state(other.dsn)) == before


def test_ult_target_dsn_of_another_sandbox_never_pairs_silently_with_this_sandbox(sandbox, sandbox_settings,
                                                                                second_sandbox, tmp_path):
    other_settings, other = second_sandbox
    before = (state(sandbox.dsn), state(other.dsn))
    for command in (("seed", "--profile", "tiny"), ("run", "--profile", "tiny", "--duration", "5s", "--rate", "2")):
        run = ult(*command, settings=sandbox_settings, results=tmp_path, env={"ULT_TARGET_DSN": other.dsn})
        assert run.returncode == 1, run.stdout + run.stderr
        assert "(from $ULT_TARGET_DSN)" in run.stdout
        assert "not the database behind" in run.stderr
        assert "wiped" not in run.stdout
        assert (state(sandbox.dsn), state(other.dsn)) == before


def test_the_recreate_wipe_of_the_right_database_is_proven_served_afterwards(second_sandbox):
    other_settings, other = second_sandbox
    client = GraphQLClient(other.url, api_key=other.api_key)
    roles_before = state(other.dsn)["roles"]
    result = wipe(other.dsn, other_settings.environment, strategy=RECREATE, behind=TargetCheck.through(client),
                  restart_service=lambda: manager.restart_service(other_settings))
    assert result.strategy == RECREATE
    after = state(other.dsn)
    assert after["users"] == 0 and after["roles"] != roles_before  # the service made new roles on boot


def test_a_service_that_does_not_serve_the_recreated_schema_is_caught(second_sandbox):
    other_settings, other = second_sandbox
    client = GraphQLClient(other.url, api_key=other.api_key)
    served = dict(TargetCheck.through(client).system_roles())
    # The service kept answering with the ids of before: as if it had not restarted on the new schema.
    stale = TargetCheck(other.url, lambda: served)

    def restart_and_boot():
        manager.restart_service(other_settings)
    with pytest.raises(TargetMismatchError, match="not the one the service now serves"):
        wipe(other.dsn, other_settings.environment, strategy=RECREATE, behind=stale, restart_service=restart_and_boot)


def test_a_schema_that_does_not_exist_is_refused_and_nothing_is_wiped(sandbox, sandbox_settings, tmp_path):
    seeded(sandbox_settings, tmp_path)
    before = state(sandbox.dsn)
    with pytest.raises(WipeError, match="has no schema 'nonexistent'"):
        wipe(sandbox.dsn, sandbox_settings.environment, strategy=IN_PLACE, db_schema="nonexistent")
    run = ult("wipe", "--dsn", sandbox.dsn, "--environment", "sandbox", "--schema", "nonexistent",
              settings=sandbox_settings, results=tmp_path)
    assert run.returncode == 1 and "has no schema 'nonexistent'" in run.stderr
    assert "wiped" not in run.stdout
    assert state(sandbox.dsn) == before
