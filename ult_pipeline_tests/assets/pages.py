"""Stand-ins for what the assets' metadata functions read: a k6 run's result, a build's judgement.

Display code only reads these attributes, so the pages can be built (and checked, in a browser too)
without k6 or a sandbox.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ult_pipeline.analysis.gate import judge
from ult_pipeline.analysis.history import build_order
from ult_pipeline_tests.analysis.history_fixtures import history

OPERATIONS = ("me", "myUser", "memberships", "orgMemberships", "myUsers", "userNode", "myClasses", "permissions")


@dataclass(frozen=True)
class FakeK6:
    thresholds_crossed: bool = False


@dataclass(frozen=True)
class FakeIngested:
    requests_path: Path = Path("/tmp/results/k6/requests.parquet")
    dropped_iterations: int = 0


@dataclass(frozen=True)
class FakeLoadTestResult:
    """What `k6_results.result_metadata` reads of a `LoadTestResult`."""

    operations: pd.DataFrame
    interrupted: bool = False
    target_rate: float = 22.0
    achieved_rate: float = 21.9987654321
    k6: FakeK6 = field(default_factory=FakeK6)
    ingested: FakeIngested = field(default_factory=FakeIngested)
    fingerprint: dict = field(default_factory=lambda: {
        "dataset_hash": "sha256:" + "b" * 64, "scripts_hash": "sha256:" + "a" * 64, "k6_version": "k6 v1.1.0",
        "load_profile": {"rate": 22, "duration": "10m"}})

    def totals(self) -> dict:
        row = self.operations.set_index("operation").loc["__all__"]
        return {"requests": int(row["count"]), "error_rate": float(row["error_rate"]), "p95_ms": float(row["p95"]),
                "p99_ms": float(row["p99"]), "iterations": int(row["count"]) // len(OPERATIONS),
                "dropped_iterations": 0}


def k6_result(seed: int = 0, slow: float = 1.0, failed_operation: str | None = None) -> FakeLoadTestResult:
    """Per-operation aggregates as `ingest` gives them (fractions for rates, ms for latency, unrounded);
    `userNode` `slow` times slower; `failed_operation` with every request failed (no latency at all)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i, op in enumerate(OPERATIONS):
        p50 = (2.0 + i * 0.37) * (slow if op == "userNode" else 1.0) * float(rng.normal(1.0, 0.02))
        failed = op == failed_operation
        rows.append({"operation": op, "count": 1320, "rate": 2.19999876, "error_rate": 1.0 if failed else
                     0.0009549274255156608 * (i % 2), "p50": np.nan if failed else p50,
                     "p90": np.nan if failed else p50 * 1.71234, "p95": np.nan if failed else p50 * 1.98765432,
                     "p99": np.nan if failed else p50 * 3.0123, "max": np.nan if failed else p50 * 9.87654,
                     "check_pass_rate": 0.0 if failed else 0.99924242})
    frame = pd.DataFrame(rows)
    done = frame[frame["p50"].notna()]
    rows.append({"operation": "__all__", "count": int(frame["count"].sum()), "rate": 17.6,
                 "error_rate": float(frame["error_rate"].mean()), "p50": float(done["p50"].median()),
                 "p90": float(done["p90"].median()), "p95": float(done["p95"].median()),
                 "p99": float(done["p99"].median()), "max": float(done["max"].max()), "check_pass_rate": 0.999})
    return FakeLoadTestResult(pd.DataFrame(rows))


def judged(builds: int = 8, slow_from: int | None = 7, factor: float = 1.4, seed: int = 4):
    """(operations, metrics) of the newest build of a synthetic history: `userNode` `factor` times slower
    from build `slow_from` (None: no step)."""
    frame = history(builds, cv=0.05, slow_op="userNode" if slow_from is not None else None, slow_from=slow_from,
                    factor=factor, seed=seed)
    judgement = judge(frame, build_order(frame)[-1])
    return judgement.operations, judgement.table.to_dict(orient="records")
