"""Benchmark: the trend report for 500 builds x 10 operations (target: at most 5 s).

    .venv/bin/python -m ult_pipeline_tests.bench.trend_report

It times `write_trend_report`, what the `trend_report` asset runs: reading the history store, each
build's verdict.json and k6/result.json, and writing the page. The store is written first (not
timed): 500 builds, one 10x noisy build, a +30 % step on one operation, 5 failed builds.

Baseline in the same run: writing the same history to CSV with pandas (a lower bound for
touching every row once), as the ratio.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ult_pipeline.assets.ab_confirmation import store_verdict
from ult_pipeline.assets.trend_report import RESULT_FILE, write_trend_report
from ult_pipeline.resources.target import ResultsStoreResource
from ult_pipeline_tests.analysis.history_fixtures import k6_result

BUILDS, OPERATIONS, NOISY, STEP_FROM, FAILED = 500, 10, 123, 400, (50, 150, 250, 350, 450)


def make_store(base: Path) -> tuple[ResultsStoreResource, pd.DataFrame]:
    """A results store as the pipeline leaves it, and the history it holds."""
    rng = np.random.default_rng(0)
    ops = [f"op{i}" for i in range(OPERATIONS)]
    store = ResultsStoreResource(base_dir=str(base))
    history_store = store.history_store()
    frames = []
    for b in range(BUILDS):
        build = f"b{b:03d}-{b:012x}"
        pushed = pd.Timestamp("2026-01-01", tz="UTC") + pd.Timedelta(hours=b)
        rows = []
        for op in ops:
            p95 = 10 * float(np.exp(rng.normal(0, 0.03))) * (10 if b == NOISY else 1) * \
                (1.3 if op == "op3" and b >= STEP_FROM else 1)
            for metric, value in (("p50", p95 * 0.5), ("p95", p95), ("p99", p95 * 1.4), ("error_rate", 0.001),
                                  ("throughput", 22.0)):
                rows.append({"build": build, "pushed_at": pushed, "operation": op, "metric": metric, "value": value})
        frame = pd.DataFrame(rows)
        frames.append(frame)
        history_store.record({"build": build, "pushed_at": pushed, "requests": 105_600, "p95_ms": 12.0,
                              "error_rate": 0.001, "students": 2000}, frame)
        folder = store.partition_dir(build)
        (folder / RESULT_FILE).parent.mkdir(parents=True, exist_ok=True)
        failed = b in FAILED
        (folder / RESULT_FILE).write_text(json.dumps(k6_result(dropped=40) if failed else k6_result()))
        if b >= 2 and not failed:
            operations = [{"operation": op, "verdict": "regressed" if op == "op3" and b == STEP_FROM else "unchanged",
                           "confidence": "confirmed" if op == "op3" and b == STEP_FROM else None,
                           "p95_ms": 10.0, "p95_change_pct": 1.0, "p95_ci_low_pct": -2.0, "p95_ci_high_pct": 4.0,
                           "mdc_pct": 5.0, "p_adjusted": 0.5,
                           "change_points": f"b{STEP_FROM:03d}-{STEP_FROM:012x}" if op == "op3" and b > STEP_FROM else ""}
                          for op in ops]
            store_verdict(folder, {"build": build, "verdict": "unchanged", "summary": "unchanged",
                                   "operations": operations})
    return store, pd.concat(frames, ignore_index=True)


def main() -> None:
    out = Path(tempfile.mkdtemp(prefix="ult-trend-"))
    store, frame = make_store(out / "results")
    started = time.perf_counter()
    frame.to_csv(out / "history.csv", index=False)
    baseline = time.perf_counter() - started
    started = time.perf_counter()
    report = write_trend_report(store)
    total = time.perf_counter() - started
    print(f"builds {BUILDS}, operations {OPERATIONS}, rows {len(frame)}; noisy {report['noisy']}, "
          f"failed {report['failed']}, change points {report['change_points']}")
    print(f"trend report (write_trend_report, as the asset): {total:.2f} s (target <= 5 s), of which the page "
          f"(write_report) {report['seconds']:.2f} s; baseline to_csv: {baseline:.2f} s; ratio {total / baseline:.1f}x; "
          f"html {report['html'].stat().st_size / 1e6:.1f} MB")
    print(f"the report: {report['html']} (its 500-build results folder stays in {out}: delete it when done)")


if __name__ == "__main__":
    main()
