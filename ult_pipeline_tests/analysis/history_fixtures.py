"""Synthetic performance histories in the long format the analysis reads."""

from __future__ import annotations

import numpy as np
import pandas as pd

OPS = ["me", "myUser", "memberships", "orgMemberships", "myUsers", "userNode", "myClasses", "permissions"]


def history(builds: int = 12, *, cv: float = 0.03, slow_op: str | None = None, slow_from: int | None = None,
            factor: float = 1.3, env_noise: float = 0.0, seed: int = 0) -> pd.DataFrame:
    """`builds` builds of every operation; from build `slow_from` on, `slow_op` is `factor` slower.
    `env_noise` scales each whole build by a random factor (a busy host slows everything)."""
    rng = np.random.default_rng(seed)
    base = {op: 5.0 + i for i, op in enumerate(OPS)}
    rows = []
    for b in range(builds):
        build = f"v{b:03d}-{b:012x}"
        pushed = pd.Timestamp("2026-11-01T00:00:00Z") + pd.Timedelta(minutes=10 * b)
        host = float(np.exp(rng.normal(0, env_noise))) if env_noise else 1.0
        all_p95 = []
        for op in OPS:
            level = base[op] * host * (factor if op == slow_op and slow_from is not None and b >= slow_from else 1.0)
            p95 = level * float(np.exp(rng.normal(0, cv)))
            all_p95.append(p95)
            for metric, value in (("p50", p95 * 0.5), ("p95", p95), ("p99", p95 * 1.5), ("error_rate", 0.0),
                                  ("throughput", 22.0)):
                rows.append({"build": build, "pushed_at": pushed, "operation": op, "metric": metric, "value": value})
        for metric, value in (("p95", float(np.median(all_p95))), ("error_rate", 0.0), ("throughput", 176.0)):
            rows.append({"build": build, "pushed_at": pushed, "operation": "__all__", "metric": metric, "value": value})
    return pd.DataFrame(rows)
