"""`ult sandbox up|status|down` as a person or a script uses them, through the real CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import psycopg
import pytest
import requests

from ult_pipeline.sandbox import manager, postgres
from ult_pipeline.sandbox.settings import SandboxSettings
from ult_pipeline.target_db import marker
from ult_pipeline_tests.conftest import free_port


def ult(*args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ult_pipeline.cli", *args], capture_output=True, text=True,
        env={**os.environ, **(env or {})}, timeout=timeout,
    )


def our_processes(home) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline", "environ"]):
        try:
            cmdline = " ".join(proc.info["cmdline"] or [])
            if str(home) in cmdline or (
                "ult_pipeline.sandbox_service" in cmdline and str(home) in json.dumps(proc.environ())
            ):
                found.append(proc)
        except psutil.Error:
            continue
    return found


@pytest.fixture()
def own_home(tmp_path_factory):
    import tempfile
    from pathlib import Path

    home = Path(tempfile.mkdtemp(prefix="ult-own-"))
    env = {"ULT_SANDBOX_HOME": str(home), "ULT_SANDBOX_PORT": str(free_port()), "ULT_SANDBOX_AWS_PORT": str(free_port())}
    yield home, env
    manager.down(SandboxSettings.from_env(home=str(home), port=int(env["ULT_SANDBOX_PORT"]),
                                          aws_port=int(env["ULT_SANDBOX_AWS_PORT"])), purge=True)


def test_up_status_down_through_the_cli(own_home):
    home, env = own_home
    started = time.monotonic()
    result = ult("sandbox", "up", env=env)
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 15
    assert f"http://127.0.0.1:{env['ULT_SANDBOX_PORT']}/user/" in result.stdout

    status = json.loads(ult("sandbox", "status", "--json", env=env).stdout)
    assert {"url", "api_key", "dsn"} <= status.keys()
    assert status["service_healthy"] and status["postgres_running"]
    assert requests.get(status["url"] + "health", timeout=5).json() == {"status": "pass"}
    assert requests.get(status["url"] + "version", timeout=5).json() == {"version": "4.5.0"}
    ok = requests.post(
        status["url"], json={"query": "{ myUser { node { id } } }"},
        headers={"Authorization": f"Bearer {status['api_key']}"}, timeout=5,
    )
    assert ok.status_code == 200
    assert status["api_key"] not in result.stdout

    # Idempotent: a second `up` keeps the same service process.
    again = ult("sandbox", "up", "--json", env=env)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["service_pid"] == status["service_pid"]

    down = ult("sandbox", "down", env=env)
    assert down.returncode == 0, down.stderr
    assert "sandbox service" in down.stdout and "embedded PostgreSQL" in down.stdout and "moto_server" in down.stdout
    def service_gone() -> bool:
        pid = status["service_pid"]
        return not psutil.pid_exists(pid) or not manager.service_process.is_service_process(pid)
    deadline = time.monotonic() + 10
    while not service_gone() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert service_gone()
    assert not postgres.is_running(home / "pgdata")
    assert ult("sandbox", "down", env=env).stdout.strip() == "nothing was running"


def test_up_recovers_a_state_left_by_a_killed_session(own_home):
    home, env = own_home
    assert ult("sandbox", "up", env=env).returncode == 0
    status = json.loads(ult("sandbox", "status", "--json", env=env).stdout)
    # A killed session: the service and PostgreSQL die without cleaning up.
    os.killpg(status["service_pid"], signal.SIGKILL)
    pg_pid = int((home / "pgdata" / "postmaster.pid").read_text().splitlines()[0])
    psutil.Process(pg_pid).kill()
    psutil.Process(pg_pid).wait(10)

    again = ult("sandbox", "up", "--json", env=env)
    assert again.returncode == 0, again.stderr
    recovered = json.loads(again.stdout)
    assert recovered["service_healthy"] and recovered["service_pid"] != status["service_pid"]


def test_down_does_not_stop_an_outside_database(own_home, sandbox):
    # With ULT_SANDBOX_DSN the sandbox uses that server and must leave it running.
    home, env = own_home
    env = {**env, "ULT_SANDBOX_DSN": sandbox.dsn}
    result = ult("sandbox", "up", "--json", env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["postgres"] == "external"
    assert not (home / "pgdata").exists()
    down = ult("sandbox", "down", env=env)
    assert "PostgreSQL" not in down.stdout
    with psycopg.connect(sandbox.dsn) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_the_sandbox_marks_its_own_database(sandbox):
    with psycopg.connect(sandbox.dsn) as conn:
        found = marker.read(conn)
    assert found is not None and found.environment == "sandbox"


def test_a_taken_port_is_a_clear_error(own_home):
    home, env = own_home
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", int(env["ULT_SANDBOX_PORT"])))
        s.listen()
        result = ult("sandbox", "up", env=env)
    assert result.returncode != 0
    assert "port" in result.stderr


def test_settings_keep_the_ports_of_the_sandbox_running_in_the_home(tmp_path, monkeypatch):
    # `ult sandbox up --port N`, then `ult run`: a recreate wipe restarts the service on N, not 18080.
    import json

    from ult_pipeline.sandbox.settings import DEFAULT_PORT, SandboxSettings

    monkeypatch.delenv("ULT_SANDBOX_PORT", raising=False)
    monkeypatch.delenv("ULT_SANDBOX_AWS_PORT", raising=False)
    assert SandboxSettings.from_env(home=str(tmp_path)).port == DEFAULT_PORT
    (tmp_path / "sandbox.json").write_text(json.dumps({"service": {"pid": 1, "port": 59847},
                                                        "aws": {"pid": 2, "port": 59848}}))
    settings = SandboxSettings.from_env(home=str(tmp_path))
    assert (settings.port, settings.aws_port) == (59847, 59848)
    assert SandboxSettings.from_env(home=str(tmp_path), port=1234).port == 1234
    monkeypatch.setenv("ULT_SANDBOX_PORT", "4321")
    assert SandboxSettings.from_env(home=str(tmp_path)).port == 4321


def _with_password(dsn: str, password: str) -> str:
    # The embedded server trusts its Unix socket: a password in the DSN is ignored, so a canary
    # can ride along on a DSN that really connects.
    assert dsn.startswith("postgresql://postgres:@"), dsn
    return dsn.replace("postgresql://postgres:@", f"postgresql://postgres:{password}@", 1)


@pytest.mark.slow
def test_an_outside_dsns_password_is_never_printed_and_its_state_is_private(own_home, sandbox):
    import stat

    home, env = own_home
    canary = "canaryPw7731"
    env = {**env, "ULT_SANDBOX_DSN": _with_password(sandbox.dsn, canary)}
    up = ult("sandbox", "up", env=env)
    assert up.returncode == 0, up.stderr
    assert "postgres:***@" in up.stdout
    outputs = [up, ult("sandbox", "up", "--json", env=env), ult("sandbox", "status", env=env),
               ult("sandbox", "status", "--json", env=env)]
    for result in outputs:
        assert result.returncode == 0, result.stderr
        assert canary not in result.stdout + result.stderr
    assert json.loads(outputs[-1].stdout)["dsn"].startswith("postgresql://postgres:***@")
    for secret_file in ("sandbox.json", "api_key"):
        assert stat.S_IMODE((home / secret_file).stat().st_mode) == 0o600, secret_file
    assert not list(home.glob("*.tmp")) and not list(home.glob(".*.tmp"))
    # In memory the DSN stays real: `ult seed` and `ult wipe` connect with it.
    settings = SandboxSettings.from_env(home=str(home), port=int(env["ULT_SANDBOX_PORT"]),
                                        aws_port=int(env["ULT_SANDBOX_AWS_PORT"]))
    assert manager.status(settings).dsn == env["ULT_SANDBOX_DSN"]


def test_a_malformed_outside_dsn_is_a_one_line_error_without_the_password(own_home):
    home, env = own_home
    result = ult("sandbox", "up", env={**env, "ULT_SANDBOX_DSN": "host=127.0.0.1 password=canary Pw7731 dbname=x"})
    assert result.returncode != 0
    assert "canary" not in result.stdout + result.stderr and "Pw7731" not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "malformed DSN" in result.stderr and "password=***" in result.stderr


def test_the_state_file_is_private_even_over_a_planted_temporary_file_or_symlink(tmp_path):
    import stat

    settings = SandboxSettings(home=tmp_path, port=1, external_dsn=None)
    victim = tmp_path / "victim"
    victim.write_text("untouched")
    (tmp_path / "sandbox.tmp").symlink_to(victim)
    manager._write_state(settings, {"postgres": {"dsn": "postgresql://u:canary@h/db"}})
    assert stat.S_IMODE(settings.state_file.stat().st_mode) == 0o600
    assert victim.read_text() == "untouched"
    key = manager.api_key(settings)
    assert stat.S_IMODE(settings.api_key_file.stat().st_mode) == 0o600
    assert manager.api_key(settings) == key and settings.api_key_file.read_text() == key


def test_a_service_restart_keeps_moto_where_it_is(own_home):
    home, env = own_home
    settings = SandboxSettings.from_env(home=str(home), port=int(env["ULT_SANDBOX_PORT"]),
                                        aws_port=int(env["ULT_SANDBOX_AWS_PORT"]))
    manager.up(settings)
    moto_before = json.loads(settings.state_file.read_text())["aws"]
    # A restart asked with another AWS port (a stray ULT_SANDBOX_AWS_PORT) restarts the service only.
    moved = SandboxSettings(home=settings.home, port=settings.port, external_dsn=None, aws_port=free_port())
    manager.restart_service(moved)
    assert json.loads(settings.state_file.read_text())["aws"] == moto_before
    assert manager.status(settings).aws_running and manager.status(settings).service_healthy


def test_a_service_stopped_while_starting_is_not_left_behind(own_home):
    from ult_pipeline.sandbox import service_process

    home, env = own_home
    settings = SandboxSettings.from_env(home=str(home), port=int(env["ULT_SANDBOX_PORT"]),
                                        aws_port=int(env["ULT_SANDBOX_AWS_PORT"]))
    manager.up(settings)
    manager.down(settings)
    dsn = postgres.start(settings.pgdata)
    started = []
    real_healthy = service_process.is_healthy

    def interrupted_while_waiting(port):
        started.append(port)
        raise KeyboardInterrupt  # what ult_pipeline.cli.signals raises on SIGTERM
    service_process.is_healthy = interrupted_while_waiting
    try:
        with pytest.raises(KeyboardInterrupt):
            service_process.start(port=settings.port, dsn=dsn, api_key="k", log_path=home / "svc.log")
    finally:
        service_process.is_healthy = real_healthy
    assert started
    deadline = time.monotonic() + 15
    while [p for p in our_processes(home) if "sandbox_service" in " ".join(p.cmdline())] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in our_processes(home) if "sandbox_service" in " ".join(p.cmdline())]


def test_a_bad_port_setting_is_one_line_naming_the_variable(tmp_path):
    result = ult("sandbox", "status", env={"ULT_SANDBOX_HOME": str(tmp_path), "ULT_SANDBOX_PORT": "x"})
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "$ULT_SANDBOX_PORT='x' is not a port" in result.stderr


def test_moto_stopped_while_starting_is_not_left_behind(tmp_path, monkeypatch):
    from ult_pipeline.sandbox import aws

    port = free_port()

    def interrupted(_port):
        raise KeyboardInterrupt  # what ult_pipeline.cli.signals raises on SIGTERM
    monkeypatch.setattr(aws, "is_up", interrupted)
    with pytest.raises(KeyboardInterrupt):
        aws.start(port, tmp_path / "moto.log")

    def ours() -> list[psutil.Process]:
        found = []
        for proc in psutil.process_iter(["cmdline"]):
            cmdline = proc.info["cmdline"] or []
            if any("moto_server" in part for part in cmdline) and str(port) in cmdline:
                found.append(proc)
        return found
    deadline = time.monotonic() + 15
    while ours() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not ours()
