"""Every bad option of `ult run`, `ult seed` and `ult wipe` is refused before anything is wiped or seeded."""

from __future__ import annotations

import psycopg
import pytest

from ult_pipeline_tests.seeding.test_seed_sandbox import ult


def fingerprint(dsn: str) -> tuple:
    """The tenant rows and the system role ids: a recreate wipe changes the ids, a seed the rows."""
    with psycopg.connect(dsn) as conn:
        return (conn.execute('SELECT count(*) FROM "user"').fetchone()[0],
                sorted(conn.execute("SELECT role_id::text FROM role WHERE system_role").fetchall()))


@pytest.mark.parametrize("args, problem", [
    (("run", "--rate", "2.5", "--duration", "20s"), "whole number"),
    (("run", "--rate", "nan", "--duration", "20s"), "whole number"),
    (("run", "--rate", "0", "--duration", "20s"), "whole number"),
    (("run", "--duration", "0s"), "zero"),
    (("run", "--duration", "ten minutes"), "is not like 30s"),
    (("seed", "--concurrency", "0"), "--concurrency"),
    (("seed", "--identities", "/proc/nope/x.json"), "identities file /proc/nope/x.json"),
    (("seed", "--identities", "/"), "identities"),
    # os.access says yes to root there; only a real write finds out.
    (("seed", "--identities", "/sys/x.json"), "cannot write the identities file /sys/x.json"),
    (("wipe", "--dsn", "SANDBOX_DSN", "--environment", "sandbox", "--schema", "nonexistent"), "has no schema"),
])
def test_a_bad_option_touches_nothing(sandbox, sandbox_settings, tmp_path, args, problem):
    ult("seed", "--profile", "tiny", settings=sandbox_settings, results=tmp_path)
    before = fingerprint(sandbox.dsn)
    run = ult(*(sandbox.dsn if a == "SANDBOX_DSN" else a for a in args), settings=sandbox_settings, results=tmp_path)
    assert run.returncode in (1, 2), run.stdout + run.stderr
    assert problem in run.stderr, run.stderr
    assert "Traceback" not in run.stderr
    assert "wiped" not in run.stdout and "seeding" not in run.stdout
    assert fingerprint(sandbox.dsn) == before


def test_the_help_says_which_rates_run(sandbox_settings, tmp_path):
    run = ult("run", "--help", settings=sandbox_settings, results=tmp_path)
    assert "whole number" in run.stdout and "2.5 is refused" in run.stdout
