"""Per build: is it slower than the builds before it? Per operation and metric, with statistics.

Latency of one operation is compared with the build's host-wide factor divided out (how far the
build's other operations are from their usual latency, see `_levels`): noise that slows the whole
environment (a busy host, a cold start) cancels out, while one operation getting slower stands out. The build as a whole (the
`__all__` row) is compared in absolute terms, so a regression of everything still shows.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from ult_pipeline.analysis.detector import Comparison, DetectorConfig, Observation, compare
from ult_pipeline.analysis.history import ALL_OPERATIONS, HistoryError, build_order
from ult_pipeline.analysis.stats_robust import scale_degrees_of_freedom, shamos_scale
from ult_pipeline.build import tag_of  # re-exported: the one parser of partition keys

LATENCY = ("p50", "p95", "p99")
HIGHER_IS_BETTER = {"throughput"}
REGRESSED, IMPROVED, UNCHANGED, INSUFFICIENT = "regressed", "improved", "unchanged", "insufficient history"
INCONCLUSIVE = "inconclusive"
# Confidence of a regression: "confirmed" by the newest builds together, or by A/B re-runs (`gate`).
CONFIRMED_BY_AB = "confirmed by A/B"
CONFIRMED = ("confirmed", CONFIRMED_BY_AB)
DECIDING = ("p50", "p95", "p99", "error_rate")
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
        """`last:N`, `pinned:BUILD`, `release[:REGEX]`: a release is a build one of whose tags REGEX
        finds (`re.search`; default: a version `v1.2.3` / `1.2.3`): the tag in its name before the
        digest, or any tag its image has now in ECR (`build_tags`: a re-tag after the test counts).

        Raises `HistoryError` on an unknown kind, an N that is not a whole number >= 1, an empty
        BUILD or a REGEX that does not compile.
        """
        if not text:
            return cls()
        kind, _, arg = text.partition(":")
        if kind == "last":
            # ASCII digits only: str.isdigit() also accepts characters such as '²' that int() refuses.
            if not re.fullmatch(r"[0-9]+", arg) or int(arg) < 1:
                raise HistoryError(f"baseline {text!r}: N in last:N must be a whole number >= 1, e.g. last:20")
            return cls("last_n", last_n=int(arg))
        if kind == "pinned":
            if not arg:
                raise HistoryError(f"baseline {text!r}: pinned:BUILD needs the build's name, "
                                   "e.g. pinned:v1.2.0-0123456789ab")
            return cls("pinned", pinned_build=arg)
        if kind == "release":
            try:
                re.compile(arg)
            except re.error as err:
                raise HistoryError(f"baseline {text!r}: REGEX in release:REGEX is not a regular expression ({err}); "
                                   "fix it, or give release alone for version tags") from None
            return cls("release", release_pattern=arg or cls.release_pattern)
        raise HistoryError(f"baseline {text!r}: use last:N, pinned:BUILD or release[:REGEX]")

    def earlier_builds(self, order: list[str], candidate: str, tag_of) -> list[str]:
        """The candidate's baseline builds, oldest first. `tag_of(build)` gives the build's tag, or
        its tags (an iterable, as `build_tags(history)` gives them) that a release is recognised by."""
        before = order[: order.index(candidate)]
        if self.kind == "pinned":
            if self.pinned_build not in before:
                raise HistoryError(f"pinned baseline {self.pinned_build!r} is not a build before {candidate!r}")
            return before[: before.index(self.pinned_build) + 1][-self.last_n:]
        if self.kind == "release":
            pattern = re.compile(self.release_pattern)
            releases = [i for i, b in enumerate(before) if any(pattern.search(t) for t in _tags(tag_of(b)))]
            if not releases:
                return []
            return before[: releases[-1] + 1][-self.last_n:]
        return before[-self.last_n:]


def _tags(value) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def build_tags(history: pd.DataFrame):
    """`build -> its tags`, for `BaselinePolicy.earlier_builds`: the tag in its name (`tag_of`) and,
    when the history has a `tags` column (the image's tags now, space-separated, as
    `HistoryStore.load` gives them and a history CSV may), those too."""
    recorded: dict[str, set[str]] = {}
    if "tags" in history.columns and len(history):
        for build, text in history[["build", "tags"]].drop_duplicates().itertuples(index=False):
            if isinstance(text, str) and text.strip():
                recorded.setdefault(str(build), set()).update(text.split())

    def tags(build: str) -> tuple[str, ...]:
        return (tag_of(build), *sorted(recorded.get(build, ())))

    return tags


def _se(sampling_se: dict, levels: dict, build: str, operation: str, metric: str, relative: bool) -> float | None:
    """A value's sampling error, in the value's own unit (divided by the host-wide factor when relative)."""
    se = sampling_se.get((build, operation, metric))
    if se is None or not relative:
        return se
    level = levels.get((build, operation, metric))
    return se / level if level else None


# A host-wide factor measured on fewer other operations than this is not determined: with one or
# two, a real step on one operation would show up as a fake step on the others.
MIN_NORMALIZING_OPS = 3
# An operation this far (log units) beyond the others' robust spread is itself changed: it is left
# out of the others' host-wide factor. At least 5 %, so noise-free histories keep their operations.
_CHANGED_OP_SIGMAS, _CHANGED_OP_MIN = 3.0, 0.05


def _levels(frame: pd.DataFrame, baseline: list[str]) -> dict[tuple[str, str, str], float]:
    """(build, operation, metric) -> the build's host-wide factor, as seen from that operation.

    Per metric, each operation's usual latency is its median over the earlier builds; a build's
    factor is the median, over its OTHER operations, of how far each is from its usual latency
    (in logs, so a host twice as slow gives 2 whatever the operation). Comparing deviations rather
    than raw latencies keeps one slowed operation from moving the other operations' yardstick, and
    leaving the operation itself out keeps it from raising its own. Other operations that moved far
    more than the rest (changed themselves) are left out too. No factor (absent key) when fewer than
    `MIN_NORMALIZING_OPS` other operations remain: the comparison is then absolute.
    """
    ops = frame[(frame["operation"] != ALL_OPERATIONS) & frame["metric"].isin(LATENCY) & (frame["value"] > 0)]
    levels: dict[tuple[str, str, str], float] = {}
    for metric, group in ops.groupby("metric"):
        logs = group.pivot_table(index="build", columns="operation", values="value", aggfunc="first")
        logs = np.log(logs.astype(float))
        earlier = logs[logs.index.isin(baseline)]
        usual = (earlier if len(earlier) else logs).median(skipna=True)
        deviation = (logs - usual).to_numpy(dtype=float)
        names = [str(c) for c in logs.columns]
        for b, build in enumerate(logs.index):
            row = deviation[b]
            for j, operation in enumerate(names):
                if not np.isfinite(row[j]):
                    continue
                others = np.delete(row, j)
                others = others[np.isfinite(others)]
                if len(others) < MIN_NORMALIZING_OPS:
                    continue
                center = float(np.median(others))
                spread = 1.4826 * float(np.median(np.abs(others - center)))
                others = others[np.abs(others - center) <= max(_CHANGED_OP_SIGMAS * spread, _CHANGED_OP_MIN)]
                if len(others) >= MIN_NORMALIZING_OPS:
                    levels[(str(build), operation, str(metric))] = float(np.exp(np.median(others)))
    return levels


# The floor is measured on the builds no confirmation window tests only when at least this many remain.
MIN_FLOOR_BUILDS = 5
# Before a history has this many degrees of freedom of its own, the prior noise stands in for the rest.
_FLOOR_PRIOR_DF = 10.0


def measured_noise_floor(frame: pd.DataFrame, earlier: list[str], metric: str, prior_cv: float) -> float:
    """Run-to-run CV (a fraction) of `metric` measured on the history itself, the floor of every operation's noise.

    The median of the robust spreads (Shamos, logs) of every operation's earlier builds, worth their
    degrees of freedom together: one operation's few builds say little, eight operations' say much more. `prior_cv`
    stands in for the degrees of freedom a short history lacks (up to `_FLOOR_PRIOR_DF`), so two
    builds that happen to agree closely cannot make every later difference significant.
    """
    rows = frame[frame["build"].isin(earlier) & (frame["metric"] == metric) & (frame["operation"] != ALL_OPERATIONS)
                 & (frame["value"] > 0)]
    spreads, dof = [], 0.0
    for _, group in rows.groupby("operation"):
        y = np.log(group["value"].to_numpy(dtype=float))
        spread = shamos_scale(y) if len(y) >= 3 else 0.0
        if spread <= 0:  # too few builds, or values rounded to ties: they say nothing of the noise
            continue
        spreads.append(spread)
        dof += scale_degrees_of_freedom(len(y))
    # The median over operations: one operation that changed within the window must not raise the others' floor.
    measured = float(np.median(spreads)) ** 2 if spreads else 0.0
    prior_weight = max(_FLOOR_PRIOR_DF - dof, 0.0)
    variance = (dof * measured + prior_weight * math.log1p(prior_cv) ** 2) / (dof + prior_weight)
    return math.expm1(math.sqrt(variance))


def _relative(frame: pd.DataFrame, levels: dict[tuple[str, str, str], float]) -> pd.DataFrame:
    """Operation latency with its build's host-wide factor divided out (see `_levels`)."""
    keys = zip(frame["build"], frame["operation"], frame["metric"], strict=True)
    level = pd.Series([levels.get(key) for key in keys], index=frame.index, dtype=float)
    mask = (frame["operation"] != ALL_OPERATIONS) & frame["metric"].isin(LATENCY) & (level.fillna(0) > 0)
    rel = frame.copy()
    rel.loc[mask, "value"] = frame.loc[mask, "value"] / level[mask]
    return rel


