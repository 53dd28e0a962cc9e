"""Per build: is it slower than the builds before it? Per operation and metric, with statistics.

Latency of one operation is compared with the build's host-wide factor divided out (how far the
build's other operations are from their usual latency, see `_levels`): noise that slows the whole
environment (a busy host, a cold start) cancels out, while one operation getting slower stands out. The build as a whole (the
`__all__` row) is compared in absolute terms, so a regression of everything still shows.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from ult_pipeline.analysis.detector import Comparison, DetectorConfig, Observation, compare
from ult_pipeline.analysis.history import ALL_OPERATIONS, HistoryError, build_order

LATENCY = ("p50", "p95", "p99")
HIGHER_IS_BETTER = {"throughput"}
REGRESSED, IMPROVED, UNCHANGED, INSUFFICIENT = "regressed", "improved", "unchanged", "insufficient history"
# Earlier builds needed for a verdict (the detector's default too).
MIN_HISTORY = 2


@dataclass(frozen=True)
class BaselinePolicy:
    """Which earlier builds a build is compared with."""

    kind: str = "last_n"  # last_n | pinned | release
    last_n: int = 20
    pinned_build: str | None = None
    release_pattern: str = r"^v?\d+\.\d+\.\d+$"

    @classmethod
    def parse(cls, text: str | None) -> BaselinePolicy:
        """`last:N`, `pinned:BUILD`, `release[:REGEX]` (tags of the build name before its digest)."""
        if not text:
            return cls()
        kind, _, arg = text.partition(":")
        if kind == "last" and arg.isdigit() and int(arg) >= 1:
            return cls("last_n", last_n=int(arg))
        if kind == "pinned" and arg:
            return cls("pinned", pinned_build=arg)
        if kind == "release":
            return cls("release", release_pattern=arg or cls.release_pattern)
        raise HistoryError(f"baseline {text!r}: use last:N, pinned:BUILD or release[:REGEX]")

    def earlier_builds(self, order: list[str], candidate: str, tag_of) -> list[str]:
        before = order[: order.index(candidate)]
        if self.kind == "pinned":
            if self.pinned_build not in before:
                raise HistoryError(f"pinned baseline {self.pinned_build!r} is not a build before {candidate!r}")
            return before[: before.index(self.pinned_build) + 1][-self.last_n:]
        if self.kind == "release":
            pattern = re.compile(self.release_pattern)
            releases = [i for i, b in enumerate(before) if pattern.search(tag_of(b))]
            if not releases:
                return []
            return before[: releases[-1] + 1][-self.last_n:]
        return before[-self.last_n:]


def tag_of(build: str) -> str:
    # Partition keys are `<tag>-<12 hex digits of the digest>`.
    return re.sub(r"-[0-9a-f]{12}$", "", build)


def _se(sampling_se: dict, levels: dict, build: str, operation: str, metric: str, relative: bool) -> float | None:
    """A value's sampling error, in the value's own unit (divided by the host-wide factor when relative)."""
    se = sampling_se.get((build, operation, metric))
    if se is None or not relative:
        return se
    level = levels.get((build, operation, metric))
    return se / level if level else None


def _levels(frame: pd.DataFrame, candidate: str) -> dict[tuple[str, str, str], float]:
    """(build, operation, metric) -> the build's host-wide factor, as seen from that operation.

    Per metric, each operation's usual latency is its median over the earlier builds; a build's
    factor is the median, over its OTHER operations, of how far each is from its usual latency
    (in logs, so a host twice as slow gives 2 whatever the operation). Comparing deviations rather
    than raw latencies keeps one slowed operation from moving the other operations' yardstick, and
    leaving the operation itself out keeps it from raising its own.
    """
    ops = frame[(frame["operation"] != ALL_OPERATIONS) & frame["metric"].isin(LATENCY) & (frame["value"] > 0)]
    levels: dict[tuple[str, str, str], float] = {}
    for metric, group in ops.groupby("metric"):
        logs = group.pivot_table(index="build", columns="operation", values="value", aggfunc="first")
        logs = np.log(logs.astype(float))
        earlier = logs.drop(index=candidate, errors="ignore")
        usual = (earlier if len(earlier) else logs).median(skipna=True)
        deviation = logs - usual
        for build, row in deviation.iterrows():
            present = row.dropna()
            for operation in present.index:
                others = present.drop(operation)
                if len(others):
                    levels[(str(build), str(operation), str(metric))] = float(np.exp(others.median()))
    return levels


def _relative(frame: pd.DataFrame, levels: dict[tuple[str, str, str], float]) -> pd.DataFrame:
    """Operation latency with its build's host-wide factor divided out (see `_levels`)."""
    keys = zip(frame["build"], frame["operation"], frame["metric"], strict=True)
    level = pd.Series([levels.get(key) for key in keys], index=frame.index, dtype=float)
    mask = (frame["operation"] != ALL_OPERATIONS) & frame["metric"].isin(LATENCY) & (level.fillna(0) > 0)
    rel = frame.copy()
    rel.loc[mask, "value"] = frame.loc[mask, "value"] / level[mask]
    return rel


