"""The trend report shows the signal: a marker per build, verdicts and change points marked, failed builds
with their reason, latency panels a noisy build cannot flatten, rate axes from zero; readable offline."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ult_pipeline.analysis.report import (
    FAILED,
    INTERRUPTED,
    MIN_ERROR_SPAN_PCT,
    NO_VERDICT,
    STATUS_COLUMNS,
    error_range,
    fmt,
    host_factors,
    latency_frame,
    latency_panel,
    latency_range,
    noisy_builds,
    rate_range,
    verdict_mark,
    write_report,
)
from ult_pipeline.assets.trend_report import build_status
from ult_pipeline_tests.analysis.history_fixtures import OPS, history, k6_result
from ult_pipeline_tests.browser import CHROMIUM, launch

STEP_OP, STEP_FROM, NOISY, FAILED_AT, BUILDS = "userNode", 10, 5, 13, 16


def story() -> tuple[pd.DataFrame, list[str]]:
    """16 builds: build 5 is 10x slower on every operation (a busy host), userNode is 30 % slower from build 10."""
    frame = history(BUILDS, slow_op=STEP_OP, slow_from=STEP_FROM, factor=1.3, noisy=NOISY, seed=1)
    return frame, list(dict.fromkeys(frame["build"]))


def story_verdicts(order: list[str]) -> pd.DataFrame:
    """As ab_confirmation stores them: userNode suspected on the step's build, confirmed on the next, the
    change point at the step named by the later builds; myUsers inconclusive once."""
    rows = []
    for i, build in enumerate(order[2:], 2):
        if i == FAILED_AT:
            continue  # a failed build is never judged
        for op in OPS:
            row = {"build": build, "operation": op, "verdict": "unchanged", "confidence": None, "p95_ms": 10.0,
                   "p95_change_pct": 1.0, "p95_ci_low_pct": -2.0, "p95_ci_high_pct": 4.0, "mdc_pct": 5.0,
                   "p_adjusted": 0.7, "change_points": order[STEP_FROM] if op == STEP_OP and i > STEP_FROM else ""}
            if op == STEP_OP and i == STEP_FROM:
                row.update(verdict="regressed", confidence="suspected", p95_change_pct=29.0, p95_ci_low_pct=21.0,
                           p95_ci_high_pct=37.0, p_adjusted=0.02)
            if op == STEP_OP and i == STEP_FROM + 1:
                row.update(verdict="regressed", confidence="confirmed by A/B", p95_change_pct=31.0,
                           p95_ci_low_pct=24.0, p95_ci_high_pct=38.0, p_adjusted=0.001)
            if op == "myUsers" and i == 8:
                row.update(verdict="inconclusive", mdc_pct=14.0)
            rows.append(row)
    return pd.DataFrame(rows)


def story_statuses(frame: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    """Build 13 crossed a k6 threshold (in the history, no verdict); one more build was interrupted (not in it)."""
    pushed = frame.groupby("build")["pushed_at"].min()
    rows = []
    for i, build in enumerate(order):
        result = k6_result(crossed={"http_req_failed": ["rate<0.01"]}) if i == FAILED_AT else k6_result()
        verdict = {"verdict": "regressed (confirmed)" if i == STEP_FROM + 1 else "unchanged", "summary": "as judged"} \
            if i >= 2 else None
        status, reason = build_status({"build": build}, result, verdict)
        rows.append({"build": build, "pushed_at": pushed[build], "status": status, "reason": reason})
    interrupted = "v016-000000000010"
    status, reason = build_status(None, k6_result(interrupted=True, seconds=42.0), None)
    rows.append({"build": interrupted, "pushed_at": pushed.max() + pd.Timedelta(minutes=10), "status": status,
                 "reason": reason})
    return pd.DataFrame(rows, columns=STATUS_COLUMNS)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    frame, order = story()
    builds = frame[["build", "pushed_at"]].drop_duplicates().assign(students=2000, requests=105_600, error_rate=0.0002,
                                                                p95_ms=12.0)
    out = tmp_path_factory.mktemp("trend")
    result = write_report(out, frame, story_verdicts(order), builds, statuses=story_statuses(frame, order))
    return {**result, "order": order}


# --- build statuses (pure) -----------------------------------------------------------------------
def test_a_crossed_threshold_fails_the_build_and_names_the_threshold():
    status, reason = build_status({"build": "b"}, k6_result(crossed={"http_req_failed": ["rate<0.01"]}), None)
    assert status == FAILED
    assert "http_req_failed rate<0.01" in reason


def test_dropped_iterations_or_a_rate_below_target_fail_the_build():
    status, reason = build_status({"build": "b"}, k6_result(dropped=120), None)
    assert (status, "120 iterations dropped" in reason) == (FAILED, True)
    # 1.4 % below the target: beyond k6_results' 1 % tolerance.
    status, reason = build_status({"build": "b"}, k6_result(target_rate=22.0, achieved_rate=21.7), None)
    assert status == FAILED and "21.7 of 22 iterations/s" in reason and "1.4 % below" in reason
    # 0.5 % below: within it.
    assert build_status({"build": "b"}, k6_result(achieved_rate=21.9), None)[0] == NO_VERDICT


def test_an_interrupted_run_says_how_long_it_ran_and_wins_over_a_stale_verdict():
    status, reason = build_status(None, {**k6_result(interrupted=True, seconds=42.0, exit_code=105),
                                         "interrupted_reason": "k6 was stopped (SIGTERM)"},
                                  {"verdict": "unchanged", "summary": "unchanged"})
    assert status == INTERRUPTED
    assert "42 s" in reason and "SIGTERM" in reason and "105" in reason
    assert build_status({"build": "b", "interrupted": True}, None, None)[0] == INTERRUPTED


def test_a_failure_wins_over_a_verdict_left_from_an_earlier_run():
    stale = {"verdict": "unchanged", "summary": "unchanged"}
    assert build_status({"build": "b"}, k6_result(dropped=3), stale)[0] == FAILED


def test_a_judged_build_shows_its_verdict_and_summary_and_an_unjudged_one_no_verdict_yet():
    judged = {"verdict": "regressed (suspected)", "summary": "suspected regression of userNode"}
    assert build_status({"build": "b"}, k6_result(), judged) == ("regressed (suspected)",
                                                                 "suspected regression of userNode")
    assert build_status({"build": "b"}, k6_result(), None) == (NO_VERDICT, "")
    assert build_status(None, None, None)[0] == NO_VERDICT


def test_verdict_marks_tell_confirmed_from_suspected():
    assert verdict_mark("regressed", "confirmed") == "regressed (confirmed)"
    assert verdict_mark("regressed", "confirmed by A/B") == "regressed (confirmed)"
    assert verdict_mark("regressed", "suspected") == "regressed (suspected)"
    assert verdict_mark("inconclusive", None) == "inconclusive"
    assert verdict_mark("unchanged", None) is None


# --- scales (pure) -------------------------------------------------------------------------------
def test_the_noisy_build_is_flagged_by_its_host_factor_and_the_step_is_not():
    frame, order = story()
    factors = host_factors(frame)
    assert factors[order[NOISY]] == pytest.approx(10.0, rel=0.1)
    # One operation 30 % slower leaves the other seven where they were: not a busy host.
    assert factors[order[STEP_FROM]] == pytest.approx(1.0, abs=0.05)
    assert noisy_builds(factors) == [order[NOISY]]


def test_a_noisy_build_does_not_set_the_scale_and_the_step_shows():
    frame, order = story()
    position = {b: i for i, b in enumerate(order)}
    latency = latency_frame(frame)
    panel = latency_panel(latency, STEP_OP, position, noisy_builds(host_factors(frame)))
    low, high = panel.y_range
    p95 = panel.frame[panel.frame["metric"] == "p95"].set_index("build")
    # Without the rule the 10x build (+900 %) would set the axis and the step would be a flat line.
    assert latency_range(p95["change_pct"])[1] > 800
    assert high < 60 and low > -30, panel.y_range
    assert panel.noisy == (order[NOISY],)
    assert bool(p95.loc[order[NOISY], "offscale"]) and p95.loc[order[NOISY], "change_pct"] > 800
    before = p95.loc[[b for b in order[:STEP_FROM] if b != order[NOISY]], "change_pct"]
    after = p95.loc[order[STEP_FROM:], "change_pct"]
    assert np.median(before) == pytest.approx(0, abs=5) and np.median(after) == pytest.approx(30, abs=6)
    # The step takes most of the axis: seen at a glance.
    assert (np.median(after) - np.median(before)) / (high - low) > 0.5
    assert not p95.drop(index=order[NOISY])["offscale"].any()


def test_a_quiet_panel_keeps_a_minimum_span():
    low, high = latency_range(pd.Series([-0.5, 0.2, 0.4]))
    assert low <= -10 and high >= 10


def test_the_error_axis_never_goes_below_zero_and_a_wobble_looks_tiny():
    assert error_range(pd.Series([0.0, 0.0])) == (0.0, MIN_ERROR_SPAN_PCT)
    low, high = error_range(pd.Series([0.02, 0.04, 0.0]))
    assert low == 0.0 and high >= 1.0
    assert error_range(pd.Series([0.5, 5.0])) == (0.0, pytest.approx(5.75))


def test_throughput_and_counts_start_at_zero():
    low, high = rate_range(pd.Series([176.09, 176.12, 176.1]))
    assert low == 0 and high == pytest.approx(176.12 * 1.1)
    assert rate_range(pd.Series([], dtype=float)) == (0.0, 1.0)


def test_table_numbers_are_rounded_without_exponents():
    assert fmt(0.0009549274255156608 * 100) == "0.0955"
    assert fmt(176.1234) == "176"
    assert fmt(12.3456) == "12.3"
    assert fmt(105600) == "105,600"
    assert fmt(3.14159, 1) == "3.1"
    assert fmt(float("nan")) == "" and fmt(None) == ""


# --- the page ------------------------------------------------------------------------------------
def test_the_page_is_offline_with_units_and_failed_builds_named(report):
    page = report["html"].read_text()
    # plotly.js inline, nothing fetched (the browser test also watches the requests).
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=", page)
    assert page.count("<script>") >= 1 and "Plotly.newPlot" in page
    assert "<img" not in page and "png" not in report  # no static images: interactive charts only
    for header in ("p95, all ops (ms)", "error rate (%)", "students (count)", "p95 change (%)",
                   "95 % interval low (%)", "smallest detectable change (%)"):
        assert header in page
    assert report["failed"] == 2 and report["noisy"] == [report["order"][NOISY]]
    assert "thresholds crossed: http_req_failed rate&lt;0.01" in page
    assert "run interrupted after 42 s of load" in page
    assert report["candidate"] == report["order"][-1]


def test_change_points_are_drawn_from_what_the_pipeline_stored(tmp_path):
    from ult_pipeline.analysis.gate import judge
    from ult_pipeline.analysis.history import build_order
    from ult_pipeline.assets.ab_confirmation import final_verdict, store_verdict
    from ult_pipeline.assets.trend_report import verdicts_by_build
    from ult_pipeline.resources.target import ResultsStoreResource

    frame = history(16, cv=0.02, slow_op="userNode", slow_from=10, factor=1.4, seed=3)
    store = ResultsStoreResource(base_dir=str(tmp_path / "results"))
    order = build_order(frame)
    for build in order[2:]:  # as ab_confirmation stores each build's final verdict
        store_verdict(store.partition_dir(build), final_verdict(build, judge(frame, build).operations))
    verdicts = verdicts_by_build(store, order)
    report = write_report(tmp_path / "trend", frame, verdicts, frame[["build"]].drop_duplicates())
    assert order[10] in report["change_points"].get("userNode", []), report["change_points"]
    assert order[10] in report["html"].read_text()
    # The judged verdicts are on the page: the newest judged build is compared with its baseline.
    assert report["candidate"] == order[-1]


# --- in a real browser ---------------------------------------------------------------------------
_PLOTS = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(d => ({
    id: d.id,
    yrange: d.layout.yaxis.range,
    shapes: (d.layout.shapes || []).map(s => ({type: s.type, name: s.name || '', x0: s.x0})),
    traces: d.data.map(t => ({name: t.name, x: Array.from(t.x || []), y: Array.from(t.y || []),
                              builds: Array.from(t.customdata || []).map(c => c[0])})),
    points: d.querySelectorAll('.scatterlayer .point').length,
    annotations: (d.layout.annotations || []).map(a => a.text),
    // axis labels outside the plot's box are cut off for the reader
    clipped: Array.from(d.querySelectorAll('.xtick text, .ytick text, .g-xtitle text, .g-ytitle text')).filter(t => {
        const box = t.getBoundingClientRect(), outer = d.getBoundingClientRect();
        return box.width > 0 && (box.left < outer.left - 1 || box.right > outer.right + 1 || box.top < outer.top - 1
                                 || box.bottom > outer.bottom + 1);
    }).map(t => t.textContent),
}))"""


