"""The gate: one function and one configuration for the asset, `ult analyze` and the benchmark."""

from __future__ import annotations

import dataclasses
import inspect
import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from ult_pipeline.analysis.ab import Confirmation
from ult_pipeline.analysis.gate import (
    CLEARED_BY_AB,
    CONFIRMED_BY_AB,
    apply_confirmation,
    decide,
    judge,
    representative_baseline,
)
from ult_pipeline.analysis.history import build_order
from ult_pipeline.analysis.regression import DEFAULT_GATE, GateConfig
from ult_pipeline.cli.main import cli
from ult_pipeline_tests.analysis.history_fixtures import history


def long_history(values: dict[str, list[float]]) -> pd.DataFrame:
    builds = len(next(iter(values.values())))
    rows = []
    for b in range(builds):
        for op, series in values.items():
            rows.append({"build": f"v{b}-{b:012x}", "pushed_at": pd.Timestamp("2026-11-01", tz="UTC")
                         + pd.Timedelta(hours=b), "operation": op, "metric": "p50", "value": series[b]})
    return pd.DataFrame(rows)


def test_one_stepped_operation_of_two_does_not_make_the_other_look_faster():
    # The reported case: `me` flat at ~20 ms, `userNode` stepping from 30 to 39.5 ms.
    frame = long_history({"me": [20.1, 19.8, 20.3, 20.0, 20.2], "userNode": [30.2, 29.9, 30.1, 39.5, 39.4]})
    judgement = judge(frame, build_order(frame)[-1])
    ops = judgement.operations.set_index("operation")
    assert ops.loc["me", "verdict"] in ("unchanged", "inconclusive")
    assert ops.loc["userNode", "verdict"] == "regressed"
    assert not judgement.table["relative"].any()  # two operations cannot measure a host factor
    assert ops.loc["me", "p50_ms"] == pytest.approx(20.2)  # measured, never the normalized value


def test_eight_operations_with_two_stepped_give_both_regressed_and_the_others_unchanged():
    frame = history(14, cv=0.015, seed=3)
    stepped = ("myUsers", "permissions")
    late = frame["build"].isin(build_order(frame)[-3:]) & frame["operation"].isin(stepped) & \
        frame["metric"].isin(["p50", "p95", "p99"])
    frame.loc[late, "value"] *= 1.3
    ops = judge(frame, build_order(frame)[-1]).operations.set_index("operation").drop(index="__all__")
    assert set(ops.loc[list(stepped), "verdict"]) == {"regressed"}
    assert set(ops.drop(index=list(stepped))["verdict"]) == {"unchanged"}, ops[["verdict", "p50_change_pct"]]
    # Reported values are measured; the deciding change is beside them.
    assert ops.loc["myUsers", "p50_change_pct"] == pytest.approx(30, abs=6)


def test_an_operation_that_could_not_see_a_change_that_matters_is_inconclusive_never_unchanged():
    noisy = history(6, cv=0.15, seed=1)
    judgement = judge(noisy, build_order(noisy)[-1])
    ops = judgement.operations.set_index("operation").drop(index="__all__")
    quiet = ops[ops["verdict"].isin(["unchanged", "inconclusive"])]
    assert len(quiet) and set(quiet["verdict"]) == {"inconclusive"}
    assert (quiet["mdc_pct"] > DEFAULT_GATE.matters_pct).all()
    decision = decide(judgement.operations)
    assert decision.warns and "could only see changes above" in decision.summary
    # The same history with a larger size that matters may say unchanged.
    lenient = GateConfig(matters_pct=1000)
    assert "inconclusive" not in set(judge(noisy, build_order(noisy)[-1], lenient).operations["verdict"])


def test_the_gate_fails_on_confirmed_warns_on_suspected_and_never_counts_the_build_wide_row():
    ops = pd.DataFrame([
        {"operation": "__all__", "verdict": "regressed", "confidence": "confirmed", "mdc_pct": 5.0},
        {"operation": "me", "verdict": "unchanged", "confidence": None, "mdc_pct": 5.0},
    ])
    assert not decide(ops).fails and not decide(ops).warns and decide(ops).exit_code == 0
    suspected = ops.copy()
    suspected.loc[1, ["verdict", "confidence"]] = ["regressed", "suspected"]
    assert not decide(suspected).fails and decide(suspected).warns and decide(suspected).exit_code == 0
    confirmed = ops.copy()
    confirmed.loc[1, ["verdict", "confidence"]] = ["regressed", "confirmed"]
    assert decide(confirmed).fails and decide(confirmed).exit_code == 1


def test_apply_confirmation_confirms_or_clears():
    ops = pd.DataFrame([{"operation": "me", "verdict": "regressed", "confidence": "suspected",
                         "regressed_metrics": "p50", "mdc_pct": 5.0}])
    yes = Confirmation(True, 20.0, 15.0, 25.0, 1e-6, 4, 6.0)
    no = Confirmation(False, 0.5, -3.0, 4.0, 0.4, 4, 6.0)
    assert decide(apply_confirmation(ops, {"me": yes})).fails
    assert apply_confirmation(ops, {"me": yes}).loc[0, "confidence"] == CONFIRMED_BY_AB
    cleared = apply_confirmation(ops, {"me": no})
    assert cleared.loc[0, "confidence"] == CLEARED_BY_AB and cleared.loc[0, "verdict"] == "unchanged"
    assert not decide(cleared).fails
    blind = apply_confirmation(ops, {"me": dataclasses.replace(no, mdc_pct=40.0)})
    assert blind.loc[0, "verdict"] == "inconclusive"


