"""Planted canary secrets never reach files or output: `ult run` (wipe, seed, k6) and the sandbox
and database commands run against the session's sandbox with every secret the project reads set
to a canary; then every file under the run's results folder and the sandbox home, and all
captured output, is searched for them.

Allowed: the sandbox's API key in its own 0600 `api_key` file. Tokens (in the 0600 identities
file) are not canaries: no secret of the environment goes into them.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

CANARIES = {
    # New Relic, under the project's names and New Relic's own.
    "ULT_NEWRELIC_LICENSE_KEY": "canary-nr-license-4417",
    "ULT_NEWRELIC_USER_KEY": "NRAK-canary-user-4417",
    "NEW_RELIC_LICENSE_KEY": "canary-nr-agent-4417",
    "NEW_RELIC_API_KEY": "canary-nr-api-4417",
    "ULT_OTLP_HEADERS": "api-key=canary-otlp-4417",
    "DAGSTER_PG_PASSWORD": "canary-dagster-pg-4417",
    "AWS_SESSION_TOKEN": "canary-aws-session-4417",
}
DSN_PASSWORD = "canary-dsn-pw-4417"


def ult(*args: str, env: dict[str, str], timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ult_pipeline.cli", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


def files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_no_planted_secret_reaches_files_or_output(sandbox, sandbox_settings, tmp_path):
    # The embedded server trusts its Unix socket, so the DSN's password is a canary that connects.
    assert sandbox.dsn.startswith("postgresql://postgres:@"), sandbox.dsn
    dsn = sandbox.dsn.replace("postgresql://postgres:@", f"postgresql://postgres:{DSN_PASSWORD}@", 1)
    results = tmp_path / "results"
    env = {**os.environ, **CANARIES, "ULT_TARGET_DSN": dsn, "ULT_RESULTS_DIR": str(results),
           "ULT_SANDBOX_HOME": str(sandbox_settings.home), "ULT_SANDBOX_PORT": str(sandbox_settings.port),
           "ULT_SANDBOX_AWS_PORT": str(sandbox_settings.aws_port)}
    outputs = [
        ult("run", "--profile", "tiny", "--load", "short", "--duration", "5s", "--environment", "sandbox", env=env),
        ult("sandbox", "status", env=env),
        ult("sandbox", "status", "--json", env=env),
        ult("target-db", "show", env=env),
    ]
    run = outputs[0]
    assert run.returncode in (0, 99), run.stdout + run.stderr  # 99: a threshold crossed on a busy machine
    assert "files: " in run.stdout and (results / "runs").is_dir()
    assert "postgres:***@" in run.stdout  # the wipe did use the DSN that carries the canary
    assert all(r.returncode == 0 for r in outputs[1:]), [r.stderr for r in outputs[1:]]

    secrets = {**CANARIES, "ULT_TARGET_DSN password": DSN_PASSWORD}
    found = []
    for name, value in secrets.items():
        for i, result in enumerate(outputs):
            if value in result.stdout + result.stderr:
                found.append(f"{name} in the output of command #{i}")
        for path in files_under(results) + files_under(sandbox_settings.home):
            if value.encode() in path.read_bytes():
                found.append(f"{name} in {path}")
    # The sandbox's API key: in its own private file, nowhere else.
    api_key = sandbox.api_key
    assert stat.S_IMODE(sandbox_settings.api_key_file.stat().st_mode) == 0o600
    for result in outputs[:2] + outputs[3:]:  # `status --json` prints it on purpose, for scripts
        if api_key in result.stdout + result.stderr:
            found.append("the sandbox API key in a command's output")
    for path in files_under(results) + files_under(sandbox_settings.home):
        if path != sandbox_settings.api_key_file and api_key.encode() in path.read_bytes():
            found.append(f"the sandbox API key in {path}")
    assert not found, found
    # The tokens are where they belong, and private.
    [identities] = list(results.glob("runs/*/identities.json"))
    assert stat.S_IMODE(identities.stat().st_mode) == 0o600
