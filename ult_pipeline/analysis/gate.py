"""The regression gate: one function decides a build's verdict for the asset, `ult analyze` and the benchmarks.

`judge` compares a build with the builds before it (`regression.analyze`, one `GateConfig`);
`apply_confirmation` folds in the A/B re-runs where the pipeline made them; `decide` turns the
verdicts into the gate's outcome: the `no_regression` check's severity and `ult analyze`'s exit code.

What fails the gate (exit 1, check ERROR): a regression confirmed, either by A/B re-runs or, where
no re-run is possible, by the newest builds together (`detector` windows of k >= 2 builds that agree:
one noisy-neighbour build cannot produce it alone). A regression "suspected" on one build only is a
warning (exit 0, printed; check WARN): one slow run cannot be told from a busy host. So is an
"inconclusive" operation: the run could not have seen a change that matters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ult_pipeline.analysis.ab import Confirmation
from ult_pipeline.analysis.history import ALL_OPERATIONS, HistoryError, build_order
from ult_pipeline.analysis.regression import (
    CONFIRMED,
    CONFIRMED_BY_AB,
    DEFAULT_GATE,
    IMPROVED,
    INCONCLUSIVE,
    INSUFFICIENT,
    MIN_HISTORY,
    REGRESSED,
    UNCHANGED,
    GateConfig,
    analyze,
    build_tags,
    inconclusive_detail,
    operation_verdicts,
    overall,
    tag_of,  # noqa: F401 - re-exported: the one parser of partition keys
)

CLEARED_BY_AB = "cleared by A/B"
# A build measured differently from its baseline builds (data set, k6 scripts or version, load profile:
# `history_store.comparable`) is not judged; its operations carry this verdict and, in `not_comparable`, why.
NOT_COMPARABLE = "not comparable"
EXIT_OK, EXIT_REGRESSION, EXIT_BAD_INPUT = 0, 1, 2


@dataclass(frozen=True)
class Judgement:
    build: str
    table: pd.DataFrame  # one row per operation and metric (`regression.analyze`)
    operations: pd.DataFrame  # one row per operation (`regression.operation_verdicts`)

    @property
    def verdict(self) -> str:
        return overall(self.operations)

    def needs_confirmation(self) -> list[str]:
        """Operations an A/B re-run should confirm or clear: judged regressed, or worse with `trigger_alpha`."""
        ops = self.operations
        return list(ops.loc[(ops["operation"] != ALL_OPERATIONS) & ops["trigger"], "operation"])


def judge(history: pd.DataFrame, candidate: str, config: GateConfig = DEFAULT_GATE, *,
          sampling_se: Mapping[tuple[str, str, str], float] | None = None) -> Judgement:
    """The candidate build against its baseline builds; raises HistoryError on an unusable history."""
    table = analyze(history, candidate, config, sampling_se=None if sampling_se is None else dict(sampling_se))
    return Judgement(candidate, table, operation_verdicts(table, config))


def apply_confirmation(operations: pd.DataFrame, results: Mapping[str, Confirmation],
                       config: GateConfig = DEFAULT_GATE) -> pd.DataFrame:
    """The operations' verdicts after A/B re-runs: each confirmed one regressed ("confirmed by A/B"),
    each other one cleared (unchanged, or inconclusive when the re-runs could not see `matters_pct`)."""
    operations = operations.copy()
    for operation, result in results.items():
        index = operations.index[operations["operation"] == operation]
        if result.confirmed:
            operations.loc[index, ["verdict", "confidence"]] = [REGRESSED, CONFIRMED_BY_AB]
        else:
            verdict = INCONCLUSIVE if result.mdc_pct > config.matters_pct else UNCHANGED
            operations.loc[index, ["verdict", "confidence", "regressed_metrics"]] = [verdict, CLEARED_BY_AB, ""]
        operations.loc[index, "ab_change_pct"] = result.change_pct
        operations.loc[index, "ab_p_value"] = result.p_value
        operations.loc[index, "ab_mdc_pct"] = result.mdc_pct
    return operations


@dataclass(frozen=True)
class GateDecision:
    verdict: str  # the build's verdict (`regression.overall`)
    fails: bool  # a confirmed regression: exit 1, the no_regression check fails with ERROR
    warns: bool  # suspected only, or inconclusive: printed, the check fails with WARN
    regressed: tuple[str, ...]  # operations judged regressed (confirmed or suspected)
    summary: str  # one line for people

    @property
    def exit_code(self) -> int:
        return EXIT_REGRESSION if self.fails else EXIT_OK


def not_comparable_operations(operations: list[str], why: str) -> pd.DataFrame:
    """The operations' verdicts of a build that is not judged: every one NOT_COMPARABLE, `why` beside it."""
    return pd.DataFrame([{"operation": op, "verdict": NOT_COMPARABLE, "confidence": None, "regressed_metrics": "",
                          "mdc_pct": None, "change_points": "", "trigger": False, "not_comparable": why}
                         for op in operations],
                        columns=["operation", "verdict", "confidence", "regressed_metrics", "mdc_pct", "change_points",
                                 "trigger", "not_comparable"])


