"""Within-run sampling error of each build's percentiles, from its raw samples (bootstrap)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ult_pipeline.analysis.detector import bootstrap_quantile_se
from ult_pipeline.analysis.history import ALL_OPERATIONS

QUANTILES = {"p50": 0.50, "p95": 0.95, "p99": 0.99}


def _requests_file(samples_path: str) -> Path | None:
    if not samples_path or samples_path in ("None", "nan"):
        return None
    path = Path(samples_path)
    path = path / "requests.parquet" if path.is_dir() else path
    return path if path.is_file() else None


def sampling_errors(history: pd.DataFrame, builds: list[str]) -> dict[tuple[str, str, str], float]:
    """(build, operation, metric) -> standard error (ms) of that percentile, for builds whose samples exist."""
    errors: dict[tuple[str, str, str], float] = {}
    if "samples_path" not in history.columns:
        return errors
    paths = history[history["build"].isin(builds)].groupby("build")["samples_path"].first()
    for build, samples_path in paths.items():
        path = _requests_file(str(samples_path))
        if path is None:
            continue
        frame = pd.read_parquet(path, columns=["operation", "duration_ms"])
        groups = {str(op): g["duration_ms"].to_numpy() for op, g in frame.groupby("operation", observed=True)}
        groups[ALL_OPERATIONS] = frame["duration_ms"].to_numpy()
        for operation, samples in groups.items():
            if len(samples) < 2:
                continue
            for metric, q in QUANTILES.items():
                errors[(build, operation, metric)] = bootstrap_quantile_se(samples, q)
    return errors
