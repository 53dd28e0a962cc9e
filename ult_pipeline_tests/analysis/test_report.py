"""The trend report renders offline: charts visible, builds listed, no console errors."""

from __future__ import annotations

import pandas as pd
import pytest

from ult_pipeline.analysis.report import write_report
from ult_pipeline_tests.analysis.history_fixtures import history
from ult_pipeline_tests.browser import CHROMIUM, launch


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    frame = history(15, slow_op="userNode", slow_from=12)
    frame["pushed_at"] = pd.to_datetime(frame["pushed_at"], utc=True)
    builds = frame[["build", "pushed_at"]].drop_duplicates().assign(students=2000)
    verdicts = pd.DataFrame([{"build": builds["build"].iloc[-1], "operation": "userNode", "verdict": "regressed",
                              "confidence": "confirmed", "change_points": builds["build"].iloc[12]}])
    return write_report(tmp_path_factory.mktemp("trend"), frame, verdicts, builds)


def test_writes_html_and_png(report):
    html = report["html"].read_text()
    assert html.count("data:image/png;base64,") == 2
    assert "v014-" in html and "regressed" in html
    assert report["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (.ci/run installs it)")
def test_renders_in_a_real_browser_with_charts_and_no_console_errors(report):
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(report["html"].as_uri())
        widths = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)")
        rows = page.locator("table").first.locator("tbody tr").count()
        browser.close()
    assert len(widths) == 2 and all(w > 300 for w in widths)
    assert rows == 15
    assert not errors, errors


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
