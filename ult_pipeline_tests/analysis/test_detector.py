"""The regression detector on known inputs (no Dagster, no I/O)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ult_pipeline.analysis.detector import (
    Comparison,
    DetectorConfig,
    Observation,
    bootstrap_quantile_se,
    compare,
)

# Fixed run-to-run noise: 2 % CV around 100 ms, the same in every test.
NOISE = np.random.default_rng(7).standard_normal(40)


def history(n: int = 20, level: float = 100.0, cv: float = 0.02) -> list[float]:
    return list(level * (1.0 + cv * NOISE[:n]))


def obs(values: list[float], se: float | None = None) -> list[Observation]:
    return [Observation(f"b{i}", v, se) for i, v in enumerate(values)]


def test_clear_step_is_suspected_then_confirmed_after_two_builds():
    base = history()
    first = compare(obs([*base, 115.0]))
    assert first.verdict == "regressed" and first.confidence == "suspected"
    second = compare(obs([*base, 115.0, 114.0]))
    assert second.verdict == "regressed" and second.confidence == "confirmed"
    assert second.builds_in_change == 2
    assert 10.0 < second.change_pct < 20.0
    assert second.ci_low_pct < second.change_pct < second.ci_high_pct
    assert second.ci_low_pct > 0
    assert second.z > 3 and second.p_value < 0.0025


def test_flat_noise_is_unchanged_at_every_gate():
    values = history(40)
    for i in range(7, 40):
        result = compare(obs(values[: i + 1]))
        assert result.verdict == "unchanged", (i, result)
        assert result.confidence is None


def test_noise_and_minimum_detectable_change_are_reported():
    result = compare(obs(history(21, cv=0.03)))
    assert 2.0 < result.noise_cv_pct < 4.5
    # About 3.2 x CV for one run (anchors), a little more for the baseline's own uncertainty.
    assert 0.8 * 3.2 * result.noise_cv_pct < result.mdc_pct < 1.4 * 3.2 * result.noise_cv_pct
    assert result.mdc_confirm_pct is not None and result.mdc_confirm_pct < 1.1 * result.mdc_pct


def test_single_outlier_is_at_most_suspected():
    base = history()
    outlier = compare(obs([*base, 125.0]))
    assert outlier.verdict == "regressed" and outlier.confidence == "suspected"
    after = compare(obs([*base, 125.0, 100.5]))
    assert not (after.verdict == "regressed" and after.confidence == "confirmed")
    later = compare(obs([*base, 125.0, 100.5, 99.0]))
    assert later.verdict == "unchanged"


def test_outlier_confirmed_when_the_next_build_is_slow_too():
    result = compare(obs([*history(), 125.0, 121.0]))
    assert result.verdict == "regressed" and result.confidence == "confirmed"


def test_improvement():
    result = compare(obs([*history(), 85.0, 86.0]))
    assert result.verdict == "improved" and result.confidence == "confirmed"
    assert result.change_pct < -10


def test_throughput_direction():
    tput = history(level=500.0)
    down = compare(obs([*tput, 420.0, 425.0]), DetectorConfig(higher_is_worse=False))
    assert down.verdict == "regressed" and down.confidence == "confirmed" and down.change_pct < 0
    up = compare(obs([*tput, 580.0, 585.0]), DetectorConfig(higher_is_worse=False))
    assert up.verdict == "improved"


def test_within_tolerance_is_unchanged():
    # A significant but small change (2 % on 0.2 % noise) stays "unchanged" under the 3 % tolerance.
    base = history(cv=0.002)
    assert compare(obs([*base, 102.0, 102.0]), DetectorConfig(noise_floor_cv=0.001)).verdict == "unchanged"
    assert compare(obs([*base, 102.0, 102.0]), DetectorConfig(noise_floor_cv=0.001, tolerance_pct=1.0)).verdict \
        == "regressed"


def test_insufficient_history():
    assert compare([]).verdict == "insufficient history"
    short = compare(obs([100.0, 101.0]))
    assert short.verdict == "insufficient history" and short.confidence is None
    assert short.builds_compared == 1 and short.value == 101.0
    assert compare(obs([100.0, 101.0, 99.0])).verdict == "unchanged"
    assert compare(obs([100.0, 101.0, 99.0]), DetectorConfig(min_history=5)).verdict == "insufficient history"
    nan_candidate = compare(obs([*history(), math.nan]))
    assert nan_candidate.verdict == "insufficient history" and math.isnan(nan_candidate.value)


def test_two_builds_of_history_a_little_noisier_than_the_floor_still_see_a_large_step():
    # Two baseline runs 8 % apart (just above a 5 % floor) used to leave ~0.6 degrees of freedom,
    # so even +40 % was "unchanged"; 4 % apart, the same step was suspected: a cliff.
    config = DetectorConfig(noise_floor_cv=0.05)
    for spread in (0.04, 0.08, 0.12):
        result = compare(obs([100.0, 100.0 * (1 + spread), 140.0]), config)
        assert (result.verdict, result.confidence) == ("regressed", "suspected"), (spread, result)
    # The history's own spread still counts: +20 % over two close runs is suspected, +20 % over
    # two runs 40 % apart is not.
    assert compare(obs([100.0, 104.0, 122.4]), config).verdict == "regressed"
    assert compare(obs([100.0, 140.0, 141.6]), config).verdict == "unchanged"


def test_the_floor_prior_fades_out_as_the_history_grows_and_never_confirms():
    from ult_pipeline.analysis.detector import _run_to_run_variance

    floor = 0.05**2
    for pooled in (True, False):  # below the floor: the floor
        assert _run_to_run_variance(0.01**2, 0.6, floor, 10.0, pooled) == (floor, 10.0)
    short_var, short_df = _run_to_run_variance(0.10**2, 0.6, floor, 10.0, pooled=True)
    assert floor < short_var < 0.10**2 and short_df == 10.0  # mostly the prior
    assert _run_to_run_variance(0.10**2, 15.0, floor, 10.0, pooled=True) == (0.10**2, 15.0)  # the history alone
    # Continuous where the prior runs out.
    assert _run_to_run_variance(0.10**2, 9.999, floor, 10.0, pooled=True)[0] == pytest.approx(0.10**2, rel=1e-3)
    # The windows that confirm stand on the history alone.
    assert _run_to_run_variance(0.10**2, 0.6, floor, 10.0, pooled=False) == (0.10**2, 0.6)


def test_a_confirmation_window_over_two_scattered_builds_reports_an_unbounded_interval_not_an_error():
    # Four builds: the window of the last two has a baseline of two runs 40 % apart, i.e. well under
    # one degree of freedom; its t quantile is astronomically large (a demo run crashed on it).
    result = compare(obs([100.0, 140.0, 101.0, 131.0]), DetectorConfig(noise_floor_cv=0.05))
    assert result.verdict in ("unchanged", "regressed")
    assert result.mdc_confirm_pct is not None and result.mdc_confirm_pct > 100.0


def test_constant_series():
    result = compare(obs([100.0] * 20 + [100.0]))
    assert result.verdict == "unchanged" and result.change_pct == 0.0
    assert result.noise_cv_pct == pytest.approx(2.0, rel=0.01)  # the floor
    assert result.change_points == ()


def test_error_rates_with_zeros():
    zeros = [0.0] * 20
    flat = compare(obs([*zeros, 0.0]))
    assert flat.verdict == "unchanged" and flat.change_abs == 0.0
    small = compare(obs([*zeros, 0.004, 0.004]))  # 0.4 percentage point: below 0.5
    assert small.verdict == "unchanged"
    big = compare(obs([*zeros, 0.05, 0.06]))
    assert big.verdict == "regressed" and big.confidence == "confirmed"
    assert big.change_pct is None and big.change_abs == pytest.approx(0.055)
    # Positive but tiny rates (relative scale): +200 % is still only 0.2 percentage points.
    tiny = [0.001 * (1 + 0.1 * e) for e in NOISE[:20]]
    assert compare(obs([*tiny, 0.003, 0.003])).verdict == "unchanged"
    sparse = compare(obs([0.0, 0.001, 0.0, 0.0, 0.002, 0.0, 0.0, 0.0, 0.01, 0.0, 0.0, 0.001]))
    assert sparse.verdict == "unchanged"


def test_nan_values_are_dropped():
    base = history()
    clean = compare(obs([*base, 115.0, 114.0]))
    with_nan = [*base[:5], math.nan, *base[5:], 115.0, 114.0]
    dirty = compare(obs(with_nan))
    assert dirty.verdict == clean.verdict and dirty.confidence == clean.confidence
    assert dirty.change_pct == pytest.approx(clean.change_pct)
    # The change point index refers to the series passed in (NaN included).
    assert 21 in clean.change_points or 20 in clean.change_points
    assert {i + 1 for i in clean.change_points} == set(dirty.change_points)
    with_none_se = compare([Observation("a", v, float("nan")) for v in [*base, 101.0]])
    assert with_none_se.verdict == "unchanged"


def test_change_points_at_the_right_index():
    values = [*history(24, cv=0.015), *(110.0 * (1 + 0.015 * NOISE[24:36]))]
    result = compare(obs(values))
    assert result.change_points == (24,)
    assert compare(obs(history(36, cv=0.015))).change_points == ()


def test_sampling_se_widens_the_interval():
    base = obs(history())
    tight = compare([*base, Observation("c", 104.0, 0.1)])
    loose = compare([*base, Observation("c", 104.0, 5.0)])
    assert loose.ci_high_pct - loose.ci_low_pct > tight.ci_high_pct - tight.ci_low_pct
    assert abs(loose.z) < abs(tight.z)


def test_comparison_fields():
    result = compare(obs([*history(), 101.0]))
    assert isinstance(result, Comparison)
    assert result.value == 101.0 and result.builds_compared == 20 and result.builds_in_change == 1
    assert result.baseline == pytest.approx(100.0, rel=0.02)


def test_bootstrap_quantile_se_shrinks_with_more_samples():
    rng = np.random.default_rng(11)
    small = bootstrap_quantile_se(rng.lognormal(3, 0.5, 1_000), 0.95)
    large = bootstrap_quantile_se(rng.lognormal(3, 0.5, 100_000), 0.95)
    assert 5 < small / large < 20  # about sqrt(100) = 10
    assert bootstrap_quantile_se(rng.lognormal(3, 0.5, 1_000), 0.95, seed=1) == pytest.approx(small, rel=0.3)
    assert math.isnan(bootstrap_quantile_se([1.0], 0.5))


def test_bootstrap_quantile_se_matches_brute_force():
    rng = np.random.default_rng(5)
    x = rng.lognormal(3, 0.5, 500)
    brute = np.std([np.quantile(rng.choice(x, len(x)), 0.95) for _ in range(2000)])
    assert bootstrap_quantile_se(x, 0.95, n_boot=2000) == pytest.approx(brute, rel=0.15)
