"""Did this build regress? The statistics core of the regression gate: pure functions, no I/O.

`compare` judges the newest build of a series (one metric of one operation, builds in push order)
against the builds before it:

- Scale: relative (log of the value) for positive metrics, absolute differences when the series has
  zeros or negative values (error rates).
- Baseline: Hodges-Lehmann level and Shamos spread (robust, rank-based, efficient) of at most
  `window` earlier builds. The run-to-run noise is that spread, less the within-run sampling
  variance the history already contains, floored at `noise_floor_cv`; each compared build adds its
  own `sampling_se`. z-scores are referred to Student-t tails with the degrees of freedom of the
  spread estimate, so a short history asks for a larger step.
- "suspected": the candidate alone is off by a one-sided p < `alpha_suspect` (and by more than the
  tolerance). One noisy run can do that: it asks for a re-run (see `analysis.ab`), not a page.
- "confirmed": the candidate and the build(s) just before it, together (the last k builds for k in
  `confirm_windows`), are off by p < `alpha_confirm` against the baseline before them; the k builds
  must agree with one another (no single build more than `consistency_z` sigma from the others, or
  half the change: a noisy-neighbour outlier followed by a normal build is not a step) and the candidate must itself
  be on the bad side. The candidate alone never confirms. Thresholds are tuned by
  `ult_pipeline_tests.bench.detection` for a family-wise false-alarm rate of about 2 % over the
  gate decisions of a history.
- Change points over the whole series (ruptures PELT) are reported, not used by the gate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from ult_pipeline.analysis.stats_changepoints import change_points as _change_points
from ult_pipeline.analysis.stats_changepoints import difference_noise
from ult_pipeline.analysis.stats_robust import (
    hodges_lehmann,
    location_variance_factor,
    scale_degrees_of_freedom,
    shamos_scale,
)

REGRESSED, IMPROVED, UNCHANGED, INSUFFICIENT = "regressed", "improved", "unchanged", "insufficient history"
CONFIRMED, SUSPECTED = "confirmed", "suspected"

# The smallest run-to-run noise assumed, in log units (0.0001 %): below any measurable latency noise.
_MIN_SIGMA_LOG = 1e-6
# One-sided alpha 0.01 and power 0.8 for the minimum detectable change.
_MDC_Z = float(special.ndtri(0.99) + special.ndtri(0.80))


@dataclass(frozen=True)
class Observation:
    build: str
    value: float  # e.g. p95 in ms of one build's run, or an error rate, or a throughput
    sampling_se: float | None = None  # standard error of `value` from within-run sampling (same unit), None = unknown


@dataclass(frozen=True)
class DetectorConfig:
    min_history: int = 2  # fewer earlier builds than this -> verdict "insufficient history"
    window: int = 20  # baseline = at most the last `window` earlier builds given
    # A fixed baseline (a pinned build, the last release): the first `fixed_baseline` observations
    # are the baseline of every window, and windows hold only the builds after them. None: each
    # window's baseline is the builds just before it.
    fixed_baseline: int | None = None
    tolerance_pct: float = 3.0  # a significant change smaller than this is still "unchanged"
    higher_is_worse: bool = True  # False for throughput
    noise_floor_cv: float = 0.02  # run-to-run CV assumed at least this (few builds of history)
    # --- additions (defaults tuned by ult_pipeline_tests.bench.detection) ---
    confirm_windows: tuple[int, ...] = (2, 3, 5, 8)  # k: the candidate and the k-1 builds before it, together
    alpha_confirm: float = 0.0025  # one-sided p (Student-t) of the last 2 builds for "confirmed"
    alpha_confirm_long: float = 0.0005  # the same for the longer windows (k >= 3)
    alpha_suspect: float = 0.01  # one-sided p for "suspected"
    consistency_z: float = 2.25  # max distance (sigmas) between the last 2 builds (Bonferroni-widened for k > 2)
    min_abs_change: float = 0.005  # an absolute change below this is "unchanged" (0.5 pp of an error rate)
    noise_floor_abs: float = 0.001  # absolute noise floor when compared by differences (rates near 0)
    scale: str = "auto"  # "log" (relative), "linear" (differences), "auto": log unless a value is <= 0
    find_change_points: bool = True
    change_point_penalty: float = 4.0  # PELT penalty per change, in sigma^2 * log(n)
    # The noise floor as a prior on the run-to-run noise, worth this many degrees of freedom (see
    # _run_to_run_variance).
    prior_df: float = 10.0


@dataclass(frozen=True)
class Comparison:
    verdict: str  # "regressed" | "improved" | "unchanged" | "insufficient history"
    confidence: str | None  # "confirmed" | "suspected" | None
    change_pct: float | None  # candidate vs baseline level, percent
    ci_low_pct: float | None  # 95 % confidence interval of the change, percent
    ci_high_pct: float | None
    z: float | None
    baseline: float | None  # baseline level (robust: Hodges-Lehmann)
    value: float
    noise_cv_pct: float | None  # run-to-run CV measured from history (robust), percent
    mdc_pct: float | None  # minimum detectable change of one run (one-sided alpha 0.01, power 0.8), percent
    change_points: tuple[int, ...]  # indices into the series passed in where a change point was found
    builds_compared: int  # baseline builds of the deciding comparison
    # --- additions ---
    builds_in_change: int = 1  # k: how many newest builds the reported change is measured over
    change_abs: float | None = None  # the same change in the metric's unit (e.g. ms, or rate points)
    p_value: float | None = None  # one-sided, in the direction of the change
    mdc_confirm_pct: float | None = None  # smallest change confirmed with power 0.8 after 2 builds, percent


@dataclass(frozen=True)
class _Window:
    k: int
    n_base: int
    level: float  # in the working scale
    diff: float  # mean of the k newest - level, working scale
    se: float
    df: float
    z: float  # signed: positive = worse
    p_worse: float
    p_better: float
    spread: float  # largest distance (sigmas) of one of the k builds from the mean of the others
    spread_abs: float  # the same distance in the working scale
    build_sd: float  # run-to-run sd of one build from the baseline (incl. its sampling), working scale


def _expm1(x: float) -> float:
    """exp(x) - 1 that says "unbounded" instead of overflowing: a t quantile with well under one
    degree of freedom (two builds of baseline in a confirmation window) can be astronomically large."""
    return math.expm1(x) if x < 700.0 else math.inf


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def _consistency_limit(z2: float, k: int) -> float:
    """The spread allowed among k builds: z2 for 2 builds, then the same two-sided tail shared by k builds."""
    if k <= 2:
        return z2
    tail = 2.0 * float(special.ndtr(-z2))
    return float(special.ndtri(1.0 - tail / (2.0 * k)))


def _run_to_run_variance(measured: float, measured_df: float, floor: float, prior_df: float,
                         pooled: bool) -> tuple[float, float]:
    """(variance, degrees of freedom) of the run-to-run noise from the history's own spread and the floor.

    Never below the floor. Where the history's spread is under the floor, the floor stands in for
    it, worth `prior_df` degrees of freedom. Above the floor:
    - `pooled` (the single-build test, which can only make a build "suspected"): the floor is a
      prior worth `prior_df` degrees of freedom that tops up what a short history lacks (weight
      prior_df - measured_df) and fades out once the history alone has prior_df. Without it, two
      or three builds that happen to differ by a little more than the floor give t-tails so heavy
      that even a 40 % jump is not suspected, while a little less than the floor is trusted fully:
      a cliff, not a judgement.
    - otherwise (the windows that can confirm, i.e. page someone): the history's own spread and
      degrees of freedom alone. Pooling there raised the false alarms of `bench.detection` at
      short histories whose true noise is above the floor (CV 5 %: 3 % -> 7 % of histories).
    """
    if measured <= floor:
        return floor, max(measured_df, prior_df)
    if not pooled:
        return measured, measured_df
    prior_weight = max(prior_df - measured_df, 0.0)
    return (prior_weight * floor + measured_df * measured) / (prior_weight + measured_df), max(measured_df, prior_df)


def _insufficient(value: float, n_earlier: int) -> Comparison:
    return Comparison(INSUFFICIENT, None, None, None, None, None, None, value, None, None, (), n_earlier)


@dataclass(frozen=True)
class _Analysis:
    windows: dict[int, _Window]
    log_scale: bool
    sign: float
    y: np.ndarray  # finite values, working scale
    keep: np.ndarray  # their indices in the series passed in
    candidate_value: float
    floor_sigma_log: float


def _analyse(series: list[Observation], config: DetectorConfig) -> _Analysis | Comparison:
    """The per-window tests of the candidate (or an "insufficient history" comparison)."""
    if not series:
        return _insufficient(math.nan, 0)
    raw = np.array([o.value if o.value is not None else np.nan for o in series], dtype=float)
    candidate_value = float(raw[-1])
    keep = np.flatnonzero(np.isfinite(raw))
    if not math.isfinite(candidate_value):
        return _insufficient(candidate_value, len(keep))
    values = raw[keep]
    n = len(values)
    if n - 1 < max(config.min_history, 1):
        return _insufficient(candidate_value, n - 1)

    se_raw = np.array([series[i].sampling_se if _finite(series[i].sampling_se) else 0.0 for i in keep], dtype=float)
    log_scale = config.scale == "log" or (config.scale == "auto" and bool(np.all(values > 0)))
    if log_scale and np.any(values <= 0):
        log_scale = False
    if log_scale:
        y, se = np.log(values), np.abs(se_raw) / values
    else:
        y, se = values, np.abs(se_raw)
    sign = 1.0 if config.higher_is_worse else -1.0

    def floor_sigma(level: float) -> float:
        if log_scale:
            # Never exactly 0 (a constant history, a floor of 0): a change is then infinitely
            # significant, not a division by zero.
            return max(math.log1p(config.noise_floor_cv), _MIN_SIGMA_LOG)
        return max(config.noise_floor_cv * abs(level), config.noise_floor_abs)

    n_fixed = None if config.fixed_baseline is None else int(np.sum(keep < config.fixed_baseline))
    windows: dict[int, _Window] = {}
    for k in sorted({1, *config.confirm_windows}):
        if n_fixed is None:
            end = n - k
        elif n - k >= n_fixed:
            end = n_fixed
        else:
            continue
        n_base = min(config.window, end)
        if n_base < max(config.min_history, 2):
            continue
        base, base_se = y[end - n_base:end], se[end - n_base:end]
        recent, recent_se = y[n - k:], se[n - k:]
        level = hodges_lehmann(base)
        sampling_var = float(np.mean(base_se**2))
        env_var, df = _run_to_run_variance(shamos_scale(base) ** 2 - sampling_var, scale_degrees_of_freedom(n_base),
                                           floor_sigma(level) ** 2, config.prior_df, pooled=k == 1)
        var_level = location_variance_factor() * (env_var + sampling_var) / n_base
        build_var = env_var + recent_se**2
        var_recent = float(np.sum(build_var)) / k**2
        se_diff = math.sqrt(var_level + var_recent)
        diff = float(np.mean(recent)) - level
        z = sign * diff / se_diff
        spread = spread_abs = 0.0
        if k > 1:
            others_mean = (np.sum(recent) - recent) / (k - 1)
            others_var = (np.sum(build_var) - build_var) / (k - 1) ** 2
            distance = np.abs(recent - others_mean)
            spread = float(np.max(distance / np.sqrt(build_var + others_var)))
            spread_abs = float(np.max(distance))
        windows[k] = _Window(k, n_base, level, diff, se_diff, df, z, float(special.stdtr(df, -z)),
                             float(special.stdtr(df, z)), spread, spread_abs,
                             math.sqrt(env_var + sampling_var))

    if 1 not in windows:
        return _insufficient(candidate_value, n - 1)
    return _Analysis(windows, log_scale, sign, y, keep, candidate_value,
                     max(math.log1p(config.noise_floor_cv), _MIN_SIGMA_LOG))


def compare(series: list[Observation], config: DetectorConfig = DetectorConfig()) -> Comparison:
    """series: this metric of one operation for builds in push order; the LAST element is the candidate build.
    Used as a gate after every build."""
    analysis = _analyse(series, config)
    if isinstance(analysis, Comparison):
        return analysis
    windows, log_scale, sign, y, keep = analysis.windows, analysis.log_scale, analysis.sign, analysis.y, analysis.keep
    candidate_value = analysis.candidate_value

    def floor_sigma(level: float) -> float:
        if log_scale:
            return analysis.floor_sigma_log
        return max(config.noise_floor_cv * abs(level), config.noise_floor_abs)

    def natural(w: _Window, d: float) -> tuple[float | None, float]:
        """(percent change, absolute change) of a working-scale difference from the window's level."""
        if log_scale:
            base_value = math.exp(w.level)
            return _expm1(d) * 100.0, base_value * _expm1(d)
        return (d / abs(w.level) * 100.0 if w.level != 0 else None), d

    def material(w: _Window) -> bool:
        pct, absolute = natural(w, w.diff)
        if abs(absolute) < config.min_abs_change:
            return False
        return pct is None or abs(pct) >= config.tolerance_pct

    single = windows[1]
    candidate_worse = single.z > 0
    def confirmable(w: _Window) -> bool:
        # The k builds agree: within the noise of one another, or (noise tiny next to the change, as
        # for an error rate jumping from 0) within half the change itself.
        agree = w.spread <= _consistency_limit(config.consistency_z, w.k) or w.spread_abs <= 0.5 * abs(w.diff)
        return w.k > 1 and agree and material(w)

    def alpha(w: _Window) -> float:
        return config.alpha_confirm if w.k == 2 else config.alpha_confirm_long

    confirmed_worse = [w for w in windows.values() if confirmable(w) and w.p_worse < alpha(w) and candidate_worse]
    confirmed_better = [w for w in windows.values() if confirmable(w) and w.p_better < alpha(w) and not candidate_worse]
    suspect_worse = [w for w in windows.values() if material(w) and w.p_worse < config.alpha_suspect and w.z > 0]
    suspect_better = [w for w in windows.values() if material(w) and w.p_better < config.alpha_suspect and w.z < 0]

    if confirmed_worse:
        verdict, confidence, chosen = REGRESSED, CONFIRMED, min(confirmed_worse, key=lambda w: w.p_worse)
    elif confirmed_better:
        verdict, confidence, chosen = IMPROVED, CONFIRMED, min(confirmed_better, key=lambda w: w.p_better)
    elif suspect_worse and single.z > 0:
        verdict, confidence, chosen = REGRESSED, SUSPECTED, min(suspect_worse, key=lambda w: w.p_worse)
    elif suspect_better and single.z < 0:
        verdict, confidence, chosen = IMPROVED, SUSPECTED, min(suspect_better, key=lambda w: w.p_better)
    else:
        verdict, confidence, chosen = UNCHANGED, None, single

    t975 = float(special.stdtrit(chosen.df, 0.975))
    change_pct, change_abs = natural(chosen, chosen.diff)
    lo_pct, _ = natural(chosen, chosen.diff - t975 * chosen.se)
    hi_pct, _ = natural(chosen, chosen.diff + t975 * chosen.se)
    baseline = math.exp(chosen.level) if log_scale else chosen.level

    # Run-to-run noise of one build (from the history before the candidate) and what it lets us see.
    total_sd = single.build_sd
    if log_scale:
        noise_cv = _expm1(total_sd) * 100.0
        mdc = _expm1(_MDC_Z * single.se) * 100.0
    else:
        noise_cv = total_sd / abs(single.level) * 100.0 if single.level != 0 else None
        mdc = _MDC_Z * single.se / abs(single.level) * 100.0 if single.level != 0 else None
    mdc_confirm = None
    if 2 in windows:
        w2 = windows[2]
        zc = float(special.stdtrit(w2.df, 1.0 - config.alpha_confirm) + special.ndtri(0.80))
        mdc_confirm = _expm1(zc * w2.se) * 100.0 if log_scale else (
            zc * w2.se / abs(w2.level) * 100.0 if w2.level != 0 else None)

    cps: tuple[int, ...] = ()
    if config.find_change_points:
        sigma = max(difference_noise(y), floor_sigma(float(np.median(y))))
        cps = tuple(int(keep[i]) for i in _change_points(y, sigma, penalty=config.change_point_penalty))

    p_value = chosen.p_worse if chosen.z >= 0 else chosen.p_better
    return Comparison(
        verdict=verdict, confidence=confidence, change_pct=change_pct, ci_low_pct=lo_pct, ci_high_pct=hi_pct,
        z=chosen.z * sign, baseline=baseline, value=candidate_value, noise_cv_pct=noise_cv, mdc_pct=mdc,
        change_points=cps, builds_compared=chosen.n_base, builds_in_change=chosen.k, change_abs=change_abs,
        p_value=p_value, mdc_confirm_pct=mdc_confirm,
    )