def decide(operations: pd.DataFrame, config: GateConfig | None = None) -> GateDecision:
    """The gate's outcome from the operations' verdicts; the `__all__` row never counts.

    `config` (the gate the verdicts were made with) only lets the summary name the tolerance.

    Operations all NOT_COMPARABLE (the build was not judged) neither fail nor warn, as with
    insufficient history; the summary says "not comparable: <which fingerprint fields changed>".
    """
    counted = operations[operations["operation"] != ALL_OPERATIONS]
    if len(counted) and (counted["verdict"] == NOT_COMPARABLE).all():
        # Like "insufficient history": nothing judged, nothing fails; the summary says why.
        why = next((str(w) for w in counted.get("not_comparable", []) if isinstance(w, str) and w), "")
        return GateDecision(NOT_COMPARABLE, False, False, (), f"{NOT_COMPARABLE}: {why}" if why else NOT_COMPARABLE)
    regressed = counted[counted["verdict"] == REGRESSED]
    confirmed = regressed[regressed["confidence"].isin(CONFIRMED)]
    inconclusive = inconclusive_detail(counted)
    verdict = overall(operations)
    names = tuple(regressed["operation"])
    if len(confirmed):
        summary = f"regressed: {', '.join(confirmed['operation'])} ({', '.join(sorted(set(confirmed['confidence'])))})"
    elif len(regressed):
        summary = (f"suspected regression of {', '.join(names)} on this build alone: a re-run or the next build "
                   "confirms or clears it")
    elif inconclusive:
        summary = f"inconclusive: {_blind_summary(counted, inconclusive, config)}"
    else:
        summary = _quiet_summary(counted, verdict, config)
    if inconclusive and len(regressed):
        summary += f"; inconclusive: {_blind_summary(counted, inconclusive, config)}"
    fails = bool(len(confirmed))
    warns = (bool(len(regressed)) and not fails) or bool(inconclusive)
    return GateDecision(verdict, fails, warns, names, summary)


# Up to this many inconclusive operations are named one by one in the summary; more are summed up.
_NAMED_INCONCLUSIVE = 2


def _blind_summary(counted: pd.DataFrame, detail: str, config: GateConfig | None) -> str:
    """The inconclusive operations in a few words: `detail` (`regression.inconclusive_detail`) for one or
    two, else "8 operations could only see changes above 15 to 24 %" (each one's in `inconclusive_detail`)."""
    rows = counted[counted["verdict"] == INCONCLUSIVE]
    mdc = pd.to_numeric(rows.get("mdc_pct", pd.Series(dtype=float)), errors="coerce")
    mdc = mdc[np.isfinite(mdc)]
    if len(rows) <= _NAMED_INCONCLUSIVE or not len(mdc):
        return detail
    low, high = float(mdc.min()), float(mdc.max())
    span = f"{low:.0f} %" if round(low) == round(high) else f"{low:.0f} to {high:.0f} %"
    matters = f" ({config.matters_pct:g} % matters)" if config is not None else ""
    every = "all " if len(rows) == len(counted) else ""
    return f"{every}{len(rows)} operations could only see changes above {span}{matters}"


def _quiet_summary(counted: pd.DataFrame, verdict: str, config: GateConfig | None) -> str:
    """One sentence for a build with nothing regressed and nothing inconclusive, e.g. "unchanged: no
    operation slower beyond 3 %; each of 8 operations could see a 12 % change"."""
    if verdict == INSUFFICIENT:
        return f"{INSUFFICIENT}: fewer than {MIN_HISTORY} earlier builds to compare with; nothing judged"
    beyond = f"beyond {config.tolerance_pct:g} %" if config is not None else "beyond the tolerance"
    mdc = pd.to_numeric(counted.get("mdc_pct", pd.Series(dtype=float)), errors="coerce")
    mdc = mdc[np.isfinite(mdc)]
    seen = f"; each of {len(counted)} operations could see a {float(mdc.max()):.0f} % change" if len(mdc) else ""
    if verdict == IMPROVED:
        faster = ", ".join(counted.loc[counted["verdict"] == IMPROVED, "operation"])
        return f"{IMPROVED}: {faster} faster; no operation slower {beyond}{seen}"
    return f"{verdict}: no operation slower {beyond}{seen}"


def representative_baseline(history: pd.DataFrame, candidate: str, operations: list[str], metric: str = "p50",
                            config: GateConfig = DEFAULT_GATE) -> str:
    """The baseline build whose image an A/B re-run compares the candidate with.

    Of the candidate's baseline builds, the one whose `metric` of `operations` is nearest their
    baseline medians (sum of |log ratio|; the newest on a tie): a typical build, never the build just
    before when that one is itself slow (the previous build of an unconfirmed step would clear it).
    Raises HistoryError when the candidate has no baseline build.
    """
    earlier = config.policy().earlier_builds(build_order(history), candidate, build_tags(history))
    if not earlier:
        raise HistoryError(f"build {candidate!r} has no baseline build to re-run against")
    rows = history[history["build"].isin(earlier) & history["operation"].isin(operations)
                   & (history["metric"] == metric) & (history["value"] > 0)]
    if rows.empty:
        return earlier[-1]
    logs = np.log(rows.pivot_table(index="build", columns="operation", values="value", aggfunc="median"))
    distance = logs.sub(logs.median()).abs().sum(axis=1)
    position = {b: i for i, b in enumerate(earlier)}
    return min(distance.index, key=lambda b: (round(float(distance[b]), 12), -position[str(b)]))