@dataclass(frozen=True)
class GateConfig:
    """The one configuration of the regression gate: the asset, `ult analyze` and the benchmarks use it.

    Defaults were chosen with `ult_pipeline_tests.bench.detection` and `bench.confirmation`.
    """

    baseline: str = "last:20"  # last:N, pinned:BUILD or release[:REGEX]
    tolerance_pct: float = 3.0  # a significant change smaller than this is still "unchanged"
    # The smallest change that matters: an operation whose minimum detectable change is above it
    # is "inconclusive", never "unchanged".
    matters_pct: float = 10.0
    normalize: bool = True  # divide out the build's host-wide factor (see `_levels`) where it is determined
    # Prior run-to-run CV for a history too short to measure its own (see `measured_noise_floor`).
    noise_prior_cv: float = 0.05
    suspect_alpha: float = 0.05  # family-wise (Holm) error rate a "suspected" verdict must survive
    # Family-wise p below which a worse build is re-run A,B,A,B when confirmation is on (looser than
    # `suspect_alpha`: the A/B runs, not this test, decide; see `needs_confirmation`).
    trigger_alpha: float = 0.10
    find_change_points: bool = True  # reported on the trend report, never used by the gate

    def policy(self) -> BaselinePolicy:
        return BaselinePolicy.parse(self.baseline)


