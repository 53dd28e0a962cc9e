"""`ult analyze HISTORY.csv`: the pipeline's regression analysis offline, as a CI gate."""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import click
import numpy as np
import pandas as pd

from ult_pipeline.analysis.gate import EXIT_BAD_INPUT, decide, judge
from ult_pipeline.analysis.history import HistoryError, build_order, read_csv
from ult_pipeline.analysis.regression import DEFAULT_GATE, MIN_HISTORY, GateConfig, build_tags

# Builds named when `--build` is not among them: the newest few are the likely ones.
BUILDS_SHOWN = 5


class BadInput(click.ClickException):
    """Exit 2 with `error: MESSAGE` on one line of stderr."""

    exit_code = EXIT_BAD_INPUT

    def show(self, file=None) -> None:
        click.echo(f"error: {' '.join(self.format_message().split())}", err=True)


class GateCommand(click.Command):
    """A command whose every failure is bad input: exit 2 with one line on stderr, never a traceback.

    CI reads exit 1 as "regression": a usage error (click's own is several lines), a crash or an
    interruption must not look like one.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as err:
            raise BadInput(f"{err.format_message()} (see --help)") from None

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit):
            # Already a message and an exit code (ctx.exit() is how a command may set its own).
            raise
        except KeyboardInterrupt:
            raise BadInput("interrupted") from None
        except Exception as err:
            raise BadInput(f"internal error while analysing: {type(err).__name__}: {err}") from None


def _tolerance(ctx: click.Context, param: click.Parameter, value: float) -> float:
    """`value` when a finite number >= 0 (click's float takes nan and inf); else raises `click.BadParameter`."""
    if not math.isfinite(value) or value < 0:
        raise click.BadParameter(f"{value} is not a percentage; give a finite number >= 0, e.g. 3")
    return value


def _candidate(path: Path, order: list[str], build: str | None) -> str:
    """The build to judge: `build`, or the newest when it is not given.

    Raises `HistoryError` when `order` is empty or `build` is not in it.
    """
    if not order:
        raise HistoryError(f"{path}: no rows; expected one per build, operation and metric")
    if not build:
        return order[-1]
    if build not in order:
        shown = ", ".join(order[-BUILDS_SHOWN:])
        more = "..., " if len(order) > BUILDS_SHOWN else ""
        raise HistoryError(f"build {build!r} is not in {path} (builds, newest last: {more}{shown}); "
                           "give one of them, or leave --build out for the newest")
    return build


def _records(frame: pd.DataFrame) -> list[dict]:
    """Rows for strict JSON: NaN and an unbounded interval end become null."""
    finite = frame.replace([np.inf, -np.inf], np.nan)
    return finite.astype(object).where(finite.notna(), None).to_dict(orient="records")


@click.command("analyze", cls=GateCommand)
@click.argument("history_csv", type=click.Path(path_type=Path))
@click.option("--build", default=None, help="Build to judge (default: the newest).")
@click.option("--baseline", default=DEFAULT_GATE.baseline, show_default=True,
              help="last:N, pinned:BUILD or release[:REGEX]")
@click.option("--tolerance", "tolerance_pct", default=DEFAULT_GATE.tolerance_pct, show_default=True,
              callback=_tolerance, help="Smallest change that counts, % (>= 0).")
@click.option("--matters", "matters_pct", default=DEFAULT_GATE.matters_pct, show_default=True, callback=_tolerance,
              help="Smallest change that matters, %: an operation that could not see it is 'inconclusive'.")
@click.option("--no-normalize", is_flag=True, help="Compare operations in absolute terms.")
@click.option("--output", type=click.Choice(["table", "json"]), default="table", show_default=True)
def analyze_command(history_csv, build, baseline, tolerance_pct, matters_pct, no_normalize, output) -> None:
    """Exit 0: no confirmed regression; 1: a confirmed regression; 2: bad input (one line on stderr says what).

    The same gate, defaults and rule as the pipeline's `no_regression` check (ult_pipeline.analysis.gate).
    A regression is confirmed when the newest builds together are slower than the baseline (one
    noisy build cannot do that alone). A regression seen on the newest build only is "suspected":
    printed as a warning, exit 0 (re-run the job, or the next build confirms or clears it). An
    operation whose run could not have seen a change of --matters % is "inconclusive" (printed,
    exit 0), never "unchanged".

    HISTORY_CSV has columns build, pushed_at, operation, metric, value (metric one of p50, p95,
    p99, error_rate, throughput) and optionally samples_path. Values must be finite and >= 0,
    error_rate at most 1.

    Repeated rows of one build, operation and metric (a CI job re-run and appended twice) are
    combined: the median of their values, the earliest pushed_at, the first non-empty samples_path.
    """
    for option, value in (("--build", build), ("--baseline", baseline)):
        if value is not None and not value.strip():
            raise BadInput(f"{option} is empty: give a value, or leave {option} out for its default")
    if tolerance_pct > matters_pct:
        raise BadInput(f"--tolerance {tolerance_pct:g} is above --matters {matters_pct:g}: a change that matters "
                       "must count; lower --tolerance or raise --matters")
    try:
        history = read_csv(history_csv)
        order = build_order(history)
        candidate = _candidate(history_csv, order, build)
        # Change points are reported, never used by the verdict, and only the JSON output shows them:
        # the table skips them, and with them ruptures' ~0.5 s import (scipy.stats).
        config = GateConfig(baseline=baseline, tolerance_pct=tolerance_pct, matters_pct=matters_pct,
                            normalize=not no_normalize, find_change_points=output == "json")
        earlier = config.policy().earlier_builds(order, candidate, build_tags(history))
        if len(earlier) < MIN_HISTORY:
            raise HistoryError(f"{history_csv}: build {candidate!r} has {len(earlier)} baseline build(s) before it; "
                               f"a verdict needs at least {MIN_HISTORY}; judge a later build or widen --baseline")
        judgement = judge(history, candidate, config)
    except HistoryError as err:
        raise BadInput(str(err)) from None
    decision = decide(judgement.operations, config)
    try:
        _print(judgement, decision, candidate, output)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`| head`): the verdict still decides the exit code, not the pipe.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(decision.exit_code)


def _print(judgement, decision, candidate: str, output: str) -> None:
    verdicts, table = judgement.operations, judgement.table
    if output == "json":
        click.echo(json.dumps({"build": candidate, "verdict": decision.verdict, "summary": decision.summary,
                               "fails": decision.fails, "warns": decision.warns, "operations": _records(verdicts),
                               "metrics": _records(table)}, indent=2, default=str, allow_nan=False))
    else:
        click.echo(f"build {candidate}: {decision.verdict}")
        if not table["relative"].any():
            click.echo("compared in absolute terms (normalization needs at least 4 operations, or --no-normalize)")
        shown = verdicts[["operation", "verdict", "confidence", "p50_ms", "p50_change_pct", "p95_ms",
                          "p95_change_pct", "p95_ci_low_pct", "p95_ci_high_pct", "mdc_pct", "p_adjusted"]]
        shown = shown.astype(object).where(shown.notna(), None).replace({None: ""})
        click.echo(shown.to_string(index=False, float_format=lambda v: f"{v:.2f}", na_rep=""))
        if decision.warns:
            click.echo(f"warning: {decision.summary}")