def analyze(
    history: pd.DataFrame,
    candidate: str,
    *,
    baseline: BaselinePolicy = BaselinePolicy(),
    tolerance_pct: float = 3.0,
    normalize: bool = True,
    sampling_se: dict[tuple[str, str, str], float] | None = None,
    noise_floor_cv: float = 0.05,
    suspect_alpha: float = 0.05,
) -> pd.DataFrame:
    """One row per operation and metric: the candidate build against its baseline builds.

    ``sampling_se``: (build, operation, metric) -> standard error of that value from the build's
    own samples; default: bootstrapped from the builds' raw samples where `samples_path` has them.
    ``suspect_alpha``: family-wise error rate a "suspected" verdict must survive (see `family_wise`).
    """
    order = build_order(history)
    if candidate not in order:
        raise HistoryError(f"build {candidate!r} is not in the history")
    earlier = baseline.earlier_builds(order, candidate, tag_of)
    builds = [*earlier, candidate]
    frame = history[history["build"].isin(builds)].reset_index(drop=True)
    if sampling_se is None:
        from ult_pipeline.analysis.sampling import sampling_errors

        sampling_se = sampling_errors(frame, builds)
    levels = _levels(frame, candidate) if normalize else {}
    normalized = _relative(frame, levels) if normalize else frame
    rows = []
    for (operation, metric), group in frame.groupby(["operation", "metric"], sort=True):
        # Relative only when every build of the series has other operations to measure it against.
        relative = normalize and metric in LATENCY and operation != ALL_OPERATIONS and all(
            (b, operation, metric) in levels for b in group["build"])
        by_build = (normalized.loc[group.index] if relative else group).set_index("build")["value"]
        if candidate not in by_build.index:
            continue

        series = [Observation(b, float(by_build[b]), _se(sampling_se, levels, b, operation, metric, relative))
                  for b in builds if b in by_build.index]
        # A load test on a shared host varies by several percent from run to run: until the
        # history shows its own spread, assume at least `noise_floor_cv`.
        config = DetectorConfig(tolerance_pct=tolerance_pct, higher_is_worse=metric not in HIGHER_IS_BETTER,
                                noise_floor_cv=noise_floor_cv)
        result: Comparison = compare(series, config)
        row = asdict(result)
        row["change_points"] = ",".join(series[i].build for i in result.change_points if i < len(series))
        rows.append({"operation": operation, "metric": metric, "relative": relative, **row})
    return family_wise(pd.DataFrame(rows), suspect_alpha)