DEFAULT_GATE = GateConfig()


def analyze(
    history: pd.DataFrame,
    candidate: str,
    config: GateConfig = DEFAULT_GATE,
    *,
    sampling_se: dict[tuple[str, str, str], float] | None = None,
) -> pd.DataFrame:
    """One row per operation and metric: the candidate build against its baseline builds.

    ``sampling_se``: (build, operation, metric) -> standard error of that value from the build's
    own samples; default: bootstrapped from the builds' raw samples where `samples_path` has them.
    Columns: those of `detector.Comparison`, plus `operation`, `metric`, `relative` (compared with
    the host-wide factor divided out), `value` and `baseline` as measured (ms for latency),
    `measured_change_pct` (value vs the baseline builds' median), `change_pct` the deciding change
    (normalized when `relative`), `change_points` (build names), `p_adjusted` and `trigger`.
    Raises HistoryError when the candidate is not in the history or the baseline is unusable.
    """
    order = build_order(history)
    if candidate not in order:
        raise HistoryError(f"build {candidate!r} is not in the history")
    policy = config.policy()
    earlier = policy.earlier_builds(order, candidate, build_tags(history))
    # A pinned or release baseline leaves builds between it and the candidate: they are the newest
    # builds the confirmation windows test together with the candidate, against that baseline.
    between = order[order.index(earlier[-1]) + 1:order.index(candidate)] if earlier and policy.kind != "last_n" else []
    builds = [*earlier, *between, candidate]
    frame = history[history["build"].isin(builds)].reset_index(drop=True)
    if sampling_se is None:
        from ult_pipeline.analysis.sampling import sampling_errors

        sampling_se = sampling_errors(frame, builds)
    levels = _levels(frame, earlier) if config.normalize else {}
    normalized = _relative(frame, levels) if config.normalize else frame
    # Measured on the builds no confirmation window tests (when enough remain): a step among the newest
    # builds must not widen the yardstick it is judged by.
    newest = max(DetectorConfig().confirm_windows) - 1
    floor_builds = earlier[:-newest] if len(earlier) - newest >= MIN_FLOOR_BUILDS else earlier
    floors = {metric: measured_noise_floor(normalized, floor_builds, metric, config.noise_prior_cv)
              for metric in LATENCY}
    baseline_set = set(earlier)
    rows = []
    for (operation, metric), group in frame.groupby(["operation", "metric"], sort=True):
        # Relative only when every build of the series has other operations to measure it against.
        relative = config.normalize and metric in LATENCY and operation != ALL_OPERATIONS and all(
            (b, operation, metric) in levels for b in group["build"])
        measured = group.set_index("build")["value"]
        by_build = normalized.loc[group.index].set_index("build")["value"] if relative else measured
        if candidate not in by_build.index:
            continue

        series = [Observation(b, float(by_build[b]), _se(sampling_se, levels, b, operation, metric, relative))
                  for b in builds if b in by_build.index]
        fixed = sum(o.build in baseline_set for o in series) if between else None
        detector = DetectorConfig(tolerance_pct=config.tolerance_pct, higher_is_worse=metric not in HIGHER_IS_BETTER,
                                  noise_floor_cv=floors.get(metric, config.noise_prior_cv),
                                  find_change_points=config.find_change_points, fixed_baseline=fixed)
        result: Comparison = compare(series, detector)
        row = asdict(result)
        row["change_points"] = ",".join(series[i].build for i in result.change_points if i < len(series))
        # Reported values are the measured ones; the deciding change (normalized when relative) stays beside them.
        base_values = measured.reindex([b for b in earlier if b in measured.index]).to_numpy(dtype=float)
        base_values = base_values[np.isfinite(base_values)][-policy.last_n:]
        row["value"] = float(measured[candidate])
        row["baseline"] = float(np.median(base_values)) if len(base_values) else None
        row["measured_change_pct"] = ((row["value"] / row["baseline"] - 1.0) * 100.0
                                      if row["baseline"] else None)
        rows.append({"operation": operation, "metric": metric, "relative": relative, **row})
    return family_wise(pd.DataFrame(rows), config)


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


