"""What a build's asset pages say: the verdict first, the build named, units in every name, numbers
rounded, a reason beside every verdict, and one number per operation for Dagster's Plots tab."""

from __future__ import annotations

import math

import dagster as dg
import pandas as pd
import pytest

from ult_pipeline.analysis.gate import decide
from ult_pipeline.analysis.regression import DEFAULT_GATE
from ult_pipeline.assets.ab_confirmation import ab_metadata, final_verdict, no_regression_result
from ult_pipeline.assets.k6_results import plotted_metadata, result_metadata
from ult_pipeline.assets.presentation import ALL_LABEL, ALL_VERDICT, VERDICT_COLUMNS, verdict_rows, why
from ult_pipeline.assets.regression_comparison import comparison_metadata
from ult_pipeline.assets.telemetry_gap import gap_table
from ult_pipeline_tests.assets.pages import OPERATIONS, judged, k6_result

BUILD = "v1.1.0-0123456789ab"


def decimals(value: float) -> int:
    text = repr(float(value))
    return len(text.split(".")[1]) if "." in text and "e" not in text else 0


def test_k6_results_names_the_build_first_and_carries_units_in_every_name():
    meta = result_metadata(k6_result(), BUILD, {})
    assert list(meta)[:2] == ["build", "image"] and meta["build"] == BUILD and meta["image"] == "v1.1.0"
    assert {"requests", "error_rate_pct", "p95_ms", "p99_ms", "achieved_rate_per_s"} <= set(meta)
    assert "error_rate" not in meta and "achieved_rate" not in meta
    table = meta["operations"]
    names = [c.name for c in table.schema.columns]
    assert names[:5] == ["operation", "error_rate_pct", "p50_ms", "p95_ms", "p99_ms"]
    assert all(n == "operation" or n == "requests" or n.endswith(("_ms", "_pct", "_per_s")) for n in names)
    for record in table.records:
        for name, value in record.data.items():
            if isinstance(value, float):
                assert decimals(value) <= 3, (name, value)
    # The error rate 0.0009549274255156608 reads as a percentage with three decimals.
    my_user = next(r.data for r in table.records if r.data["operation"] == "myUser")
    assert my_user["error_rate_pct"] == 0.095
    assert table.records[-1].data["operation"] == ALL_LABEL


def test_every_operation_has_its_own_numbers_for_the_plots_tab_and_no_nan():
    meta = result_metadata(k6_result(failed_operation="myClasses"), BUILD)
    for op in [o for o in OPERATIONS if o != "myClasses"] + ["all"]:
        for metric in ("p50_ms", "p95_ms", "p99_ms", "error_rate_pct"):
            value = meta[f"{metric}/{op}"]
            assert isinstance(value, dg.FloatMetadataValue) and math.isfinite(value.value), (metric, op)
    # Every request failed: no latency (never NaN or 0), but its error rate is there.
    assert not [k for k in meta if k.startswith(("p50_ms/myClasses", "p95_ms/myClasses", "p99_ms/myClasses"))]
    assert meta["error_rate_pct/myClasses"].value == 100.0
    assert next(r.data for r in meta["operations"].records if r.data["operation"] == "myClasses")["p50_ms"] == ""
    assert all(math.isfinite(v.value) for v in plotted_metadata(k6_result()).values())


def test_the_load_mix_is_labelled_informational_and_listed_last():
    operations, metrics = judged()
    rows = verdict_rows(operations, metrics, DEFAULT_GATE)
    last = rows[-1]
    assert last["operation"] == ALL_LABEL and last["verdict"] == ALL_VERDICT and last.get("confidence", "") == ""
    assert "never gated" in last["why"]
    assert not any(r["operation"] == "__all__" for r in rows)


def test_the_verdict_table_reads_in_the_order_a_reader_needs_with_a_reason_per_operation():
    operations, metrics = judged()
    table = comparison_metadata({"build": BUILD, "verdict": "regressed (suspected)", "operations":
                                 operations.to_dict(orient="records"), "metrics": metrics,
                                 "needs_confirmation": ["userNode"], "builds_compared": 7, "normalized": True},
                                DEFAULT_GATE, {})["operations"]
    names = [c.name for c in table.schema.columns]
    assert names[:8] == ["operation", "verdict", "metric", "change_pct", "ci95_pct", "p_adjusted", "mdc_pct", "why"]
    assert names == [c for c in VERDICT_COLUMNS if c in names]
    first = table.records[0].data
    assert first["operation"] == "userNode" and first["verdict"] == "regressed"  # regressed operations first
    assert "slower" in first["why"] and first["change_pct"] > 20
    for record in table.records:
        assert record.data["why"], record.data
        for value in record.data.values():
            if isinstance(value, float):
                assert decimals(value) <= 4


