"""Performance history across builds: one row per build, operation and metric.

The same long table serves the pipeline (built from the event log) and `ult analyze`
(read from a CSV with columns build, pushed_at, operation, metric, value[, samples_path]).
"""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

METRICS = ("p50", "p95", "p99", "error_rate", "throughput")
REQUIRED_COLUMNS = ("build", "pushed_at", "operation", "metric", "value")
KEY_COLUMNS = ("build", "operation", "metric")
ALL_OPERATIONS = "__all__"


class HistoryError(ValueError):
    pass


def rows_from_operations(build: str, pushed_at: datetime | str, operations: list[dict], samples_path: str | None = None) -> list[dict]:
    """History rows of one build from its per-operation aggregates (k6_results).

    A latency that is absent or not a number (every request of the operation failed: failed
    requests are never latencies) gives no row; its error rate still does.
    """
    rows = []
    for op in operations:
        values = {"p50": op.get("p50"), "p95": op.get("p95"), "p99": op.get("p99"),
                  "error_rate": op.get("error_rate"), "throughput": op.get("rate")}
        for metric, value in values.items():
            if value not in (None, "") and math.isfinite(float(value)):
                rows.append({"build": build, "pushed_at": pushed_at, "operation": op["operation"], "metric": metric,
                             "value": float(value), "samples_path": samples_path})
    return rows


def _first(mask: pd.Series, source: str, first_line: int | None) -> tuple[int, str]:
    """(position of the first row of `mask`, `source line N` or `source row LABEL` naming it)."""
    position = int(np.flatnonzero(mask.to_numpy())[0])
    label = mask.index[position]
    return position, f"{source} line {label + first_line}" if first_line is not None else f"{source} row {label!r}"


def _where(frame: pd.DataFrame, mask: pd.Series, source: str, first_line: int | None) -> str:
    """`source line N (build 'b', operation 'o', metric 'm')` for the first row of `mask`."""
    position, at = _first(mask, source, first_line)
    row = frame.iloc[position]
    return f"{at} (build {row['build']!r}, operation {row['operation']!r}, metric {row['metric']!r})"


def _valid_values(values: pd.Series, metrics: pd.Series) -> pd.Series:
    """Per row: can the value be its metric? Latencies finite and > 0 (no request takes no time),
    throughput finite and >= 0, error rates in [0, 1]."""
    finite = pd.Series(np.isfinite(values.to_numpy(dtype=float)), index=values.index)
    latency = metrics.isin(("p50", "p95", "p99"))
    in_range = values.ge(0) & (metrics.ne("error_rate") | values.le(1)) & (~latency | values.gt(0))
    return finite & in_range