def family_wise(table: pd.DataFrame, config: GateConfig) -> pd.DataFrame:
    """A "suspected" verdict stands only when it survives the family-wise error rate of its family.

    Adds `p_adjusted` (Holm, per family, over the operations' tests that were made) and `trigger`:
    the metric moved the bad way by at least the tolerance with `p_adjusted < trigger_alpha`, or was
    judged regressed; with confirmation on, such an operation is re-run A,B,A,B. (`trigger_alpha` 1
    re-runs every operation that got worse by the tolerance.)
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
    demote = (table["confidence"] == "suspected") & (table["p_adjusted"] >= config.suspect_alpha)
    table.loc[demote, "verdict"] = UNCHANGED
    table.loc[demote, "confidence"] = None
    deciding = table["metric"].isin(DECIDING) & (table["operation"] != ALL_OPERATIONS)
    worse = (table["z"].fillna(0) > 0) & (table["change_pct"].fillna(0).abs() >= config.tolerance_pct)
    table["trigger"] = deciding & ((table["verdict"] == REGRESSED)
                                   | (worse & (table["p_adjusted"] <= config.trigger_alpha)))
    return table


def _mdc(by_metric: pd.DataFrame) -> float | None:
    """The smallest change (percent) any of the operation's latency metrics could have seen."""
    values = by_metric.loc[by_metric.index.intersection(LATENCY), "mdc_pct"].astype(float)
    values = values[np.isfinite(values)]
    return float(values.min()) if len(values) else None


def _pick(row: pd.Series | None, column: str):
    return None if row is None else row.get(column)