@pytest.mark.parametrize(("metric", "expected"), [
    ({"metric": "p95", "change_pct": 38.9, "ci_low_pct": 12.0, "ci_high_pct": 71.0, "p_value": 0.004,
      "p_adjusted": 0.12}, "p_adjusted 0.12 ≥ 0.05 over all operations"),
    ({"metric": "p95", "change_pct": 2.1, "ci_low_pct": 1.0, "ci_high_pct": 3.2, "p_value": 0.001,
      "p_adjusted": 0.01}, "below tolerance 3 %"),
    ({"metric": "p95", "change_pct": 9.0, "ci_low_pct": 1.0, "ci_high_pct": 17.0, "p_value": 0.02,
      "p_adjusted": 0.5}, "p 0.02 ≥ 0.01 on this build alone"),
    ({"metric": "p95", "change_pct": 9.0, "ci_low_pct": -3.0, "ci_high_pct": 21.0, "p_value": 0.08,
      "p_adjusted": 1.0}, "within the noise (interval includes 0)"),
])
def test_an_unchanged_change_says_why(metric, expected):
    op = {"operation": "userNode", "verdict": "unchanged", "confidence": None, "mdc_pct": 8.0}
    assert why(op, metric, DEFAULT_GATE) == expected


def test_inconclusive_and_ab_reasons():
    blind = {"operation": "userNode", "verdict": "inconclusive", "mdc_pct": 36.4}
    assert why(blind, {"metric": "p95"}, DEFAULT_GATE) == "could only see > 36 %; a change of 10 % matters"
    cleared = {"operation": "userNode", "verdict": "unchanged", "confidence": "cleared by A/B", "ab_change_pct": 0.4,
               "ab_p_value": 0.41}
    assert why(cleared, None, DEFAULT_GATE) == "cleared by A/B re-runs: +0.4 %, p 0.41"


def test_the_final_verdict_page_starts_with_the_verdict_and_the_regressed_operations():
    operations, metrics = judged()
    final = final_verdict(BUILD, operations, gate=DEFAULT_GATE)
    meta = ab_metadata(final, operations, metrics, DEFAULT_GATE, {})
    assert list(meta)[:4] == ["verdict", "regressed_operations", "build", "image"]
    assert meta["verdict"] == "regressed (suspected)" and meta["regressed_operations"] == "userNode"
    assert meta["operations"].records[0].data["operation"] == "userNode"


def test_a_build_with_nothing_wrong_gets_a_sentence_not_a_bare_word():
    operations = pd.DataFrame([
        {"operation": op, "verdict": "unchanged", "confidence": None, "mdc_pct": mdc}
        for op, mdc in (("me", 6.2), ("userNode", 8.7))] + [
        {"operation": "__all__", "verdict": "improved", "confidence": "suspected", "mdc_pct": 4.0}])
    decision = decide(operations, DEFAULT_GATE)
    assert decision.summary == "unchanged: no operation slower beyond 3 %; each of 2 operations could see a 9 % change"
    assert decide(operations).summary.startswith("unchanged: no operation slower beyond the tolerance")
    check = no_regression_result(decision)
    assert check.passed and check.description == decision.summary


def test_the_telemetry_table_has_units_and_rounded_numbers():
    table = gap_table([{"operation": "userNode", "k6_count": 1320, "k6_p95_ms": 4.123456, "k6_errors": 0,
                        "server_count": None, "coverage": 0.0, "server_p95_ms": None, "latency_offset_ms": None,
                        "server_errors": None, "status": "missing server-side"}])
    [row] = [r.data for r in table.records]
    assert row == {"operation": "userNode", "status": "missing server-side", "coverage_pct": 0.0,
                   "latency_offset_ms": "", "k6_p95_ms": 4.12, "server_p95_ms": "", "k6_requests": 1320,
                   "server_requests": "", "k6_errors": 0, "server_errors": ""}


def test_a_builds_pages_link_the_trend_report_when_the_results_are_served(tmp_path):
    from ult_pipeline.assets.presentation import trend_report_link
    from ult_pipeline.resources.target import ResultsStoreResource

    served = ResultsStoreResource(base_dir=str(tmp_path), base_url="http://127.0.0.1:8123/results/")
    link = trend_report_link(served)
    assert link["trend_report"].url == "http://127.0.0.1:8123/results/trend/trend_report.html"
    assert trend_report_link(ResultsStoreResource(base_dir=str(tmp_path))) == {}
    operations, metrics = judged()
    meta = ab_metadata(final_verdict(BUILD, operations), operations, metrics, DEFAULT_GATE, {}, link)
    keys = list(meta)
    assert keys.index("trend_report") < keys.index("operations") and keys[0] == "verdict"
    assert list(result_metadata(k6_result(), BUILD, {}, link))[:3] == ["build", "image", "trend_report"]


def test_a_failed_k6_check_says_what_failed():
    from types import SimpleNamespace

    from ult_pipeline.assets.k6_results import checks

    k6 = SimpleNamespace(thresholds_crossed=True, exit_code=99,
                         thresholds=lambda: {"http_req_failed": {"rate<0.01": False}, "checks": {"rate>0.99": True}})
    result = SimpleNamespace(k6=k6, interrupted=True, interrupted_reason="k6 was stopped (SIGINT)", target_rate=22.0,
                             achieved_rate=18.5, ingested=SimpleNamespace(dropped_iterations=41))
    by_name = {c.check_name: c for c in checks(result)}
    assert by_name["thresholds_held"].description == "thresholds crossed: http_req_failed rate<0.01"
    assert by_name["no_dropped_iterations"].description.startswith("41 iterations dropped; 18.50 of 22 iterations/s")
    assert by_name["run_complete"].description == "interrupted: k6 was stopped (SIGINT)"
