"""Settings never show secrets; the command line fails fast and clearly."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ult_pipeline.sandbox_service.config import ServiceConfig, redact_dsn


def test_repr_hides_api_key_and_dsn_password():
    config = ServiceConfig(dsn="postgresql://svc:s3cret-pw@db:5432/users", api_key="the-api-key-value")
    shown = repr(config) + str(config)
    assert "s3cret-pw" not in shown
    assert "the-api-key-value" not in shown
    assert "db:5432" in shown


def test_redact_keyword_dsn():
    assert "hunter2" not in redact_dsn("host=db user=svc password=hunter2 dbname=users")


def test_config_is_frozen():
    config = ServiceConfig(dsn="postgresql:///x", api_key="k", latency_ms={"a": 1})
    with pytest.raises(AttributeError):
        config.api_key = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.latency_ms["a"] = 2  # type: ignore[index]


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ULT_SANDBOX")}
    return subprocess.run(
        [sys.executable, "-m", "ult_pipeline.sandbox_service", "--port", "1", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_requires_the_api_key_from_the_environment():
    result = run_cli({}, "--dsn", "postgresql:///nowhere")
    assert result.returncode != 0
    assert "ULT_SANDBOX_API_KEY" in result.stderr


def test_cli_exits_clearly_when_the_database_is_unreachable():
    result = run_cli(
        {"ULT_SANDBOX_API_KEY": "k-123", "ULT_SANDBOX_SERVICE_DSN": "postgresql://u:pw-secret@127.0.0.1:1/x"}
    )
    assert result.returncode != 0
    assert "database unreachable" in result.stderr
    assert "pw-secret" not in result.stderr


def test_every_operations_knob_is_kept_when_the_flags_repeat():
    # The sandbox passes one --latency-ms per operation: all of them must reach the service.
    from ult_pipeline.sandbox.service_process import ServiceKnobs
    from ult_pipeline.sandbox_service.__main__ import build_parser, config_from_args

    knobs = ServiceKnobs(latency_ms={"me": 10, "userNode": 12}, latency_pct={"me": 5, "myUser": 7},
                         no_telemetry=frozenset({"me", "userNode"}))
    args = build_parser().parse_args(knobs.to_args())
    config = config_from_args(args, {"ULT_SANDBOX_API_KEY": "k", "ULT_SANDBOX_SERVICE_DSN": "postgresql://x@127.0.0.1/db"})
    assert dict(config.latency_ms) == {"me": 10.0, "userNode": 12.0}
    assert dict(config.latency_pct) == {"me": 5.0, "myUser": 7.0}
    assert set(config.no_telemetry) == {"me", "userNode"}