def test_the_ab_baseline_is_a_typical_build_not_the_slow_one_just_before():
    values = [30.0, 30.3, 29.8, 30.1, 39.0, 39.2]  # the step at build 4 was never confirmed
    frame = long_history({"userNode": values})
    order = build_order(frame)
    assert representative_baseline(frame, order[-1], ["userNode"]) in order[:4]


@pytest.mark.parametrize("case", ["step", "flat", "suspected"])
def test_ult_analyze_and_the_asset_gate_agree_on_one_history(tmp_path, case):
    frame = {"step": history(12, cv=0.02, slow_op="myClasses", slow_from=10, factor=1.4),
             "flat": history(12, cv=0.02, seed=2),
             "suspected": history(12, cv=0.02, slow_op="myClasses", slow_from=11, factor=1.4)}[case]
    path = tmp_path / "history.csv"
    frame.to_csv(path, index=False)
    result = CliRunner().invoke(cli, ["analyze", str(path), "--output", "json"])
    expected = decide(judge(frame, build_order(frame)[-1]).operations)
    assert result.exit_code == expected.exit_code, result.output
    parsed = json.loads(result.output)
    assert parsed["verdict"] == expected.verdict and parsed["fails"] == expected.fails
    assert {"step": 1, "flat": 0, "suspected": 0}[case] == result.exit_code


def test_one_default_configuration_for_the_asset_the_cli_and_the_benchmark():
    from ult_pipeline.assets.regression_comparison import RegressionConfig
    from ult_pipeline.cli.analyze import analyze_command
    from ult_pipeline_tests.bench import detection

    assert RegressionConfig().gate() == DEFAULT_GATE
    defaults = {p.name: p.default for p in analyze_command.params}
    assert defaults["baseline"] == DEFAULT_GATE.baseline
    assert defaults["tolerance_pct"] == DEFAULT_GATE.tolerance_pct
    assert defaults["matters_pct"] == DEFAULT_GATE.matters_pct
    # The bench drives the same function with the same defaults and window as the asset and the CLI.
    assert detection.GATE is DEFAULT_GATE
    source = inspect.getsource(detection.gate_history)
    assert "judge(frame, build, GATE" in source and "decide(" in source


def test_the_benchmark_history_is_what_ult_analyze_reads(tmp_path):
    from ult_pipeline_tests.bench import detection

    frame, _ = detection.history(np.random.default_rng(0), 8, 0.10, outliers=False)
    path = tmp_path / "bench.csv"
    frame.to_csv(path, index=False)
    result = CliRunner().invoke(cli, ["analyze", str(path), "--output", "json"])
    assert result.exit_code in (0, 1), result.output
    assert json.loads(result.output)["verdict"] == judge(frame, build_order(frame)[-1]).verdict


def test_a_history_without_noise_gets_a_verdict_not_a_crash():
    # Whole-millisecond values or a constant latency: no measured spread. Never a division by zero.
    flat = long_history({op: [10.0] * 8 for op in ("a", "b", "c", "d", "e")})
    assert judge(flat, build_order(flat)[-1]).verdict in ("unchanged", "inconclusive")
    stepped = long_history({**{op: [10.0] * 8 for op in ("a", "b", "c", "d")}, "e": [10.0] * 6 + [14.0, 14.0]})
    ops = judge(stepped, build_order(stepped)[-1]).operations.set_index("operation")
    assert ops.loc["e", "verdict"] == "regressed" and ops.loc["e", "confidence"] == "confirmed"


@pytest.mark.parametrize("baseline", ["pinned", "release"])
def test_a_pinned_or_release_baseline_confirms_a_step_the_newest_builds_share(baseline):
    frame = history(12, cv=0.02, slow_op="me", slow_from=6, factor=1.5)
    order = build_order(frame)
    if baseline == "release":
        frame["build"] = frame["build"].replace({order[3]: "v1.0.0-000000000003"})
        policy = "release"
    else:
        policy = f"pinned:{order[3]}"
    ops = judge(frame, build_order(frame)[-1], GateConfig(baseline=policy)).operations.set_index("operation")
    assert ops.loc["me", "verdict"] == "regressed" and ops.loc["me", "confidence"] == "confirmed", ops
    assert decide(judge(frame, build_order(frame)[-1], GateConfig(baseline=policy)).operations).exit_code == 1


def test_the_gates_summary_is_a_sentence_that_names_what_it_checked():
    def ops(*rows):
        return pd.DataFrame([{"operation": op, "verdict": verdict, "confidence": confidence, "mdc_pct": mdc}
                             for op, verdict, confidence, mdc in rows])

    quiet = ops(("me", "unchanged", None, 6.0), ("userNode", "unchanged", None, 8.6),
                ("__all__", "improved", "suspected", 3.0))
    assert decide(quiet, DEFAULT_GATE).summary == ("unchanged: no operation slower beyond 3 %; each of 2 operations "
                                                    "could see a 9 % change")
    faster = ops(("me", "improved", "confirmed", 6.0), ("userNode", "unchanged", None, 8.0))
    assert decide(faster, DEFAULT_GATE).summary.startswith("improved: me faster; no operation slower beyond 3 %")
    too_few = ops(("me", "insufficient history", None, None), ("userNode", "insufficient history", None, None))
    assert decide(too_few).summary == "insufficient history: fewer than 2 earlier builds to compare with; nothing judged"
    blind = ops(*((op, "inconclusive", None, mdc) for op, mdc in (("me", 15.2), ("myUser", 24.4), ("userNode", 18.0))))
    assert decide(blind, DEFAULT_GATE).summary == (
        "inconclusive: all 3 operations could only see changes above 15 to 24 % (10 % matters)")
    one = ops(("me", "inconclusive", None, 42.0), ("userNode", "unchanged", None, 5.0))
    assert decide(one).summary == "inconclusive: me (could only see changes above 42 %)"
