"""Performance history across builds: one row per build, operation and metric.

The same long table serves the pipeline (built from the event log) and `ult analyze`
(read from a CSV with columns build, pushed_at, operation, metric, value[, samples_path]).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

METRICS = ("p50", "p95", "p99", "error_rate", "throughput")
REQUIRED_COLUMNS = ("build", "pushed_at", "operation", "metric", "value")
ALL_OPERATIONS = "__all__"


class HistoryError(ValueError):
    pass


def rows_from_operations(build: str, pushed_at: str, operations: list[dict], samples_path: str | None = None) -> list[dict]:
    """History rows of one build from its per-operation aggregates (k6_results)."""
    rows = []
    for op in operations:
        values = {"p50": op.get("p50"), "p95": op.get("p95"), "p99": op.get("p99"),
                  "error_rate": op.get("error_rate"), "throughput": op.get("rate")}
        for metric, value in values.items():
            if value is not None:
                rows.append({"build": build, "pushed_at": pushed_at, "operation": op["operation"], "metric": metric,
                             "value": float(value), "samples_path": samples_path})
    return rows


def validate(frame: pd.DataFrame, source: str = "history") -> pd.DataFrame:
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise HistoryError(f"{source}: missing column(s) {', '.join(missing)}; expected {', '.join(REQUIRED_COLUMNS)}")
    unknown = sorted(set(frame["metric"]) - set(METRICS))
    if unknown:
        raise HistoryError(f"{source}: unknown metric(s) {', '.join(map(str, unknown))}; known: {', '.join(METRICS)}")
    values = pd.to_numeric(frame["value"], errors="coerce")
    bad = frame.loc[values.isna() & frame["value"].notna(), "value"]
    if len(bad):
        raise HistoryError(f"{source}: value {bad.iloc[0]!r} is not a number")
    try:
        pushed = pd.to_datetime(frame["pushed_at"], utc=True, format="mixed")
    except (ValueError, TypeError) as err:
        raise HistoryError(f"{source}: pushed_at must be dates/times: {err}") from None
    result = frame.assign(value=values, pushed_at=pushed)
    if "samples_path" not in result.columns:
        result["samples_path"] = None
    return result


def read_csv(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path)
    except FileNotFoundError:
        raise HistoryError(f"{path}: no such file") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise HistoryError(f"{path}: not a readable CSV ({err})") from None
    return validate(frame, str(path))


def build_order(frame: pd.DataFrame) -> list[str]:
    """Builds in push order (ties by name)."""
    firsts = frame.groupby("build")["pushed_at"].min().reset_index().sort_values(["pushed_at", "build"])
    return list(firsts["build"])