def _combine_reruns(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per build, operation and metric: re-runs (repeated rows) combined.

    The value is the median of the re-runs' values (one outlying re-run cannot move it), pushed_at
    the earliest (the build's place in the order is when it was first pushed), samples_path the first
    non-empty one; other columns the first. Frames without repeated rows are returned as they are.
    """
    keys = list(KEY_COLUMNS)
    if not frame.duplicated(keys).any():
        return frame
    paths = frame["samples_path"]
    present = paths.notna() & paths.astype(str).str.strip().ne("")
    others = [c for c in frame.columns if c not in (*keys, "value", "pushed_at", "samples_path")]
    grouped = frame.assign(samples_path=paths.where(present)).groupby(keys, sort=False)
    combined = grouped.agg(value=("value", "median"), pushed_at=("pushed_at", "min"),
                           samples_path=("samples_path", "first"), **{c: (c, "first") for c in others})
    return combined.reset_index()[list(frame.columns)]


def validate(frame: pd.DataFrame, source: str = "history", first_line: int | None = None) -> pd.DataFrame:
    """The history with `value` as floats, `pushed_at` as UTC times, a `samples_path` column and
    build, operation and metric as strings, one row per build, operation and metric (re-runs
    combined, see `_combine_reruns`).

    ``first_line``: the CSV line of index label 0, when the index counts the file's data lines;
    bad rows are then named by line, else by index label.

    Raises `HistoryError` naming the first problem: a missing column, an empty build, operation or
    metric, an unknown metric, a value that is not a number or cannot be its metric (latencies and
    throughput must be finite and >= 0, error rates within 0..1), a pushed_at that is not a time.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise HistoryError(f"{source}: missing column(s) {', '.join(missing)}; expected {', '.join(REQUIRED_COLUMNS)} "
                           "(and optionally samples_path), named in the first line")
    for column in KEY_COLUMNS:
        empty = frame[column].isna() | frame[column].astype(str).str.strip().eq("")
        if empty.any():
            at = _first(empty, source, first_line)[1]
            raise HistoryError(f"{at}: {column} is empty; fill it in or remove the row")
    header = frame["build"].eq("build") & frame["metric"].eq("metric")
    if header.any():
        # Histories appended to with the header each time (`cat a.csv b.csv`).
        raise HistoryError(f"{_first(header, source, first_line)[1]}: the header line again; remove it")
    # Build names such as `1` or `2.0` must compare as the names `--build` gives.
    frame = frame.assign(**{c: frame[c].astype(str) for c in KEY_COLUMNS})
    unknown = sorted(set(frame["metric"]) - set(METRICS))
    if unknown:
        raise HistoryError(f"{source}: unknown metric(s) {', '.join(unknown)}; known: {', '.join(METRICS)}; "
                           "fix or remove those rows")
    values = pd.to_numeric(frame["value"], errors="coerce")
    not_number = values.isna() & frame["value"].notna()
    if not_number.any():
        value = frame["value"].iloc[_first(not_number, source, first_line)[0]]
        raise HistoryError(f"{_where(frame, not_number, source, first_line)}: value {value!r} is not a number; "
                           "fix the value or remove the row")
    bad = ~_valid_values(values, frame["metric"])
    if bad.any():
        position = _first(bad, source, first_line)[0]
        value, metric = values.iloc[position], frame["metric"].iloc[position]
        need = {"error_rate": "a finite number within 0..1", "throughput": "a finite number >= 0"}.get(
            metric, "a finite number of ms > 0")
        shown = "is empty" if np.isnan(value) else f"{value} is out of range"
        raise HistoryError(f"{_where(frame, bad, source, first_line)}: value {shown}; a {metric} must be {need}; "
                           "fix the value or remove the row")
    pushed = pd.to_datetime(frame["pushed_at"], utc=True, format="mixed", errors="coerce")
    not_time = pushed.isna()
    if not_time.any():
        text = frame["pushed_at"].iloc[_first(not_time, source, first_line)[0]]
        raise HistoryError(f"{_where(frame, not_time, source, first_line)}: pushed_at {text!r} is not a date/time; "
                           "use ISO 8601, e.g. 2026-11-01T12:00:00Z")
    result = frame.assign(value=values, pushed_at=pushed)
    if "samples_path" not in result.columns:
        result["samples_path"] = None
    return _combine_reruns(result)


def read_csv(path: Path) -> pd.DataFrame:
    """The validated history (see `validate`) in the CSV at `path`.

    Raises `HistoryError` when the file is missing, a folder, unreadable, empty or not a text CSV,
    or its rows are not a valid history.
    """
    try:
        # Blank lines kept (then dropped) so that the index counts lines and bad rows can be named by line.
        # utf-8-sig: a spreadsheet's byte-order mark would otherwise become part of the first column's name.
        frame = pd.read_csv(path, skip_blank_lines=False, encoding="utf-8-sig",
                            dtype={c: str for c in (*KEY_COLUMNS, "pushed_at", "samples_path")})
    except FileNotFoundError:
        raise HistoryError(f"{path}: no such file; give the path of the history CSV") from None
    except IsADirectoryError:
        raise HistoryError(f"{path}: is a folder; give the path of the history CSV in it") from None
    except PermissionError:
        raise HistoryError(f"{path}: permission denied; make the file readable") from None
    except OSError as err:
        raise HistoryError(f"{path}: cannot be read ({err.strerror or err})") from None
    except pd.errors.EmptyDataError:
        raise HistoryError(f"{path}: empty file; expected a CSV with columns {', '.join(REQUIRED_COLUMNS)}") from None
    except ValueError as err:  # the parser's errors and undecodable bytes
        raise HistoryError(f"{path}: not a readable CSV ({err}); expected UTF-8 text with columns "
                           f"{', '.join(REQUIRED_COLUMNS)}") from None
    return validate(frame.dropna(how="all"), str(path), first_line=2)


def build_order(frame: pd.DataFrame) -> list[str]:
    """Builds in push order (ties by name)."""
    firsts = frame.groupby("build")["pushed_at"].min().reset_index().sort_values(["pushed_at", "build"])
    return list(firsts["build"])
