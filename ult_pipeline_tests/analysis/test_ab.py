"""A/B confirmation statistics (no Dagster): a paired test that can confirm from the default pairs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ult_pipeline.analysis.ab import AbRun, PairConfig, confirm_operations, confirm_paired, pair_differences


def test_the_smallest_attainable_p_with_the_default_pairs_is_far_below_alpha():
    # The rank test this replaces could not go below 0.25 with 2 pairs: every regression was "cleared".
    config = PairConfig()
    huge = confirm_paired([math.log(1.5)] * config.pairs, [0.01] * config.pairs)
    assert huge.p_value < config.alpha / 1000 and huge.confirmed
    two = confirm_paired([math.log(1.5), math.log(1.6)])
    assert two.confirmed and two.change_pct == pytest.approx(54.9, abs=0.1)


def test_a_large_slowdown_is_confirmed_and_the_same_speed_is_not():
    rng = np.random.default_rng(1)
    config = PairConfig()
    confirmed = same = 0
    for _ in range(200):
        noise = rng.normal(0, config.pair_noise, config.pairs)
        confirmed += confirm_paired(math.log(1.2) + noise, [0.005] * config.pairs).confirmed
        same += confirm_paired(noise, [0.005] * config.pairs).confirmed
    assert confirmed >= 195 and same <= 4


def test_a_lucky_run_of_agreeing_pairs_cannot_confirm_a_change_smaller_than_the_noise_alone():
    # Four pairs that agree to 0.1 % on +2 %: the pairs' own spread is tiny, the prior noise is not.
    result = confirm_paired([0.020, 0.021, 0.019, 0.020])
    assert not result.confirmed and result.mdc_pct > 2


def test_the_within_run_error_is_a_floor_of_the_pair_variance():
    loose = confirm_paired([0.1, 0.1, 0.1, 0.1], [0.2] * 4)
    tight = confirm_paired([0.1, 0.1, 0.1, 0.1], [0.001] * 4)
    assert loose.p_value > tight.p_value and not loose.confirmed


def test_pair_differences_divide_out_the_host_without_the_operation_under_test():
    ops = {"a": 10.0, "b": 20.0, "c": 30.0, "d": 40.0}
    baseline = [ops, ops]
    # Pair 2's host is 50 % slower for everything; "a" is 20 % slower in both pairs.
    candidate = [{**ops, "a": 12.0}, {k: v * 1.5 for k, v in {**ops, "a": 12.0}.items()}]
    d = pair_differences(candidate, baseline)
    assert np.allclose(d["a"], math.log(1.2))
    assert np.allclose(d["b"], 0.0)  # the slowed "a" never moves the others' yardstick
    absolute = pair_differences(candidate, baseline, normalize=False)
    assert absolute["b"][1] == pytest.approx(math.log(1.5))
    # Fewer than 3 other operations: no host factor, absolute differences.
    two = pair_differences([{"a": 12.0, "b": 30.0}], [{"a": 10.0, "b": 20.0}])
    assert two["a"][0] == pytest.approx(math.log(1.2)) and two["b"][0] == pytest.approx(math.log(1.5))
    with pytest.raises(ValueError, match="pairs"):
        pair_differences([ops], [])


def test_confirm_operations_shares_alpha_among_the_operations_re_run():
    rng = np.random.default_rng(0)
    ops = {f"op{i}": 10.0 + i for i in range(6)}
    runs = []
    for pair in range(4):
        host = float(np.exp(rng.normal(0, 0.05)))
        runs.append(AbRun(pair, "baseline", {"p50": {k: v * host for k, v in ops.items()}}, {}))
        slow = {k: v * host * (1.25 if k == "op1" else 1.0) * float(np.exp(rng.normal(0, 0.01)))
                for k, v in ops.items()}
        runs.append(AbRun(pair, "candidate", {"p50": slow}, {}))
    results = confirm_operations(runs, {"op1": "p50", "op3": "p50"})
    assert results["op1"].confirmed and results["op1"].change_pct == pytest.approx(25, abs=4)
    assert not results["op3"].confirmed
    assert results["op1"].pairs == 4
    # An incomplete pair (the candidate run missing) is left out.
    assert confirm_operations(runs[:-1], {"op1": "p50"})["op1"].pairs == 3
