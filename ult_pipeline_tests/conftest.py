"""Session-wide servers: one sandbox (embedded PostgreSQL + service) for all tests that need it.

The machine has two cores: starting PostgreSQL and the service once per session keeps
the suite fast.
"""

from __future__ import annotations

import socket
import tempfile
from pathlib import Path

import pytest

from ult_pipeline.sandbox import manager
from ult_pipeline.sandbox.settings import SandboxSettings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def sandbox_settings() -> SandboxSettings:
    # Short path: PostgreSQL's Unix socket path has a length limit.
    home = Path(tempfile.mkdtemp(prefix="ult-sb-"))
    return SandboxSettings(home=home, port=free_port(), external_dsn=None, aws_port=free_port())


@pytest.fixture(scope="session")
def sandbox(sandbox_settings):
    status = manager.up(sandbox_settings)
    yield status
    manager.down(sandbox_settings, purge=True)


@pytest.fixture(scope="session")
def results_base():
    return Path(tempfile.mkdtemp(prefix="ult-res-"))


@pytest.fixture(scope="session")
def pipeline_resources(sandbox, sandbox_settings, results_base):
    """The pipeline's resources bound to the session's sandbox."""
    from ult_pipeline.resources.aws import AwsResource
    from ult_pipeline.resources.deployer import SandboxDeployerResource
    from ult_pipeline.resources.k6 import K6RunnerResource
    from ult_pipeline.resources.target import (
        ResultsStoreResource,
        TargetApiResource,
        TargetDatabaseResource,
        TokenSignerResource,
    )
    from ult_pipeline.resources.telemetry import SandboxTelemetryResource
    from ult_pipeline.sandbox import aws as sandbox_aws

    sandbox_aws.ensure_credentials()
    return {
        "aws": AwsResource(endpoint_url=sandbox_aws.endpoint(sandbox_settings.aws_port)),
        "target_api": TargetApiResource(url=sandbox.url, api_key=sandbox.api_key),
        "target_db": TargetDatabaseResource(dsn=sandbox.dsn, environment=sandbox_settings.environment),
        "token_signer": TokenSignerResource(),
        "target_deployer": SandboxDeployerResource(
            home=str(sandbox_settings.home), port=sandbox_settings.port, aws_port=sandbox_settings.aws_port
        ),
        "results_store": ResultsStoreResource(base_dir=str(results_base)),
        "k6_runner": K6RunnerResource(progress_interval_s=2.0),
        "telemetry_source": SandboxTelemetryResource(metrics_url=sandbox.url + "metrics"),
    }
