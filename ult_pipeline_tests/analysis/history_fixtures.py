"""Synthetic performance histories in the long format the analysis reads."""

from __future__ import annotations

import numpy as np
import pandas as pd

OPS = ["me", "myUser", "memberships", "orgMemberships", "myUsers", "userNode", "myClasses", "permissions"]


def history(builds: int = 12, *, cv: float = 0.03, slow_op: str | None = None, slow_from: int | None = None,
            factor: float = 1.3, env_noise: float = 0.0, seed: int = 0, noisy: int | None = None,
            noisy_factor: float = 10.0) -> pd.DataFrame:
    """`builds` builds of every operation; from build `slow_from` on, `slow_op` is `factor` slower.
    `env_noise` scales each whole build by a random factor (a busy host slows everything); build
    number `noisy` (if given) has every latency `noisy_factor` times higher (one very busy host)."""
    rng = np.random.default_rng(seed)
    base = {op: 5.0 + i for i, op in enumerate(OPS)}
    rows = []
    for b in range(builds):
        build = f"v{b:03d}-{b:012x}"
        pushed = pd.Timestamp("2026-11-01T00:00:00Z") + pd.Timedelta(minutes=10 * b)
        host = float(np.exp(rng.normal(0, env_noise))) if env_noise else 1.0
        busy = noisy_factor if b == noisy else 1.0
        all_p95 = []
        for op in OPS:
            level = base[op] * host * (factor if op == slow_op and slow_from is not None and b >= slow_from else 1.0)
            p95 = level * float(np.exp(rng.normal(0, cv))) * busy
            all_p95.append(p95)
            for metric, value in (("p50", p95 * 0.5), ("p95", p95), ("p99", p95 * 1.5), ("error_rate", 0.0),
                                  ("throughput", 22.0)):
                rows.append({"build": build, "pushed_at": pushed, "operation": op, "metric": metric, "value": value})
        for metric, value in (("p95", float(np.median(all_p95))), ("error_rate", 0.0), ("throughput", 176.0)):
            rows.append({"build": build, "pushed_at": pushed, "operation": "__all__", "metric": metric, "value": value})
    return pd.DataFrame(rows)


def k6_result(*, interrupted: bool = False, exit_code: int = 0, crossed: dict[str, list[str]] | None = None,
              target_rate: float = 22.0, achieved_rate: float = 22.0, dropped: int = 0, seconds: float = 600.0) -> dict:
    """A `k6/result.json` as `loadtest.run` writes it (the fields the trend report reads):
    `crossed` maps a k6 metric to its threshold expressions that were crossed."""
    crossed = crossed or {}
    thresholds = {"http_req_duration": {"p(99)<1000": True}, "http_req_failed": {"rate<0.01": True}}
    for metric, expressions in crossed.items():
        thresholds.setdefault(metric, {}).update({e: False for e in expressions})
    return {"interrupted": interrupted, "exit_code": exit_code, "thresholds_crossed": bool(crossed),
            "thresholds": thresholds, "target_rate": target_rate, "achieved_rate": achieved_rate, "seconds": seconds,
            "totals": {"requests": 105_600, "error_rate": 0.0, "p95_ms": 12.0, "p99_ms": 18.0,
                       "iterations": int(achieved_rate * seconds), "dropped_iterations": dropped}}