# A build is tested on every operation and metric at once: ~8 operations x 4 deciding metrics.
# At a per-series alpha of 1 %, about one build in four would be "suspected" somewhere by chance
# (in 13 demo runs, identical images' tails differed by up to 50 %, as their sampling error says).
# Two families, each held to a family-wise error rate with Holm's step-down: the medians (the
# primary measure, least noisy) and the tails with the error rates. Holm rather than
# Benjamini-Hochberg: two chance tail suspicions together passed BH in a demo run.
# `confirmed` verdicts keep their own, stricter, tests.
SUSPICION_FAMILIES = (("p50",), ("p95", "p99", "error_rate"))


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm-adjusted p-values: the i-th smallest times (m - i + 1), made monotone, at most 1."""
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p)
    scaled = np.minimum((len(p) - np.arange(len(p))) * p[order], 1.0)
    adjusted = np.empty_like(p)
    adjusted[order] = np.maximum.accumulate(scaled)
    return adjusted


def family_wise(table: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """A "suspected" verdict stands only when it survives the family-wise error rate `alpha` of its family.

    Adds `p_adjusted` (Holm, per family, over the operations' tests that were made).
    """
    if table.empty:
        return table
    table = table.copy()
    table["p_adjusted"] = np.nan
    for metrics in SUSPICION_FAMILIES:
        family = table[table["metric"].isin(metrics) & (table["operation"] != ALL_OPERATIONS)
                       & table["p_value"].notna()]
        if family.empty:
            continue
        table.loc[family.index, "p_adjusted"] = holm(family["p_value"].to_numpy(dtype=float))
    demote = (table["confidence"] == "suspected") & (table["p_adjusted"] >= alpha)
    table.loc[demote, "verdict"] = UNCHANGED
    table.loc[demote, "confidence"] = None
    return table


def operation_verdicts(table: pd.DataFrame) -> pd.DataFrame:
    """One verdict per operation from its metrics: latency (p50, p95, p99) and error rate."""
    out = []
    for operation, group in table.groupby("operation", sort=True):
        by_metric = group.set_index("metric")
        # The median catches a slower operation with the least sampling noise; the tail and the
        # error rate catch what the median cannot.
        deciding = by_metric.loc[by_metric.index.intersection(["p50", "p95", "p99", "error_rate"])]
        regressed = deciding[deciding["verdict"] == REGRESSED]
        p95 = by_metric.loc["p95"] if "p95" in by_metric.index else None
        if len(regressed):
            verdict = REGRESSED
            confidence = "confirmed" if (regressed["confidence"] == "confirmed").any() else "suspected"
        elif p95 is not None and p95["verdict"] == INSUFFICIENT:
            verdict, confidence = INSUFFICIENT, None
        elif p95 is not None and p95["verdict"] == IMPROVED:
            verdict, confidence = IMPROVED, p95["confidence"]
        else:
            verdict, confidence = UNCHANGED, None
        out.append({
            "operation": operation, "verdict": verdict, "confidence": confidence,
            "p95_change_pct": None if p95 is None else p95["change_pct"],
            "p95_ci_low_pct": None if p95 is None else p95["ci_low_pct"],
            "p95_ci_high_pct": None if p95 is None else p95["ci_high_pct"],
            "p95_mdc_pct": None if p95 is None else p95["mdc_pct"],
            "noise_cv_pct": None if p95 is None else p95["noise_cv_pct"],
            "regressed_metrics": ",".join(regressed.index),
            "change_points": "" if p95 is None else p95["change_points"],
        })
    return pd.DataFrame(out)


def overall(verdicts: pd.DataFrame) -> str:
    """The build's verdict from its operations: regressed (confirmed/suspected), improved, unchanged or
    insufficient history. The `__all__` row is shown but not counted: on a shared host a shift of
    everything cannot be told from the host's own noise without confirmation runs.
    """
    verdicts = verdicts[verdicts["operation"] != ALL_OPERATIONS]
    regressed = verdicts[verdicts["verdict"] == REGRESSED]
    if len(regressed):
        return "regressed (confirmed)" if (regressed["confidence"] == "confirmed").any() else "regressed (suspected)"
    if len(verdicts) and (verdicts["verdict"] == INSUFFICIENT).all():
        return INSUFFICIENT
    if (verdicts["verdict"] == IMPROVED).any():
        return IMPROVED
    return UNCHANGED
