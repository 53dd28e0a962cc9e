"""Benchmark: the trend report for 500 builds x 10 operations (target: at most 5 s).

    .venv/bin/python -m ult_pipeline_tests.bench.trend_report

Baseline in the same run: writing the same history to CSV with pandas (a lower bound for
touching every row once), as the ratio.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ult_pipeline.analysis.report import write_report


def main() -> None:
    rng = np.random.default_rng(0)
    ops = [f"op{i}" for i in range(10)]
    rows = []
    for b in range(500):
        for op in ops:
            p95 = 10 * float(np.exp(rng.normal(0, 0.03)))
            for metric, value in (("p95", p95), ("p99", p95 * 1.4), ("error_rate", 0.001), ("throughput", 22.0)):
                rows.append((f"b{b:03d}-{b:012x}", pd.Timestamp("2026-01-01", tz="UTC") + pd.Timedelta(hours=b), op, metric, value))
    frame = pd.DataFrame(rows, columns=["build", "pushed_at", "operation", "metric", "value"])
    builds = frame[["build", "pushed_at"]].drop_duplicates().assign(students=2000, requests=105_600)
    verdicts = pd.DataFrame({"build": builds["build"], "operation": "op3", "verdict": "unchanged", "change_points": ""})
    out = Path(tempfile.mkdtemp(prefix="ult-trend-"))
    started = time.perf_counter()
    frame.to_csv(out / "history.csv", index=False)
    baseline = time.perf_counter() - started
    report = write_report(out, frame, verdicts, builds)
    print(f"builds 500, operations 10, rows {len(frame)}")
    print(f"trend report: {report['seconds']:.2f} s (target <= 5 s); baseline to_csv: {baseline:.2f} s; "
          f"ratio {report['seconds'] / baseline:.1f}x; html {report['html'].stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