def _save_screenshots(page, report: Path) -> list[Path]:
    paths = [report.with_name("trend_report.png")]
    page.screenshot(path=str(paths[0]), full_page=True)
    page.locator("#latency-userNode").screenshot(path=str(report.with_name("trend_report_userNode.png")))
    paths.append(report.with_name("trend_report_userNode.png"))
    artifacts = os.environ.get("ULT_TEST_ARTIFACTS")
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        for path in paths:
            shutil.copy2(path, Path(artifacts) / path.name)
    return paths


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (.ci/run installs it)")
def test_renders_in_a_real_browser_with_charts_and_no_console_errors(report):
    """The reader sees every build, the regression, the step and the noisy build flagged; no console errors."""
    from playwright.sync_api import sync_playwright

    order = report["order"]
    everyone = [*order, "v016-000000000010"]
    errors: list[str] = []
    requests: list[str] = []
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: requests.append(r.url))
        page.goto(report["html"].as_uri())
        page.wait_for_function("document.querySelectorAll('.js-plotly-plot .main-svg').length >= 10")
        plots = {plot["id"]: plot for plot in page.evaluate(_PLOTS)}
        rows = page.locator("#builds-table tbody tr").count()
        shots = _save_screenshots(page, report["html"])
        browser.close()
    assert not errors, errors
    assert [u for u in requests if not u.startswith(("file:", "data:", "blob:"))] == []
    assert all(s.stat().st_size > 10_000 for s in shots)
    # One marker per build on the status strip, the interrupted build (absent from the history) included.
    status = plots["status"]
    assert sorted(b for t in status["traces"] for b in t["builds"]) == sorted(everyone)
    assert status["points"] == len(everyone)
    assert rows == len(everyone)
    # The stepped operation: a marker per measured build (the noisy one at the axis' edge), the regressed
    # builds marked confirmed and suspected, the change point drawn, the noisy build not setting the scale.
    panel = plots["latency-userNode"]
    traces = {t["name"]: t for t in panel["traces"]}
    p95 = traces["p95"]
    plotted = {b for b, y in zip(p95["builds"], p95["y"], strict=True) if y is not None}
    offscale = set(traces["off the scale (hover: value)"]["builds"])
    assert plotted | offscale == set(order) and order[NOISY] in offscale and order[NOISY] not in plotted
    assert traces["regressed (suspected)"]["builds"] == [order[STEP_FROM]]
    assert traces["regressed (confirmed)"]["builds"] == [order[STEP_FROM + 1]]
    assert [s["x0"] for s in panel["shapes"] if s["name"].startswith("change point")] == [STEP_FROM]
    low, high = panel["yrange"]
    assert 25 < high < 60 and low > -30
    assert traces["failed / interrupted build"]["builds"] == [order[FAILED_AT], "v016-000000000010"]
    # The other operations' panels are not flattened either.
    assert all(plots[f"latency-{op}"]["yrange"][1] < 30 for op in OPS if op != STEP_OP)
    # Error rates never below zero; throughput from zero.
    assert plots["errors"]["yrange"][0] == 0 and plots["errors"]["yrange"][1] >= 1
    assert plots["throughput"]["yrange"][0] == 0
    assert "inconclusive" in {t["name"] for t in plots["latency-myUsers"]["traces"]}
    assert "compare" in plots
    # The noisy build's value is written beside its off-scale marker; no axis label is cut off.
    assert any("noisy build" in text for text in panel["annotations"]), panel["annotations"]
    assert {name: plot["clipped"] for name, plot in plots.items() if plot["clipped"]} == {}
