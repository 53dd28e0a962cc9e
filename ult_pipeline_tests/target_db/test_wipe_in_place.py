"""The in-place wipe at work on full user-service schemas (the sandbox's and the real service's shape):
every tenant row goes, every system row stays, the TRUNCATE reaches only the tables it names, a slow
wipe says its progress, and a stopped or timed-out wipe leaves no statement running in PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import psycopg
import pytest

from ult_pipeline.target_db import marker
from ult_pipeline.target_db.in_place import TENANT_TABLES, Progress
from ult_pipeline.target_db.wipe import APPLICATION_NAME, IN_PLACE, WipeError, wipe
from ult_pipeline_tests.target_db import dataset

SCHEMA = "svc"


@pytest.fixture()
def service_db(sandbox):
    """A database of its own on the sandbox's server, marked for 'loadtest'; yields its DSN."""
    name = f"wipe_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(sandbox.dsn, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    dsn = sandbox.dsn.replace("/postgres?", f"/{name}?")
    marker.mark(dsn, "loadtest", marked_by="test")
    yield dsn
    with psycopg.connect(sandbox.dsn, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


def _filled(dsn: str, shape: str, students: int = 300) -> tuple[dict, dict]:
    with psycopg.connect(dsn) as conn:
        dataset.create_schema(conn, SCHEMA, shape)
        counts = dataset.fill(conn, SCHEMA, students)
        return counts, dataset.system_rows(conn, SCHEMA)


def _state(dsn: str) -> tuple[dict, dict, object]:
    with psycopg.connect(dsn) as conn:
        return dataset.tenant_counts(conn, SCHEMA), dataset.system_rows(conn, SCHEMA), marker.read(conn)


@pytest.mark.parametrize("shape", [dataset.SANDBOX, dataset.REAL])
def test_the_wipe_empties_every_tenant_table_and_keeps_every_system_row(service_db, shape):
    tenant, system = _filled(service_db, shape)
    with psycopg.connect(service_db) as conn:
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", (SCHEMA,))}
    # The dataset has tenant rows in every table but the two system-only ones, and system rows beside them.
    assert set(tenant) == tables - {"migrations", "permission"} and all(tenant.values()), tenant
    assert all(system.values()) and len(system["role"]) == 5 and system["migrations"]
    if shape == dataset.REAL:
        assert len(tables) == 36  # the real service's table count (API.md)
    with psycopg.connect(service_db) as conn:
        marked = marker.read(conn)

    lines: list[str] = []
    result = wipe(service_db, "loadtest", strategy=IN_PLACE, db_schema=SCHEMA, log=lines.append)

    after_tenant, after_system, after_marker = _state(service_db)
    assert {t: n for t, n in after_tenant.items() if n} == {}
    assert after_system == system  # system roles (same ids), permissions and links, migrations, ...
    assert after_marker == marked
    steps = {step.name: step.rows for step in result.steps}
    kept = sum(len(rows) for table, rows in system.items() if table not in ("migrations", "permission"))
    assert steps == {"keep system rows": kept, f"truncate {len(tables) - 2} tables": sum(tenant.values()),
                     "restore system rows": kept, "commit": 0}
    assert not any("refused" in line for line in lines), lines


def test_a_table_outside_the_plan_referencing_a_system_table_leaves_the_partial_plan(service_db):
    """A newer service's table referencing `role`: the TRUNCATE of every tenant table is refused (no
    CASCADE), the tenant-only tables are truncated and the rest deleted; that table keeps its rows."""
    tenant, system = _filled(service_db, dataset.REAL)
    with psycopg.connect(service_db) as conn:
        conn.execute(f"CREATE TABLE {SCHEMA}.role_note (id int PRIMARY KEY, role_id uuid REFERENCES {SCHEMA}.role)")
        conn.execute(f"INSERT INTO {SCHEMA}.role_note SELECT 1, role_id FROM {SCHEMA}.role WHERE system_role LIMIT 1")
    lines: list[str] = []
    result = wipe(service_db, "loadtest", strategy=IN_PLACE, db_schema=SCHEMA, log=lines.append, progress_after_s=0)
    assert any("TRUNCATE of every tenant table refused: a table outside the plan references" in line
               for line in lines), lines
    assert not any("deleting row by row" in line for line in lines), lines
    steps = {step.name: step.rows for step in result.steps}
    assert steps[f"truncate {len(TENANT_TABLES)} tenant tables"] > 0 and steps["delete user"] == tenant["user"]
    after_tenant, after_system, _ = _state(service_db)
    assert {t: n for t, n in after_tenant.items() if n and t != "role_note"} == {}
    assert after_system == system
    with psycopg.connect(service_db) as conn:
        assert conn.execute(f"SELECT count(*) FROM {SCHEMA}.role_note").fetchone()[0] == 1


def test_the_truncate_never_reaches_a_table_it_does_not_name(service_db):
    """A table the plan does not know references a tenant table: without CASCADE PostgreSQL refuses the
    TRUNCATE (it would otherwise empty that table too); the wipe says so and deletes row by row instead."""
    tenant, system = _filled(service_db, dataset.REAL)
    with psycopg.connect(service_db) as conn:
        conn.execute(f"CREATE TABLE {SCHEMA}.later_feature (id int PRIMARY KEY, "
                     f"school_id uuid REFERENCES {SCHEMA}.school (school_id))")
        conn.execute(f"INSERT INTO {SCHEMA}.later_feature VALUES (1, NULL)")
    lines: list[str] = []
    wipe(service_db, "loadtest", strategy=IN_PLACE, db_schema=SCHEMA, log=lines.append)
    assert any("TRUNCATE refused" in line and "deleting row by row" in line for line in lines), lines
    after_tenant, after_system, _ = _state(service_db)
    assert {t: n for t, n in after_tenant.items() if n and t != "later_feature"} == {}
    assert after_system == system
    with psycopg.connect(service_db) as conn:
        assert conn.execute(f"SELECT count(*) FROM {SCHEMA}.later_feature").fetchone()[0] == 1


def test_a_wipe_that_cannot_delete_everything_changes_nothing(service_db):
    tenant, system = _filled(service_db, dataset.REAL)
    with psycopg.connect(service_db) as conn:
        conn.execute(f"CREATE TABLE {SCHEMA}.later_feature (id int PRIMARY KEY, "
                     f"school_id uuid REFERENCES {SCHEMA}.school (school_id))")
        conn.execute(f"INSERT INTO {SCHEMA}.later_feature SELECT 1, school_id FROM {SCHEMA}.school LIMIT 1")
    with pytest.raises(WipeError, match="could not delete the tenant rows.*nothing was changed"):
        wipe(service_db, "loadtest", strategy=IN_PLACE, db_schema=SCHEMA)
    after_tenant, after_system, _ = _state(service_db)
    assert {t: n for t, n in after_tenant.items() if t != "later_feature"} == tenant and after_system == system


def test_progress_says_the_steps_once_slow_and_what_still_runs():
    lines: list[str] = []
    with Progress(lines.append, after_s=0.0, every_s=0.05) as progress:
        release = threading.Event()
        waiter = threading.Thread(target=lambda: progress.run("delete user", lambda: release.wait(30) and 42))
        waiter.start()
        deadline = time.monotonic() + 30
        while not any("still running" in line for line in lines) and time.monotonic() < deadline:
            time.sleep(0.02)
        release.set()
        waiter.join(30)
    assert any(line.startswith("wipe: delete user: still running after") for line in lines), lines
    assert "wipe: delete user: 42 rows in" in lines[-1]

    quiet: list[str] = []
    with Progress(quiet.append, after_s=3600, every_s=0.05) as progress:
        progress.run("delete user", lambda: 7)
    assert quiet == [] and progress.steps[0].rows == 7


def _hold_lock(dsn: str) -> psycopg.Connection:
    """Another session that holds a lock on a tenant table, so the wipe's TRUNCATE waits."""
    holder = psycopg.connect(dsn)
    holder.execute(f"SELECT count(*) FROM {SCHEMA}.organization_membership")  # ACCESS SHARE until rollback
    return holder


def _wipe_backends(dsn: str) -> list[tuple]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(
            "SELECT pid, state, wait_event_type, query FROM pg_stat_activity "
            "WHERE application_name = %s AND datname = current_database() AND state <> 'idle'",
            (APPLICATION_NAME,)).fetchall()


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_statement_timeout_bounds_the_wipe_and_changes_nothing(service_db):
    tenant, system = _filled(service_db, dataset.SANDBOX)
    holder = _hold_lock(service_db)
    try:
        with pytest.raises(WipeError, match=r"ran longer than 1 s \(statement_timeout\); nothing was changed"):
            wipe(service_db, "loadtest", strategy=IN_PLACE, db_schema=SCHEMA, lock_timeout_s=600, statement_timeout_s=1)
        with pytest.raises(WipeError, match=r"waited 1 s for a lock.*nothing was changed"):
            wipe(service_db, "loadtest", strategy=IN_PLACE, db_schema=SCHEMA, lock_timeout_s=1, statement_timeout_s=600)
    finally:
        holder.close()
    assert _state(service_db)[:2] == (tenant, system)


# The wipe in a process of its own, stopped as the CLI stops it (`Stopped`, a KeyboardInterrupt), with
# lock and statement timeouts far beyond the test's deadlines: only a cancellation ends its statement.
_WIPER = textwrap.dedent("""
    import sys
    from ult_pipeline.cli.signals import Stopped, stop_on_signals
    from ult_pipeline.target_db.wipe import wipe
    try:
        with stop_on_signals():
            print("wiping", flush=True)
            wipe(sys.argv[1], "loadtest", strategy="in_place", db_schema=sys.argv[2],
                 lock_timeout_s=600, statement_timeout_s=600)
    except Stopped as stop:
        print("stopped", flush=True)
        sys.exit(stop.exit_code)
    print("not stopped", flush=True)
""")


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=["SIGINT", "SIGTERM", "SIGKILL"])
def test_stopping_the_wipe_leaves_no_statement_running(service_db, how):
    tenant, system = _filled(service_db, dataset.SANDBOX)
    holder = _hold_lock(service_db)
    proc = subprocess.Popen([sys.executable, "-c", _WIPER, service_db, SCHEMA],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: any(row[2] == "Lock" for row in _wipe_backends(service_db)), 60,
                  "the wipe's statement to wait for the held lock")
        proc.send_signal(how)
        out, err = proc.communicate(timeout=60)
        if how != signal.SIGKILL:
            assert proc.returncode == 128 + how and "stopped" in out, (proc.returncode, out, err)
        # A stopped client cancels its statement; a killed one is noticed by the server
        # (client_connection_check_interval): either way nothing of the wipe keeps running.
        _wait_for(lambda: _wipe_backends(service_db) == [], 60, "no statement of the wipe left in pg_stat_activity")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        holder.close()
    assert _state(service_db)[:2] == (tenant, system)


