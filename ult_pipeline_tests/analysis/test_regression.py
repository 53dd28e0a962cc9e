"""Verdicts per build and operation on known histories (no Dagster)."""

from __future__ import annotations

import pandas as pd
import pytest

from ult_pipeline.analysis.history import HistoryError, build_order, validate
from ult_pipeline.analysis.regression import (
    DEFAULT_GATE,
    BaselinePolicy,
    GateConfig,
    analyze,
    operation_verdicts,
    overall,
)
from ult_pipeline_tests.analysis.history_fixtures import history


def raw_verdicts(frame, build=None, config=DEFAULT_GATE):
    order = build_order(frame)
    return operation_verdicts(analyze(frame, build or order[-1], config), config)


def verdicts_for(frame, build=None, config=DEFAULT_GATE):
    return raw_verdicts(frame, build, config).set_index("operation")


def test_one_slower_operation_is_regressed_and_only_it():
    frame = history(12, cv=0.02, slow_op="userNode", slow_from=10, factor=1.3)
    verdicts = verdicts_for(frame)
    assert verdicts.loc["userNode", "verdict"] == "regressed"
    assert verdicts.loc["userNode", "confidence"] == "confirmed"
    others = verdicts.drop(index=["userNode", "__all__"])
    assert set(others["verdict"]) == {"unchanged"}
    assert verdicts.loc["userNode", "p95_change_pct"] == pytest.approx(30, abs=8)


def test_a_same_speed_rebuild_on_a_noisy_host_is_not_regressed():
    # The whole host slows some builds by up to ~2x: relative comparison cancels it.
    frame = history(12, env_noise=0.35, seed=4)
    verdicts = raw_verdicts(frame)
    # Inconclusive is allowed: 11 builds at 3 % noise cannot see every 10 % change.
    assert overall(verdicts) in ("unchanged", "improved", "inconclusive"), verdicts


@pytest.mark.parametrize("seed", range(8))
def test_the_build_median_operation_slowed_on_a_short_noisy_history_is_regressed_and_only_it(seed):
    # The demo's situation: two builds of history, the first on a busy host (everything ~1.6x),
    # then the operation that sits at the build's median latency gets 35 % slower. It must not
    # drag the other operations' yardstick with it (they would look faster) or hide its own step.
    frame = history(3, slow_op="orgMemberships", slow_from=2, factor=1.35, seed=seed)
    first = frame["build"] == build_order(frame)[0]
    latency = frame["metric"].isin(["p50", "p95", "p99"])
    frame.loc[first & latency, "value"] *= 1.6
    verdicts = verdicts_for(frame)
    assert verdicts.loc["orgMemberships", "verdict"] == "regressed", verdicts
    others = verdicts.drop(index=["orgMemberships", "__all__"])
    # Two builds of history cannot see a 10 % change: inconclusive, but never regressed or improved.
    assert set(others["verdict"]) <= {"unchanged", "inconclusive"}, others


def test_holm_adjusted_p_values():
    from ult_pipeline.analysis.regression import holm

    # Sorted 0.01, 0.02, 0.04 -> 3 x 0.01, max(0.03, 2 x 0.02), max(0.04, 1 x 0.04); then at most 1.
    assert holm([0.04, 0.01, 0.02]).tolist() == pytest.approx([0.04, 0.03, 0.04])
    assert holm([0.5, 0.9]).tolist() == pytest.approx([1.0, 1.0])


def test_a_suspicion_must_survive_the_family_wise_error_rate_of_its_family():
    from ult_pipeline.analysis.regression import family_wise

    ops = ["a", "b", "c", "d", "e", "f", "g", "h"]
    rows = [{"operation": op, "metric": metric, "verdict": "unchanged", "confidence": None, "p_value": 0.4,
             "z": 0.5, "change_pct": 1.0}
            for op in ops for metric in ("p50", "p95", "p99", "error_rate")]
    rows.append({"operation": "__all__", "metric": "p95", "verdict": "regressed", "confidence": "suspected",
                 "p_value": 0.003, "z": 3.0, "change_pct": 10.0})
    table = pd.DataFrame(rows)

    def mark(op, metric, p):
        at = (table["operation"] == op) & (table["metric"] == metric)
        table.loc[at, ["verdict", "confidence", "p_value", "z", "change_pct"]] = ["regressed", "suspected", p, 3.0, 10.0]

    mark("a", "p50", 0.0011)  # the demo's weakest real +30 %: one of 8 medians
    # Two noisy tails at once, each one of 24 tail tests (a demo run had exactly these): chance.
    mark("b", "p95", 0.0039)
    mark("c", "p99", 0.0040)
    judged = family_wise(table, GateConfig(suspect_alpha=0.05)).set_index(["operation", "metric"])
    assert judged.loc[("a", "p50"), "verdict"] == "regressed"
    assert judged.loc[("a", "p50"), "p_adjusted"] == pytest.approx(0.0011 * 8)
    for tail in (("b", "p95"), ("c", "p99")):
        assert judged.loc[tail, "verdict"] == "unchanged" and pd.isna(judged.loc[tail, "confidence"])
    assert judged.loc[("b", "p95"), "p_adjusted"] == pytest.approx(0.0039 * 24)
    # The build-wide row is outside both families.
    assert judged.loc[("__all__", "p95"), "verdict"] == "regressed"


def test_insufficient_history_and_the_baseline_policies():
    frame = history(2)
    assert overall(raw_verdicts(frame)) == "insufficient history"
    frame = history(12, slow_op="me", slow_from=11, factor=1.5)
    order = build_order(frame)
    pinned = analyze(frame, order[-1], GateConfig(baseline=f"pinned:{order[5]}"))
    assert pinned["builds_compared"].max() <= 6
    with pytest.raises(HistoryError, match="pinned baseline"):
        analyze(frame, order[-1], GateConfig(baseline="pinned:nope"))
    with pytest.raises(HistoryError, match="last:N"):
        BaselinePolicy.parse("sometimes")


def test_release_baseline_uses_builds_up_to_the_last_release_tag():
    policy = BaselinePolicy.parse("release")
    order = ["v1.0.0-aaaaaaaaaaaa", "feature-x-bbbbbbbbbbbb", "v1.1.0-cccccccccccc", "feature-y-dddddddddddd", "cand-eeeeeeeeeeee"]
    from ult_pipeline.analysis.regression import tag_of

    assert policy.earlier_builds(order, "cand-eeeeeeeeeeee", tag_of) == order[:3]


def test_history_validation_names_the_problem():
    good = history(3)
    with pytest.raises(HistoryError, match="missing column.*metric"):
        validate(good.drop(columns="metric"))
    with pytest.raises(HistoryError, match="unknown metric.*p42"):
        validate(good.assign(metric="p42"))
    with pytest.raises(HistoryError, match="'fast' is not a number"):
        validate(good.assign(value=good["value"].astype(object).where(good.index > 0, "fast")))
    assert isinstance(validate(good)["pushed_at"].dtype, pd.DatetimeTZDtype)
