"""Boot-time bootstrap: dropping the schema and restarting resets everything like the
real service (new system role ids, the migrations row back); the TRUNCATE trap exists."""

from __future__ import annotations

import psycopg
import pytest
import requests
from psycopg import sql

from ult_pipeline.sandbox_service.app import create_app

from .conftest import API_KEY, ThreadedServer, service_config
from .world import SYSTEM_ROLES

RESET_SCHEMA = "sandbox_reset_test"


def boot_and_read_roles(dsn: str) -> dict[str, str]:
    server = ThreadedServer(create_app(service_config(dsn, RESET_SCHEMA))).start()
    try:
        assert requests.get(f"{server.base_url}/user/health", timeout=5).json() == {"status": "pass"}
        response = requests.post(
            f"{server.base_url}/user/",
            json={"query": SYSTEM_ROLES},
            headers={"Authorization": f"Bearer {API_KEY}"},
            timeout=10,
        )
        edges = response.json()["data"]["rolesConnection"]["edges"]
    finally:
        server.stop()
    return {edge["node"]["name"]: edge["node"]["id"] for edge in edges}


def count(dsn: str, query: str) -> int:
    with psycopg.connect(dsn, options=f"-c search_path={RESET_SCHEMA}") as conn:
        return conn.execute(query).fetchone()[0]


def drop_schema(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(RESET_SCHEMA)))


@pytest.mark.slow
def test_drop_schema_and_restart_resets_like_the_real_service(postgres_uri):
    drop_schema(postgres_uri)
    first = boot_and_read_roles(postgres_uri)
    assert sorted(first) == ["Organization Admin", "Parent", "School Admin", "Student", "Teacher"]
    # A restart without a wipe keeps the ids and adds nothing.
    assert boot_and_read_roles(postgres_uri) == first
    assert count(postgres_uri, "SELECT count(*) FROM migrations") == 1
    drop_schema(postgres_uri)
    second = boot_and_read_roles(postgres_uri)
    assert sorted(second) == sorted(first)
    assert set(second.values()).isdisjoint(first.values())
    assert count(postgres_uri, "SELECT count(*) FROM migrations") == 1
    assert count(postgres_uri, "SELECT count(*) FROM program WHERE system") > 0


def test_truncating_organizations_cascades_into_system_data(postgres_uri):
    boot_and_read_roles(postgres_uri)
    with psycopg.connect(postgres_uri, options=f"-c search_path={RESET_SCHEMA}") as conn:
        with conn.transaction(force_rollback=True):
            conn.execute("TRUNCATE organization CASCADE")
            for table in ("role", "program", "age_range", "grade", "subject", "category", "subcategory", '"user"'):
                assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0, table
            # permissions do not reference organization and survive
            assert conn.execute("SELECT count(*) FROM permission").fetchone()[0] > 0


def test_the_load_test_marker_schema_is_refused(postgres_uri):
    with pytest.raises(ValueError, match="reserved"):
        service_config(postgres_uri, "ult_loadtest")