def _ult() -> list[str]:
    script = Path(sys.executable).parent / "ult"
    return [str(script)] if script.exists() else [sys.executable, "-m", "ult_pipeline.cli.main"]


@pytest.mark.slow
def test_stopping_ult_wipe_leaves_no_statement_running(service_db):
    """`ult wipe` itself, stopped with SIGINT while its TRUNCATE runs (a trigger makes it sleep far
    longer than the deadlines, within the default statement_timeout): its statement is cancelled."""
    tenant, system = _filled(service_db, dataset.SANDBOX)
    with psycopg.connect(service_db) as conn:
        conn.execute(f"""
            CREATE FUNCTION {SCHEMA}.slow_truncate() RETURNS trigger LANGUAGE plpgsql AS
                $$ BEGIN PERFORM pg_sleep(600); RETURN NULL; END $$;
            CREATE TRIGGER slow BEFORE TRUNCATE ON {SCHEMA}.school_membership
                FOR EACH STATEMENT EXECUTE FUNCTION {SCHEMA}.slow_truncate();
        """)
    env = {**os.environ, "ULT_TARGET_DSN": service_db}
    proc = subprocess.Popen([*_ult(), "wipe", "--environment", "loadtest", "--schema", SCHEMA],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        _wait_for(lambda: any("TRUNCATE" in row[3] for row in _wipe_backends(service_db)), 90,
                  "ult wipe's TRUNCATE to run")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130 and "stopped by SIGINT" in err, (proc.returncode, out, err)
        _wait_for(lambda: _wipe_backends(service_db) == [], 60, "no statement of ult wipe left in pg_stat_activity")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert _state(service_db)[:2] == (tenant, system)
