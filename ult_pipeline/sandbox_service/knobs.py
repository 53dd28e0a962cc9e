"""Demo knobs: extra latency per operation, operations left out of telemetry, and how roster
writes are made (`--roster-writes`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping

# `--roster-writes`: `locked` (the default) writes a class's roster under a lock on the class row,
# so concurrent writes never lose one another; `unlocked` writes it like the real service 4.5.0:
# read the whole roster, then save the new list (delete rows not in it, insert rows of it) with no
# lock, so parallel writes to one class lose acknowledged writes or fail with ERROR_SAVING
# (MUTATIONS.md, "Concurrency").
ROSTER_WRITES_LOCKED = "locked"
ROSTER_WRITES_UNLOCKED = "unlocked"
ROSTER_WRITES_CHOICES = (ROSTER_WRITES_LOCKED, ROSTER_WRITES_UNLOCKED)
# In `unlocked` mode, how long a roster write waits between reading the roster and saving it:
# on a fast machine the real service's window (a round trip to its database) would otherwise
# be too short to ever see the race.
ROSTER_RACE_HOLD_S = 0.005


def parse_assignments(pairs: Iterable[str], *, what: str) -> dict[str, float]:
    """`["myUser=20", "me=5"]` -> `{"myUser": 20.0, "me": 5.0}`; rejects negatives."""
    parsed: dict[str, float] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ValueError(f"{what}: expected OP=NUMBER, got {pair!r}")
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"{what}: {raw!r} is not a number (in {pair!r})") from None
        if value < 0:
            raise ValueError(f"{what}: {pair!r} must not be negative")
        parsed[name] = value
    return parsed


def extra_delay_seconds(
    operation: str,
    handling_seconds: float,
    latency_ms: Mapping[str, float],
    latency_pct: Mapping[str, float],
) -> float:
    """How long to hold the response back: fixed ms plus a percent of the handling time."""
    fixed = latency_ms.get(operation, 0.0) / 1000.0
    relative = handling_seconds * latency_pct.get(operation, 0.0) / 100.0
    return fixed + relative


# The event loop's timers (uvloop: libuv) have millisecond resolution: `asyncio.sleep(0.0005)`
# may return at once, so a sub-millisecond knob (30 % of a 1.5 ms median) would add nothing.
_TIMER_RESOLUTION_S = 0.001


async def hold(seconds: float) -> None:
    """Wait at least `seconds`, precisely also below a millisecond, without blocking the event loop.

    Sleeps on the loop's timer for all but the last millisecond, then yields to the loop until the
    deadline (other requests keep being served; it spins for at most about a millisecond).
    """
    if seconds <= 0:
        return
    deadline = time.perf_counter() + seconds
    if seconds > 2 * _TIMER_RESOLUTION_S:
        await asyncio.sleep(seconds - _TIMER_RESOLUTION_S)
    while time.perf_counter() < deadline:
        await asyncio.sleep(0)
