"""The demo's build lines say why a build failed, and `ult demo --home` never deletes a folder it did not make."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import dagster as dg
import pandas as pd
import pytest

from ult_pipeline.analysis.history import rows_from_operations
from ult_pipeline.assets.ab_confirmation import NO_REGRESSION, VERDICT_FILE
from ult_pipeline.assets.telemetry_gap import store_gaps
from ult_pipeline.demo.run import BUILDS, HOME_MARKER, DemoHomeError, baseline_p50, build_line, prepare_home
from ult_pipeline.resources.target import ResultsStoreResource


@dg.asset(check_specs=[dg.AssetCheckSpec("newrelic_delivered", asset="exported"),
                       dg.AssetCheckSpec(NO_REGRESSION, asset="exported")])
def exported():
    yield dg.Output(1)
    yield dg.AssetCheckResult(check_name="newrelic_delivered", passed=False,
                              description="not delivered to New Relic: HTTP 503\nsecond line")
    yield dg.AssetCheckResult(check_name=NO_REGRESSION, passed=False, description="regressed: userNode")


@dg.asset(deps=[exported])
def loaded():
    raise RuntimeError("k6 exited 107: the target refused every request\nTraceback-ish detail")


@dg.asset
def fine():
    return 1


def test_a_failed_build_line_names_the_failed_step_its_error_and_failed_checks():
    with dg.instance_for_test() as instance:
        result = dg.materialize([exported, loaded], instance=instance, raise_on_error=False)
        run = instance.get_run_by_id(result.run_id)
        line = build_line(BUILDS[0], "v1.0.0-abc", run, instance, 12.0)
    assert " FAILURE " in line
    assert "loaded failed: RuntimeError: k6 exited 107: the target refused every request" in line
    assert "Traceback-ish" not in line and "\n" not in line
    assert "check exported.newrelic_delivered: not delivered to New Relic: HTTP 503" in line
    # The verdict is on the line already: its check is not repeated.
    assert NO_REGRESSION not in line


def test_a_clean_build_line_has_no_problems():
    with dg.instance_for_test() as instance:
        result = dg.materialize([fine], instance=instance)
        line = build_line(BUILDS[0], "p", instance.get_run_by_id(result.run_id), instance, 1.0)
    assert " SUCCESS " in line and "failed" not in line and "check " not in line


def record(results, build: str, p50: float, hour: int) -> None:
    ops = [{"operation": "userNode", "p50": p50, "p95": 2 * p50, "p99": 3 * p50, "error_rate": 0.0, "rate": 5.0}]
    pushed = f"2026-11-01T{hour:02d}:00:00Z"
    results.history_store().record(
        {"build": build, "pushed_at": pushed, "requests": 1234, "p95_ms": 4.56, "error_rate": 0.0012,
         "students": 40}, pd.DataFrame(rows_from_operations(build, pushed, ops)))


def test_the_build_line_and_the_baseline_come_from_the_pipelines_files(tmp_path):
    results = ResultsStoreResource(base_dir=str(tmp_path))
    for hour, (build, p50) in enumerate((("v1.0.0-abc", 2.0), ("v1.0.1-abc", 4.0), ("v1.0.2-abc", 9.0))):
        record(results, build, p50, hour)
    assert baseline_p50(tmp_path, ["v1.0.0-abc", "v1.0.1-abc"], "userNode") == 3.0
    assert baseline_p50(tmp_path / "empty", ["v1.0.0-abc"], "userNode") is None
    folder = results.partition_dir("v1.0.2-abc")
    (folder / VERDICT_FILE).write_text(json.dumps({
        "verdict": "regressed (suspected)", "regressed_operations": "userNode", "inconclusive": "me (could only see "
        "changes above 42 %)", "confirmation": "switched off (userNode worth a re-run)", "operations": []}))
    store_gaps(folder, "v1.0.2-abc", "userNode (missing server-side)", [])
    with dg.instance_for_test() as instance:
        result = dg.materialize([fine], instance=instance)
        line = build_line(BUILDS[0], "v1.0.2-abc", instance.get_run_by_id(result.run_id), instance, 1.0, tmp_path)
    assert "1234 requests, p95 4.6 ms, errors 0.12%" in line
    assert "verdict: regressed (suspected) [userNode]" in line and "inconclusive: me (could only see" in line
    assert "A/B: switched off (userNode worth a re-run)" in line
    assert "telemetry gaps: userNode (missing server-side)" in line


def test_a_home_the_demo_made_is_stopped_then_deleted(tmp_path):
    home = tmp_path / "demo"
    prepare_home(home, lambda: pytest.fail("nothing to stop in a new home"))
    assert (home / HOME_MARKER).is_file()
    (home / "dagster.log").write_text("old run")
    stopped = []
    prepare_home(home, lambda: stopped.append(True))
    assert stopped == [True] and sorted(p.name for p in home.iterdir()) == [HOME_MARKER]


def test_an_empty_folder_is_adopted(tmp_path):
    prepare_home(tmp_path, lambda: pytest.fail("an empty folder has nothing to stop"))
    assert (tmp_path / HOME_MARKER).is_file()


def test_a_folder_the_demo_did_not_make_is_refused_and_left_alone(tmp_path):
    precious = tmp_path / "thesis.tex"
    precious.write_text("years of work")
    with pytest.raises(DemoHomeError, match=str(tmp_path)):
        prepare_home(tmp_path, lambda: pytest.fail("must not stop anything"))
    assert precious.read_text() == "years of work" and not (tmp_path / HOME_MARKER).exists()
    with pytest.raises(DemoHomeError, match="not a folder"):
        prepare_home(precious, lambda: None)


def test_ult_demo_refuses_a_foreign_home_in_one_line(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    result = subprocess.run([sys.executable, "-m", "ult_pipeline.cli", "demo", "--home", str(tmp_path)],
                            capture_output=True, text=True, timeout=120, env=dict(os.environ))
    assert result.returncode == 1
    err = result.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert str(tmp_path) in err and "empty folder" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]

