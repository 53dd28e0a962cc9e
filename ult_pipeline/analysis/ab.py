"""A/B confirmation statistics: is the candidate image slower than its baseline image, run back to back?

A confirmation re-runs the baseline (A) and the candidate (B) image interleaved on one environment,
A,B,A,B...; each pair gives one difference per operation. Pure functions, no I/O: the runs are made
by `assets.ab_confirmation`, the defaults measured by `ult_pipeline_tests.bench.confirmation`.

The paired test (`confirm_paired`) is a t-test on the pairs' log differences whose variance pools
three measured things: the pair-to-pair spread of these pairs, the within-run sampling error of each
run (from its raw samples, the batch-means error included) and, as a prior worth `prior_df` degrees
of freedom, the pair-to-pair noise the benchmark measured. Unlike a rank test on two to four pairs
(whose smallest attainable one-sided p is 0.25 or 0.0625), its p-value is not bounded below, so a
large change is confirmed from few pairs while a short, lucky run of pairs cannot confirm alone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy import special

# At least this many other operations in a run measure its host-wide shift (as in the main comparison).
MIN_NORMALIZING_OPS = 3


@dataclass(frozen=True)
class PairConfig:
    """Defaults from `ult_pipeline_tests.bench.confirmation` (measured pair noise of the sandbox)."""

    pairs: int = 4  # A,B pairs per confirmation
    duration: str = "30s"  # k6 run length of each A and B run
    alpha: float = 0.005  # one-sided p below which a slowdown is confirmed
    tolerance_pct: float = 3.0  # a confirmed change must be at least this large
    # Pair-to-pair sd of the host-normalized log difference of one operation's p50 (a fraction),
    # as measured in the sandbox: the prior for the few pairs of one confirmation.
    pair_noise: float = 0.03
    prior_df: float = 8.0


@dataclass(frozen=True)
class Confirmation:
    confirmed: bool
    change_pct: float  # candidate vs baseline, percent (pooled estimate over the pairs)
    ci_low_pct: float  # 95 % interval of the change
    ci_high_pct: float
    p_value: float  # one-sided, in the bad direction
    pairs: int
    mdc_pct: float  # smallest slowdown this confirmation finds with power 0.8, percent


def pair_differences(candidate: Sequence[Mapping[str, float]], baseline: Sequence[Mapping[str, float]],
                     normalize: bool = True) -> dict[str, np.ndarray]:
    """operation -> log(candidate / baseline) per pair, with the pair's host-wide shift divided out.

    ``candidate[i]`` and ``baseline[i]`` map operation -> a positive latency of pair i's runs. The
    shift is the median of the other operations' log differences (at least `MIN_NORMALIZING_OPS` of
    them; fewer: absolute), so the yardstick never moves with the operation under test.
    Missing or non-positive values give NaN for that pair.
    """
    if len(candidate) != len(baseline):
        raise ValueError(f"{len(candidate)} candidate runs but {len(baseline)} baseline runs: pairs are needed")
    operations = sorted({op for run in (*candidate, *baseline) for op in run})
    raw = np.full((len(candidate), len(operations)), np.nan)
    for i, (c, b) in enumerate(zip(candidate, baseline, strict=True)):
        for j, op in enumerate(operations):
            cv, bv = c.get(op), b.get(op)
            if cv is not None and bv is not None and cv > 0 and bv > 0 and math.isfinite(cv) and math.isfinite(bv):
                raw[i, j] = math.log(cv) - math.log(bv)
    out: dict[str, np.ndarray] = {}
    for j, op in enumerate(operations):
        d = raw[:, j].copy()
        others = np.delete(raw, j, axis=1)
        if normalize and others.shape[1] >= MIN_NORMALIZING_OPS:
            counts = np.sum(np.isfinite(others), axis=1)
            with np.errstate(all="ignore"):
                shift = np.nanmedian(np.where(counts[:, None] > 0, others, 0.0), axis=1)
            d = np.where(counts >= MIN_NORMALIZING_OPS, d - shift, np.nan)
        out[op] = d
    return out


def confirm_paired(differences: Sequence[float], within_se: Sequence[float] | None = None,
                   config: PairConfig = PairConfig()) -> Confirmation:
    """Confirm or clear a suspected slowdown from the pairs' log differences (see `pair_differences`).

    ``within_se``: per pair, the standard error of its log difference from the two runs' own samples
    (sqrt(se_A^2 + se_B^2), each the larger of the bootstrap and the batch-means error); None = 0.
    Variance of one pair: the pairs' own spread pooled with `config.pair_noise` (worth
    `config.prior_df` degrees of freedom), and never less than the mean within-run variance.
    Confirmed: one-sided p < `config.alpha` and a change of at least `config.tolerance_pct`.
    Pairs with a NaN are dropped; none left: not confirmed, p 1.
    """
    d = np.asarray(differences, dtype=float)
    w = np.zeros_like(d) if within_se is None else np.asarray(within_se, dtype=float) ** 2
    if w.shape != d.shape:
        raise ValueError(f"{len(d)} differences but {len(w)} within-run errors")
    ok = np.isfinite(d) & np.isfinite(w)
    d, w = d[ok], w[ok]
    n = len(d)
    if n == 0:
        return Confirmation(False, math.nan, math.nan, math.nan, 1.0, 0, math.inf)
    own = float(np.var(d, ddof=1)) if n >= 2 else 0.0
    prior = math.log1p(config.pair_noise) ** 2
    variance = (config.prior_df * prior + (n - 1) * own) / (config.prior_df + n - 1)
    variance = max(variance, float(np.mean(w)))
    se = math.sqrt(variance / n)
    df = config.prior_df + n - 1
    mean = float(np.mean(d))
    t = mean / se if se > 0 else math.copysign(math.inf, mean) if mean else 0.0
    p = float(special.stdtr(df, -t))
    t975 = float(special.stdtrit(df, 0.975))
    z_mdc = float(special.stdtrit(df, 1.0 - config.alpha)) + float(special.ndtri(0.80))
    change = math.expm1(mean) * 100.0
    confirmed = p < config.alpha and change >= config.tolerance_pct
    return Confirmation(bool(confirmed), change, math.expm1(mean - t975 * se) * 100.0,
                        math.expm1(mean + t975 * se) * 100.0, p, n, math.expm1(z_mdc * se) * 100.0)


@dataclass(frozen=True)
class AbRun:
    """One run of a confirmation: its pair, its role, and what it measured."""

    pair: int
    role: str  # "baseline" (A) or "candidate" (B)
    values: Mapping[str, Mapping[str, float]]  # metric (p50, p95, p99) -> operation -> latency, ms
    log_se: Mapping[str, Mapping[str, float]]  # metric -> operation -> within-run standard error of log(latency)


def confirm_operations(runs: Sequence[AbRun], metric_of: Mapping[str, str],
                       config: PairConfig = PairConfig()) -> dict[str, Confirmation]:
    """operation -> its confirmation, on the metric `metric_of[operation]`, from the complete A/B pairs.

    Several operations re-run together share the family-wise `config.alpha` (Bonferroni).
    """
    if not metric_of:
        return {}
    by_role = {role: {r.pair: r for r in runs if r.role == role} for role in ("baseline", "candidate")}
    pairs = sorted(set(by_role["baseline"]) & set(by_role["candidate"]))
    shared = replace(config, alpha=config.alpha / len(metric_of))
    results = {}
    for operation, metric in metric_of.items():
        cand = [by_role["candidate"][p] for p in pairs]
        base = [by_role["baseline"][p] for p in pairs]
        d = pair_differences([r.values.get(metric, {}) for r in cand], [r.values.get(metric, {}) for r in base])
        se = [math.hypot(c.log_se.get(metric, {}).get(operation, 0.0), b.log_se.get(metric, {}).get(operation, 0.0))
              for c, b in zip(cand, base, strict=True)]
        results[operation] = confirm_paired(d.get(operation, np.full(len(pairs), np.nan)), se, shared)
    return results
