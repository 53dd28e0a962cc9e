"""The instance configs: local (project dagster.yaml) and production (PostgreSQL storage)."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_one_load_test_at_a_time():
    local = yaml.safe_load((ROOT / "dagster.yaml").read_text())
    assert local["concurrency"]["pools"] == {"granularity": "run", "default_limit": 1}
    assert local["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert local["run_monitoring"]["enabled"] and local["run_monitoring"]["cancel_timeout_seconds"] > 0
