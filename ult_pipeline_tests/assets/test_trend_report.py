"""The `trend_report` asset reads files only (history store, verdict.json, k6/result.json) and links the report."""

from __future__ import annotations

import json

import dagster as dg
import pandas as pd
import pytest

from ult_pipeline.analysis.gate import judge
from ult_pipeline.analysis.history import build_order
from ult_pipeline.assets.ab_confirmation import final_verdict, store_verdict
from ult_pipeline.assets.trend_report import RESULT_FILE, statuses_by_build, trend_report, write_trend_report
from ult_pipeline.resources.target import ResultsStoreResource
from ult_pipeline_tests.analysis.history_fixtures import history, k6_result

FAILED_AT = 6
INTERRUPTED = "v009-000000000009"


@pytest.fixture
def store(tmp_path) -> ResultsStoreResource:
    """Nine recorded builds (userNode 30 % slower from the seventh; the sixth crossed a k6 threshold, so it
    has no verdict), and a tenth build whose run was interrupted (never recorded in the history)."""
    store = ResultsStoreResource(base_dir=str(tmp_path / "results"))
    frame = history(9, slow_op="userNode", slow_from=7, seed=2)
    order = build_order(frame)
    history_store = store.history_store()
    for i, build in enumerate(order):
        rows = frame[frame["build"] == build]
        history_store.record({"build": build, "pushed_at": rows["pushed_at"].iloc[0], "requests": 105_600,
                              "p95_ms": 12.0, "error_rate": 0.0, "students": 2000}, rows)
        folder = store.partition_dir(build)
        result = k6_result(crossed={"http_req_failed": ["rate<0.01"]}) if i == FAILED_AT else k6_result()
        (folder / RESULT_FILE).parent.mkdir(parents=True, exist_ok=True)
        (folder / RESULT_FILE).write_text(json.dumps(result))
        if i >= 2 and i != FAILED_AT:
            judged = frame[frame["build"] != order[FAILED_AT]]
            store_verdict(folder, final_verdict(build, judge(judged, build).operations))
    folder = store.partition_dir(INTERRUPTED)
    (folder / RESULT_FILE).parent.mkdir(parents=True)
    (folder / RESULT_FILE).write_text(json.dumps(k6_result(interrupted=True, seconds=42.0)))
    return store


def test_every_build_gets_a_status_from_its_files(store):
    statuses = statuses_by_build(store).set_index("build")
    order = build_order(store.history_store().load()[0])
    assert list(statuses.index[:9]) == order and len(statuses) == 10
    assert statuses.loc[order[FAILED_AT], "status"] == "failed"
    assert "http_req_failed rate<0.01" in statuses.loc[order[FAILED_AT], "reason"]
    assert statuses.loc[INTERRUPTED, "status"] == "interrupted"
    assert "42 s" in statuses.loc[INTERRUPTED, "reason"]
    assert statuses.loc[order[0], "status"] == "no verdict yet"
    assert statuses.loc[order[-1], "status"].startswith("regressed")


def test_the_report_shows_failed_and_interrupted_builds(store):
    report = write_trend_report(store)
    page = report["html"].read_text()
    assert report["builds"] == 10 and report["failed"] == 2
    assert report["latest"] == (INTERRUPTED, "interrupted")
    assert "thresholds crossed: http_req_failed rate&lt;0.01" in page and "run interrupted after 42 s" in page
    # The latest judged build is compared with its baseline: the interrupted one has no verdict.
    assert report["candidate"] == build_order(store.history_store().load()[0])[-1]


def test_the_asset_links_the_report_first_and_names_the_latest_verdict(store):
    served = ResultsStoreResource(base_dir=store.base_dir, base_url="http://127.0.0.1:18390")
    result = dg.materialize([trend_report], resources={"results_store": served})
    [mat] = result.asset_materializations_for_node("trend_report")
    keys = list(mat.metadata)
    assert keys[:2] == ["report", "html"]
    assert mat.metadata["report"].value == "http://127.0.0.1:18390/trend/trend_report.html"
    assert mat.metadata["builds"].value == 10 and mat.metadata["failed_builds"].value == 2
    assert mat.metadata["latest_verdict"].value == "interrupted"
    assert not any(isinstance(v, dg.MarkdownMetadataValue) for v in mat.metadata.values())


def test_without_a_served_store_the_path_comes_first(store):
    result = dg.materialize([trend_report], resources={"results_store": store})
    [mat] = result.asset_materializations_for_node("trend_report")
    assert list(mat.metadata)[0] == "html"
    assert pd.notna(mat.metadata["seconds"].value)


def test_an_empty_store_gives_a_page_saying_so(tmp_path):
    report = write_trend_report(ResultsStoreResource(base_dir=str(tmp_path / "results")))
    assert report["builds"] == 0 and report["latest"] is None
    assert "no builds yet" in report["html"].read_text()
