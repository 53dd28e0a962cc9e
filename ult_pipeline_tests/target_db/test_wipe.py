"""The guarded wipe against a real PostgreSQL: refusals change nothing, the marker survives."""

from __future__ import annotations

import time
import uuid

import psycopg
import pytest

from ult_pipeline.target_db import marker
from ult_pipeline.target_db.wipe import IN_PLACE, RECREATE, WipeError, wipe


@pytest.fixture()
def scratch_db(sandbox):
    """A database of its own on the sandbox's server, with a few service-like tables."""
    name = f"scratch_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(sandbox.dsn, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    dsn = sandbox.dsn.replace("/postgres?", f"/{name}?")
    with psycopg.connect(dsn) as conn:
        conn.execute("""
            CREATE TABLE migrations (id serial PRIMARY KEY, timestamp bigint, name varchar);
            INSERT INTO migrations (timestamp, name) VALUES (1, 'Init1');
            CREATE TABLE organization (organization_id uuid PRIMARY KEY, organization_name varchar);
            CREATE TABLE "user" (user_id uuid PRIMARY KEY, given_name varchar,
                "myOrganizationOrganizationId" uuid REFERENCES organization);
            CREATE TABLE role (role_id uuid PRIMARY KEY, role_name varchar, system_role boolean,
                "organizationOrganizationId" uuid REFERENCES organization);
            INSERT INTO organization VALUES ('00000000-0000-0000-0000-000000000001', 'Org');
            INSERT INTO "user" VALUES ('00000000-0000-0000-0000-0000000000aa', 'Ava', '00000000-0000-0000-0000-000000000001');
            INSERT INTO role VALUES ('00000000-0000-0000-0000-0000000000b1', 'Student', true, NULL),
                                    ('00000000-0000-0000-0000-0000000000b2', 'Custom', false, '00000000-0000-0000-0000-000000000001');
        """)
    yield dsn
    with psycopg.connect(sandbox.dsn, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


def counts(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn) as conn:
        return {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in ("migrations", "organization", "user", "role")}


def test_no_marker_refuses_and_changes_nothing(scratch_db):
    before = counts(scratch_db)
    for strategy in (IN_PLACE, RECREATE):
        with pytest.raises(marker.MarkerError, match="no load-test marker.*ult target-db mark"):
            wipe(scratch_db, "loadtest", strategy=strategy, restart_service=lambda: None)
    assert counts(scratch_db) == before


def test_another_environment_refuses_and_changes_nothing(scratch_db):
    marker.mark(scratch_db, "staging-loadtest", marked_by="test")
    before = counts(scratch_db)
    with pytest.raises(marker.MarkerError, match="'staging-loadtest'.*configured for 'prod-loadtest'"):
        wipe(scratch_db, "prod-loadtest", strategy=IN_PLACE)
    assert counts(scratch_db) == before


def test_in_place_keeps_migrations_and_system_rows(scratch_db):
    marker.mark(scratch_db, "loadtest", marked_by="test")
    wipe(scratch_db, "loadtest", strategy=IN_PLACE)
    assert counts(scratch_db) == {"migrations": 1, "organization": 0, "user": 0, "role": 1}


def test_recreate_drops_the_schema_restarts_and_the_marker_survives(scratch_db):
    marker.mark(scratch_db, "loadtest", marked_by="test")
    restarted = []
    result = wipe(scratch_db, "loadtest", strategy=RECREATE, restart_service=lambda: restarted.append(True))
    assert restarted == [True] and result.strategy == RECREATE
    with psycopg.connect(scratch_db) as conn:
        assert conn.execute("SELECT to_regclass('public.migrations')").fetchone()[0] is None
        assert marker.read(conn).environment == "loadtest"


def test_recreate_without_a_restart_is_refused_before_touching_anything(scratch_db):
    marker.mark(scratch_db, "loadtest", marked_by="test")
    with pytest.raises(WipeError, match="restart"):
        wipe(scratch_db, "loadtest", strategy=RECREATE)
    assert counts(scratch_db)["user"] == 1


def test_an_unreachable_database_is_a_clear_error():
    with pytest.raises(WipeError, match="cannot reach"):
        wipe("postgresql://nobody@127.0.0.1:1/none", "loadtest", strategy=IN_PLACE)


def test_refreshing_statistics_analyses_every_table_of_the_schema(scratch_db):
    from ult_pipeline.target_db.statistics import refresh_statistics

    def analysed(dsn):
        with psycopg.connect(dsn) as conn:
            rows = conn.execute("SELECT relname FROM pg_stat_user_tables "
                                "WHERE schemaname = 'public' AND last_analyze IS NOT NULL").fetchall()
        return {r[0] for r in rows}

    assert analysed(scratch_db) == set()
    tables, seconds = refresh_statistics(scratch_db, "public")
    assert tables == 4 and seconds >= 0
    # The statistics collector reports asynchronously: give it a moment.
    deadline = time.monotonic() + 10
    while analysed(scratch_db) != {"migrations", "organization", "user", "role"} and time.monotonic() < deadline:
        time.sleep(0.2)
    assert analysed(scratch_db) == {"migrations", "organization", "user", "role"}


def test_refreshing_statistics_of_an_unreachable_database_is_a_clear_error():
    from ult_pipeline.target_db.statistics import refresh_statistics

    with pytest.raises(WipeError, match="cannot reach the target database to refresh its statistics") as err:
        refresh_statistics("postgresql://ult:s3cret-pw@127.0.0.1:9/none?connect_timeout=2")
    assert "s3cret-pw" not in str(err.value)


def test_an_in_place_wipe_of_a_schema_without_the_services_tables_is_refused(scratch_db):
    marker.mark(scratch_db, "loadtest", marked_by="test")
    with psycopg.connect(scratch_db) as conn:
        conn.execute("CREATE SCHEMA elsewhere; CREATE TABLE elsewhere.notes (id int); INSERT INTO elsewhere.notes VALUES (1)")
    before = counts(scratch_db)
    with pytest.raises(WipeError, match="schema 'elsewhere' .* has no user-service tables"):
        wipe(scratch_db, "loadtest", strategy=IN_PLACE, db_schema="elsewhere")
    with pytest.raises(WipeError, match="refusing to wipe schema 'ult_loadtest'"):
        wipe(scratch_db, "loadtest", strategy=IN_PLACE, db_schema=marker.MARKER_SCHEMA)
    assert counts(scratch_db) == before