def bootstrap_quantile_se(samples, q: float, n_boot: int = 200, seed: int = 0) -> float:
    """Standard error of the q-quantile of raw latency samples (used to fill Observation.sampling_se).

    An exact shortcut of resampling the samples with replacement `n_boot` times and taking each
    resample's q-quantile (numpy's default, linear interpolation): that quantile only depends on two
    adjacent order statistics of the resample, and the order statistics of n draws from the sorted
    samples are those of n uniforms (Beta distributed), mapped through the empirical quantile function.
    The same distribution as the brute-force bootstrap, in O(n log n + n_boot) instead of O(n * n_boot).
    """
    x = np.sort(np.asarray(samples, dtype=float).ravel())
    x = x[np.isfinite(x)]
    n = len(x)
    if n < 2:
        return math.nan
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q must be in [0, 1], not {q}")
    rng = np.random.default_rng(seed)
    h = (n - 1) * q
    lo = int(math.floor(h))
    frac = h - lo
    hi = min(lo + 1, n - 1)
    # U_(lo+1) of n uniforms ~ Beta(lo+1, n-lo); the next one adds a Beta(1, n-lo-1) share of the rest.
    u_lo = rng.beta(lo + 1, n - lo, size=n_boot)
    u_hi = u_lo + (1.0 - u_lo) * rng.beta(1, n - lo - 1, size=n_boot) if hi > lo else u_lo
    pick_lo = np.minimum((u_lo * n).astype(np.int64), n - 1)
    pick_hi = np.minimum((u_hi * n).astype(np.int64), n - 1)
    quantiles = x[pick_lo] + frac * (x[pick_hi] - x[pick_lo])
    return float(np.std(quantiles, ddof=1))