def operation_verdicts(table: pd.DataFrame, config: GateConfig = DEFAULT_GATE) -> pd.DataFrame:
    """One verdict per operation from its metrics: latency (p50, p95, p99) and error rate.

    Verdicts: regressed (confirmed/suspected), improved, unchanged, inconclusive (no significant
    change, but the run could not have seen one of `matters_pct`: `mdc_pct` says how small a change
    it could see), insufficient history. `measured_*` columns are the measured values; `change_pct`
    columns the deciding (normalized) changes.
    """
    out = []
    for operation, group in table.groupby("operation", sort=True):
        by_metric = group.set_index("metric")
        # The median catches a slower operation with the least sampling noise; the tail and the
        # error rate catch what the median cannot.
        deciding = by_metric.loc[by_metric.index.intersection(DECIDING)]
        regressed = deciding[deciding["verdict"] == REGRESSED]
        p95 = by_metric.loc["p95"] if "p95" in by_metric.index else None
        p50 = by_metric.loc["p50"] if "p50" in by_metric.index else None
        mdc = _mdc(by_metric)
        if len(regressed):
            verdict = REGRESSED
            confidence = "confirmed" if (regressed["confidence"] == "confirmed").any() else "suspected"
        elif p95 is not None and p95["verdict"] == INSUFFICIENT:
            verdict, confidence = INSUFFICIENT, None
        elif p95 is not None and p95["verdict"] == IMPROVED:
            verdict, confidence = IMPROVED, p95["confidence"]
        elif mdc is None or mdc > config.matters_pct:
            verdict, confidence = INCONCLUSIVE, None
        else:
            verdict, confidence = UNCHANGED, None
        out.append({
            "operation": operation, "verdict": verdict, "confidence": confidence,
            "p50_ms": _pick(p50, "value"), "p95_ms": _pick(p95, "value"),
            "p50_change_pct": _pick(p50, "change_pct"), "p95_change_pct": _pick(p95, "change_pct"),
            "p95_ci_low_pct": _pick(p95, "ci_low_pct"), "p95_ci_high_pct": _pick(p95, "ci_high_pct"),
            "p95_measured_change_pct": _pick(p95, "measured_change_pct"),
            "p95_mdc_pct": _pick(p95, "mdc_pct"), "mdc_pct": mdc,
            "noise_cv_pct": _pick(p95, "noise_cv_pct"),
            "p_adjusted": float(deciding["p_adjusted"].min()) if deciding["p_adjusted"].notna().any() else None,
            "normalized": bool(deciding["relative"].any()) if "relative" in deciding else False,
            "regressed_metrics": ",".join(regressed.index),
            "trigger": bool(deciding["trigger"].any()) if "trigger" in deciding else False,
            "change_points": "" if p95 is None else p95["change_points"],
        })
    return pd.DataFrame(out)


def overall(verdicts: pd.DataFrame) -> str:
    """The build's verdict from its operations: regressed (confirmed/suspected), improved, inconclusive,
    unchanged or insufficient history. "unchanged" only when every operation could have seen a change
    that matters. The `__all__` row is shown but not counted: on a shared host a shift of everything
    cannot be told from the host's own noise without confirmation runs.
    """
    verdicts = verdicts[verdicts["operation"] != ALL_OPERATIONS]
    regressed = verdicts[verdicts["verdict"] == REGRESSED]
    if len(regressed):
        return "regressed (confirmed)" if regressed["confidence"].isin(CONFIRMED).any() else "regressed (suspected)"
    if len(verdicts) and (verdicts["verdict"] == INSUFFICIENT).all():
        return INSUFFICIENT
    if (verdicts["verdict"] == INCONCLUSIVE).any():
        return INCONCLUSIVE
    if (verdicts["verdict"] == IMPROVED).any():
        return IMPROVED
    return UNCHANGED


def inconclusive_detail(verdicts: pd.DataFrame) -> str:
    """`userNode (could only see changes above 42 %)`, one per inconclusive operation; "" when none."""
    rows = verdicts[(verdicts["verdict"] == INCONCLUSIVE) & (verdicts["operation"] != ALL_OPERATIONS)]
    parts = []
    for _, row in rows.iterrows():
        mdc = row["mdc_pct"]
        seen = f"could only see changes above {mdc:.0f} %" if mdc is not None and math.isfinite(mdc) else \
            "no change could be measured"
        parts.append(f"{row['operation']} ({seen})")
    return ", ".join(parts)
