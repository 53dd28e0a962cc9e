"""boto3 clients with timeouts and retries set, for AWS or a local endpoint (moto), and a time budget.

botocore bounds each attempt (`connect_timeout`, `read_timeout`: seconds per socket connect and
per socket read) and the number of attempts (`retries.total_max_attempts`, the first one
included; `retries.max_attempts` counts retries only, see botocore.config.Config), but not the
total time of a call. `budget_config` derives per-attempt timeouts and attempts that fit a budget,
and `within` enforces it: whatever the endpoint does (accepts and never answers, trickles bytes),
the caller gets an answer or `OutOfBudget` when the budget is spent.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

import boto3
from botocore.config import Config

T = TypeVar("T")

# Of a budget of B seconds: each attempt may take B/8 to connect and B/4 per read, with 2 attempts
# (one retry): 2 x 3B/8 = 0.75 B, leaving room for botocore's retry delay (standard mode: at most
# 1 s before the first retry of a throttled call, 50 ms otherwise).
BUDGET_ATTEMPTS = 2
_CONNECT_SHARE, _READ_SHARE = 1 / 8, 1 / 4


class OutOfBudget(TimeoutError):
    """A call did not finish within its time budget."""


def config(*, connect_timeout_s: float = 5.0, read_timeout_s: float = 30.0, total_max_attempts: int = 6) -> Config:
    """botocore Config: standard retries (throttling included), `total_max_attempts` attempts in all."""
    return Config(connect_timeout=connect_timeout_s, read_timeout=read_timeout_s,
                  retries={"total_max_attempts": total_max_attempts, "mode": "standard"})


def budget_config(budget_s: float, *, connect_timeout_s: float = 5.0, read_timeout_s: float = 30.0,
                  total_max_attempts: int = 6) -> Config:
    """A Config whose worst call fits in `budget_s` seconds: timeouts and attempts lowered (never
    raised) to B/8 s to connect, B/4 s per read and `BUDGET_ATTEMPTS` attempts. ValueError for a
    budget that is not positive."""
    if not budget_s > 0:
        raise ValueError(f"a time budget must be positive, not {budget_s!r} s")
    return config(connect_timeout_s=min(connect_timeout_s, budget_s * _CONNECT_SHARE),
                  read_timeout_s=min(read_timeout_s, budget_s * _READ_SHARE),
                  total_max_attempts=max(1, min(total_max_attempts, BUDGET_ATTEMPTS)))


def client(
    service: str, *, region: str, endpoint_url: str | None = None, connect_timeout_s: float = 5.0,
    read_timeout_s: float = 30.0, max_attempts: int = 5, budget_s: float | None = None,
):
    """A boto3 client; `max_attempts` retries after the first attempt (botocore's meaning). With
    `budget_s`, timeouts and attempts are lowered to fit it (`budget_config`)."""
    if budget_s is None:
        settings = config(connect_timeout_s=connect_timeout_s, read_timeout_s=read_timeout_s,
                          total_max_attempts=max_attempts + 1)
    else:
        settings = budget_config(budget_s, connect_timeout_s=connect_timeout_s, read_timeout_s=read_timeout_s,
                                 total_max_attempts=max_attempts + 1)
    return boto3.client(service, region_name=region, endpoint_url=endpoint_url or None, config=settings)


def within(budget_s: float, work: Callable[[], T], *, what: str = "the call") -> T:
    """`work()`'s result, or its exception, when it finishes within `budget_s` seconds; else
    `OutOfBudget`. The work runs in a daemon thread that is left to finish on its own (give it a
    client from `budget_config`, so that it does soon after); nothing waits for it."""
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["value"] = work()
        except BaseException as err:  # noqa: BLE001 - handed to the caller's thread as it is
            box["error"] = err

    thread = threading.Thread(target=run, name=f"within-{budget_s:g}s", daemon=True)
    started = time.monotonic()
    thread.start()
    thread.join(budget_s)
    if thread.is_alive():
        raise OutOfBudget(f"{what} took longer than {budget_s:g} s (gave up after {time.monotonic() - started:.1f} s)")
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]
