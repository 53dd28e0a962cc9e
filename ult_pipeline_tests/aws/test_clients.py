"""botocore clients: timeouts and attempts, and a time budget that holds (pure: no AWS)."""

from __future__ import annotations

import threading
import time

import pytest

from ult_pipeline.aws.clients import BUDGET_ATTEMPTS, OutOfBudget, budget_config, client, within


def test_max_attempts_keeps_botocores_meaning_retries_after_the_first(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    config = client("ecr", region="us-east-1", max_attempts=5).meta.config
    assert config.retries == {"total_max_attempts": 6, "mode": "standard"}
    assert (config.connect_timeout, config.read_timeout) == (5.0, 30.0)


@pytest.mark.parametrize("budget", [1.0, 4.0, 20.0, 55.0])
def test_a_budget_config_fits_its_worst_call_in_the_budget(budget):
    config = budget_config(budget)
    attempts = config.retries["total_max_attempts"]
    assert attempts == BUDGET_ATTEMPTS
    # Each attempt: one connect and (at least) one read; standard mode waits at most 1 s before a retry.
    assert attempts * (config.connect_timeout + config.read_timeout) + (attempts - 1) * 1.0 <= budget + 1.0
    assert attempts * (config.connect_timeout + config.read_timeout) <= 0.75 * budget


def test_a_budget_never_raises_the_configured_timeouts():
    config = budget_config(55, connect_timeout_s=2, read_timeout_s=3, total_max_attempts=1)
    assert (config.connect_timeout, config.read_timeout, config.retries["total_max_attempts"]) == (2, 3, 1)
    with pytest.raises(ValueError, match="positive"):
        budget_config(0)


def test_within_returns_raises_or_gives_up():
    assert within(5, lambda: 42) == 42
    with pytest.raises(KeyError):
        within(5, lambda: {}["missing"])
    release = threading.Event()
    started = time.monotonic()
    with pytest.raises(OutOfBudget, match="the listing took longer than 0.3 s"):
        within(0.3, lambda: release.wait(30), what="the listing")
    assert time.monotonic() - started < 10
    release.set()
