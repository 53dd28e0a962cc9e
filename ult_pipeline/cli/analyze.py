"""`ult analyze HISTORY.csv`: the pipeline's regression analysis offline, as a CI gate."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import numpy as np
import pandas as pd

from ult_pipeline.analysis.history import HistoryError, build_order, read_csv
from ult_pipeline.analysis.regression import (
    MIN_HISTORY,
    REGRESSED,
    BaselinePolicy,
    analyze,
    operation_verdicts,
    overall,
    tag_of,
)

EXIT_OK, EXIT_REGRESSION, EXIT_BAD_INPUT = 0, 1, 2


def _records(frame: pd.DataFrame) -> list[dict]:
    """Rows for strict JSON: NaN and an unbounded interval end become null."""
    finite = frame.replace([np.inf, -np.inf], np.nan)
    return finite.astype(object).where(finite.notna(), None).to_dict(orient="records")


@click.command("analyze")
@click.argument("history_csv", type=click.Path(path_type=Path))
@click.option("--build", default=None, help="Build to judge (default: the newest).")
@click.option("--baseline", default="last:20", show_default=True, help="last:N, pinned:BUILD or release[:REGEX]")
@click.option("--tolerance", "tolerance_pct", default=3.0, show_default=True, help="Smallest change that counts, %.")
@click.option("--no-normalize", is_flag=True, help="Compare operations in absolute terms.")
@click.option("--output", type=click.Choice(["table", "json"]), default="table", show_default=True)
def analyze_command(history_csv, build, baseline, tolerance_pct, no_normalize, output) -> None:
    """Exit 0: no regression; 1: a regression; 2: bad input.

    HISTORY_CSV has columns build, pushed_at, operation, metric, value (metric one of p50, p95,
    p99, error_rate, throughput) and optionally samples_path.
    """
    try:
        history = read_csv(history_csv)
        order = build_order(history)
        candidate = build or (order[-1] if order else None)
        if candidate is None:
            raise HistoryError(f"{history_csv}: no rows")
        policy = BaselinePolicy.parse(baseline)
        earlier = policy.earlier_builds(order, candidate, tag_of)
        if len(earlier) < MIN_HISTORY:
            raise HistoryError(f"{history_csv}: build {candidate!r} has {len(earlier)} baseline build(s) before it; "
                               f"a verdict needs at least {MIN_HISTORY}")
        table = analyze(history, candidate, baseline=policy, tolerance_pct=tolerance_pct, normalize=not no_normalize)
    except HistoryError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    verdicts = operation_verdicts(table)
    verdict = overall(verdicts)
    if output == "json":
        click.echo(json.dumps({"build": candidate, "verdict": verdict, "operations": _records(verdicts),
                               "metrics": _records(table)}, indent=2, default=str, allow_nan=False))
    else:
        click.echo(f"build {candidate}: {verdict}")
        shown = verdicts[["operation", "verdict", "confidence", "p95_change_pct", "p95_ci_low_pct",
                          "p95_ci_high_pct", "p95_mdc_pct", "noise_cv_pct"]]
        click.echo(shown.to_string(index=False, float_format=lambda v: f"{v:.2f}", na_rep=""))
    sys.exit(EXIT_REGRESSION if (verdicts["verdict"] == REGRESSED).any() else EXIT_OK)
