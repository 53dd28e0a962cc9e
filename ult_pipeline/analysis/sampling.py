"""Within-run sampling error of each build's percentiles, from its raw samples (bootstrap)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from ult_pipeline.analysis.detector import bootstrap_quantile_se
from ult_pipeline.analysis.history import ALL_OPERATIONS

QUANTILES = {"p50": 0.50, "p95": 0.95, "p99": 0.99}


def _requests_file(samples_path: str) -> Path | None:
    if not samples_path or samples_path in ("None", "nan"):
        return None
    path = Path(samples_path)
    path = path / "requests.parquet" if path.is_dir() else path
    return path if path.is_file() else None


BATCHES = 6


def batch_log_errors(frame: pd.DataFrame, batches: int = BATCHES) -> dict[tuple[str, str], float]:
    """(operation, metric) -> standard error of log(percentile) relative to the other operations, by batch means.

    The run is cut into `batches` equal slices of time; in each, every operation's percentile is
    taken relative to the median of the other operations' (logs). Their spread across slices, over
    sqrt(batches), is the error of the whole run's value: unlike a bootstrap of the samples, it sees a
    host that was busy for part of the run, and an operation that reacts to it more than the others.
    """
    if frame.empty:
        return {}
    t = frame["time_ms"].to_numpy()
    span = max(int(t.max() - t.min()), 1)
    slice_of = np.minimum((t - t.min()) * batches // span, batches - 1)
    out: dict[tuple[str, str], float] = {}
    for metric, q in QUANTILES.items():
        per = frame.assign(slice=slice_of).groupby(["slice", "operation"], observed=True)["duration_ms"].quantile(q)
        logs = np.log(per.unstack("operation").clip(lower=1e-6))
        if logs.shape[0] < 3 or logs.shape[1] < 3:
            continue
        for operation in logs.columns:
            relative = logs[operation] - logs.drop(columns=operation).median(axis=1)
            relative = relative.dropna()
            if len(relative) >= 3:
                out[(str(operation), metric)] = float(relative.std(ddof=1) / np.sqrt(len(relative)))
    return out


def successful_samples(path: Path) -> pd.DataFrame:
    """The samples of `path` whose latencies count: successful requests only.

    A failed request's duration (a refused connection: ~0 ms) is not a latency. Files without a
    `failed` column (other tools') are taken as all successful; without `time_ms`, no times.
    """
    names = pq.read_schema(path).names
    # Samples written by other tools may lack the request times: then the bootstrap alone.
    columns = [c for c in ("time_ms", "operation", "duration_ms", "failed") if c in names]
    frame = pd.read_parquet(path, columns=columns)
    if "failed" in frame.columns:
        frame = frame[~frame["failed"].to_numpy(dtype=bool, na_value=False)].drop(columns="failed")
    return frame


def sampling_errors(history: pd.DataFrame, builds: list[str]) -> dict[tuple[str, str, str], float]:
    """(build, operation, metric) -> standard error (ms) of that percentile, for builds whose samples exist.

    From the successful requests only, as the percentiles themselves are.
    """
    errors: dict[tuple[str, str, str], float] = {}
    if "samples_path" not in history.columns:
        return errors
    paths = history[history["build"].isin(builds)].groupby("build")["samples_path"].first()
    for build, samples_path in paths.items():
        path = _requests_file(str(samples_path))
        if path is None:
            continue
        frame = successful_samples(path)
        timed = "time_ms" in frame.columns
        batch = batch_log_errors(frame) if timed else {}
        groups = {str(op): g["duration_ms"].to_numpy() for op, g in frame.groupby("operation", observed=True)}
        groups[ALL_OPERATIONS] = frame["duration_ms"].to_numpy()
        for operation, samples in groups.items():
            if len(samples) < 2:
                continue
            for metric, q in QUANTILES.items():
                se = bootstrap_quantile_se(samples, q)
                # The batch-means error is of the log: in the value's unit it is that times the value.
                log_se = batch.get((operation, metric))
                if log_se is not None:
                    se = max(se, log_se * float(np.quantile(samples, q)))
                errors[(build, operation, metric)] = se
    return errors
