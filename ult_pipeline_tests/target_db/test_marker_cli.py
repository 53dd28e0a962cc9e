"""`ult target-db show|mark` failures: one line that names the problem, never a traceback or a password."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

CANARY = "canaryPw5519"


def ult(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ult_pipeline.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=60)


@pytest.mark.parametrize(("dsn", "says"), [
    (f"host=127.0.0.1 port=1 password={CANARY} x dbname=db", "malformed DSN"),  # unquoted space
    (f"postgresql://u:{CANARY}@[::1/db", "malformed DSN"),
    (f"postgresql://u:{CANARY}@127.0.0.1:1/db?connect_timeout=3", "cannot connect to postgresql://u:***@127.0.0.1:1/db"),
])
@pytest.mark.parametrize("command", [["show"], ["mark", "--environment", "loadtest"]])
def test_a_bad_dsn_is_one_line_without_the_password(command, dsn, says):
    result = ult("target-db", *command, "--dsn", dsn)
    assert result.returncode == 1
    err = result.stderr.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert says in err and CANARY not in result.stdout + err


def test_show_and_mark_work_against_a_database(sandbox):
    # The sandbox's database: already marked by `ult sandbox up`.
    dsn = sandbox.dsn.replace("postgresql://postgres:@", f"postgresql://postgres:{CANARY}@", 1)
    shown = ult("target-db", "show", "--dsn", dsn)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("environment 'sandbox'")
    marked = ult("target-db", "mark", "--dsn", dsn, "--environment", "sandbox")
    assert marked.returncode == 0 and marked.stdout.startswith("marked: environment 'sandbox'"), marked.stderr
