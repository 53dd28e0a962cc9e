"""`ult sandbox up/push`: the knobs reach the service process (the manager's calls recorded, no sandbox started)."""

from __future__ import annotations

from types import SimpleNamespace

from click.testing import CliRunner

from ult_pipeline.cli import sandbox as sandbox_cli
from ult_pipeline.sandbox.service_process import ServiceKnobs


def test_up_passes_unlocked_roster_writes_and_restarts_the_service(monkeypatch, tmp_path):
    calls = []
    status = SimpleNamespace(service_healthy=True)
    monkeypatch.setattr(sandbox_cli.manager, "status", lambda settings: status)
    monkeypatch.setattr(sandbox_cli.manager, "up", lambda settings, knobs, restart: calls.append((knobs, restart)) or status)
    CliRunner().invoke(sandbox_cli.sandbox, ["up", "--home", str(tmp_path), "--roster-writes", "unlocked"])
    [(knobs, restart)] = calls
    assert knobs == ServiceKnobs(roster_writes="unlocked") and restart
    assert knobs.to_args() == ["--roster-writes", "unlocked"]


def test_up_refuses_an_unknown_roster_write_mode_before_starting_anything(monkeypatch, tmp_path):
    monkeypatch.setattr(sandbox_cli.manager, "up", lambda *a, **k: (_ for _ in ()).throw(AssertionError("started")))
    result = CliRunner().invoke(sandbox_cli.sandbox, ["up", "--home", str(tmp_path), "--roster-writes", "sometimes"])
    assert result.exit_code == 2 and "'sometimes' is not one of 'locked', 'unlocked'" in result.output


def test_status_says_when_the_service_plays_a_lossy_build(monkeypatch, tmp_path):
    from ult_pipeline.sandbox.manager import SandboxStatus

    def status_with(knobs):
        return SandboxStatus(url="http://127.0.0.1:1/user/", base_url="http://127.0.0.1:1/user", api_key="k",
                             dsn="postgresql://u:secret@h/db", postgres="embedded", postgres_running=True,
                             service_pid=1, service_healthy=True, aws_endpoint="http://127.0.0.1:2",
                             aws_running=True, home=str(tmp_path), knobs=knobs)

    monkeypatch.setattr(sandbox_cli.manager, "status", lambda settings: status_with({"roster_writes": "unlocked"}))
    result = CliRunner().invoke(sandbox_cli.sandbox, ["status", "--home", str(tmp_path)])
    assert "knobs: --roster-writes unlocked" in result.output and "secret" not in result.output
    as_json = CliRunner().invoke(sandbox_cli.sandbox, ["status", "--home", str(tmp_path), "--json"])
    assert '"roster_writes": "unlocked"' in as_json.output
    monkeypatch.setattr(sandbox_cli.manager, "status", lambda settings: status_with({}))
    assert "knobs" not in CliRunner().invoke(sandbox_cli.sandbox, ["status", "--home", str(tmp_path)]).output
