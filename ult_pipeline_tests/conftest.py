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
    return SandboxSettings(home=home, port=free_port(), external_dsn=None)


@pytest.fixture(scope="session")
def sandbox(sandbox_settings):
    status = manager.up(sandbox_settings)
    yield status
    manager.down(sandbox_settings, purge=True)
