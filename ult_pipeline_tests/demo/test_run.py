"""The demo's build lines say why a build failed and what the run could see, its closing line whether the
story was shown, its report server serves the results, and `ult demo --home` never deletes a folder it did
not make."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import dagster as dg
import pandas as pd
import pytest
import requests

from ult_pipeline.analysis.history import rows_from_operations
from ult_pipeline.assets.ab_confirmation import NO_REGRESSION, VERDICT_FILE
from ult_pipeline.assets.telemetry_gap import store_gaps
from ult_pipeline.assets.write_tests import NO_LOST_WRITES, WRITE_VERDICT_FILE, WRITES_FOLDER
from ult_pipeline.demo.run import (
    BUILDS,
    HOME_MARKER,
    LOSSY,
    DemoHomeError,
    DemoOptions,
    DemoPortError,
    ReportServer,
    _pipeline_env,
    baseline_p50,
    build_line,
    check_ports_free,
    demo_builds,
    failure_reason,
    prepare_home,
    smallest_change,
    story,
    writes_part,
)
from ult_pipeline.resources.target import CONTENTION_HISTORY_FOLDER, WRITES_HISTORY_FOLDER, ResultsStoreResource
from ult_pipeline.sandbox.service_process import ServiceKnobs
from ult_pipeline_tests.conftest import free_port


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


@dg.asset(check_specs=[dg.AssetCheckSpec("no_dropped_iterations", asset="k6_results", blocking=True)])
def k6_results():
    yield dg.Output(1)
    # As the pipeline's check: no description, the numbers in its metadata.
    yield dg.AssetCheckResult(check_name="no_dropped_iterations", passed=False,
                              metadata={"target_rate": 22, "achieved_rate": 19.25, "dropped_iterations": 41})


@dg.asset(deps=[k6_results])
def analysed():
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


def test_a_build_stopped_by_a_failed_blocking_check_says_which_check_and_its_numbers():
    with dg.instance_for_test() as instance:
        result = dg.materialize([k6_results, analysed], instance=instance, raise_on_error=False)
        run = instance.get_run_by_id(result.run_id)
        line = build_line(BUILDS[1], "v1.0.1-abc", run, instance, 30.0)
        reason = failure_reason(run, instance)
    assert " FAILURE " in line and "why: " in line, line
    # The check's name and its numbers, not Dagster's "1 blocking asset check failed with ERROR severity:".
    assert "why: check k6_results.no_dropped_iterations: achieved_rate 19.25, dropped_iterations 41, target_rate 22" \
        in line, line
    assert "ERROR severity" not in line and "\n" not in line
    assert reason and "no_dropped_iterations" in reason


def test_a_run_that_never_finished_or_was_canceled_still_has_a_reason():
    assert "did not finish in time (--run-timeout 600 s)" in failure_reason(None, None, 600)
    with dg.instance_for_test() as instance:
        result = dg.materialize([fine], instance=instance)
        run = instance.get_run_by_id(result.run_id)
        assert failure_reason(run, instance) is None
        canceled = run.with_status(dg.DagsterRunStatus.CANCELED)
        assert "canceled" in failure_reason(canceled, instance)
        # A failure with nothing in the event log (no failed step, check, or run failure message).
        failed = run.with_status(dg.DagsterRunStatus.FAILURE)
        assert "see dagster.log" in failure_reason(failed, instance)


def test_a_clean_build_line_has_no_problems():
    with dg.instance_for_test() as instance:
        result = dg.materialize([fine], instance=instance)
        line = build_line(BUILDS[0], "p", instance.get_run_by_id(result.run_id), instance, 1.0)
    assert " SUCCESS " in line and "failed" not in line and "check " not in line


def op(operation: str, verdict: str, mdc_pct: float | None, p50_change_pct: float | None = 0.0) -> dict:
    return {"operation": operation, "verdict": verdict, "mdc_pct": mdc_pct, "p50_change_pct": p50_change_pct}


def verdict(name: str, operations: list[dict], regressed: str = "none", confirmation: str = "not needed") -> dict:
    """A hand-made verdict.json (the fields the demo reads)."""
    return {"verdict": name, "regressed_operations": regressed, "confirmation": confirmation, "operations": operations}


def test_smallest_change_names_the_slowed_operation_and_the_spread():
    judged = verdict("unchanged", [op("me", "unchanged", 4.0), op("userNode", "unchanged", 6.4),
                                   op("myUser", "unchanged", 9.0)])
    assert smallest_change(judged) == "could see changes above 6 % on userNode (median 6 %, max 9 % over 3 operations)"
    assert smallest_change(verdict("insufficient history", [op("userNode", "insufficient history", None)])) is None
    assert smallest_change(verdict("unchanged", [op("me", "unchanged", 4.0)])).startswith("could see changes above 4 %")


REBUILT = verdict("unchanged", [op("me", "unchanged", 5.0), op("userNode", "unchanged", 6.0)])
SLOWED = verdict("regressed (suspected)", [op("me", "unchanged", 5.0), op("userNode", "regressed", 6.0, 48.6)],
                 regressed="userNode")


def test_the_story_is_shown_when_the_slowed_build_regressed_on_its_operation_and_the_rebuild_not():
    line = story({"v1.0.2": REBUILT, "v1.1.0": SLOWED}, {})
    assert line.startswith("story shown: v1.1.0 regressed (suspected) on userNode (p50 +49 %"), line
    assert "p50 +49 %" in line and "could see changes above 6 %" in line and "v1.0.2" in line and "(unchanged)" in line
    inconclusive_rebuild = verdict("inconclusive", [op("userNode", "inconclusive", 22.0)])
    assert story({"v1.0.2": inconclusive_rebuild, "v1.1.0": SLOWED}, {}).startswith("story shown:")


def test_noise_too_high_is_said_with_the_smallest_change_the_slowed_build_could_see():
    hidden = verdict("inconclusive", [op("userNode", "inconclusive", 36.4, 25.0)])
    line = story({"v1.0.2": REBUILT, "v1.1.0": hidden}, {})
    assert line == ("story not shown: noise too high on this machine: v1.1.0 could only see changes above 36 % on "
                    "userNode, the planted step is +30 % (a longer --duration lowers that)")


def test_a_failed_slowed_build_is_the_reason_the_story_was_not_shown():
    line = story({"v1.0.2": REBUILT}, {"v1.1.0": "check k6_results.no_dropped_iterations: dropped_iterations 41"})
    assert line == "story not shown: v1.1.0 failed: check k6_results.no_dropped_iterations: dropped_iterations 41"


def test_a_regressed_rebuild_or_a_missed_step_is_not_the_story():
    false_alarm = verdict("regressed (suspected)", [op("me", "regressed", 5.0)], regressed="me")
    line = story({"v1.0.2": false_alarm, "v1.1.0": SLOWED}, {})
    assert line.startswith("story not shown: v1.0.2, a rebuild of the same speed, came out regressed (suspected) [me]")
    missed = verdict("unchanged", [op("userNode", "unchanged", 6.0, 2.0)])
    assert story({"v1.0.2": REBUILT, "v1.1.0": missed}, {}) == (
        "story not shown: v1.1.0 came out unchanged on userNode though it could see changes above 6 %")
    cleared = verdict("unchanged", [op("userNode", "unchanged", 6.0, 30.0)],
                      confirmation="userNode: cleared by A/B on p50 (+1.0 %, p=0.4, 4 pairs vs v1.0.1)")
    assert "cleared by the A/B re-runs" in story({"v1.0.2": REBUILT, "v1.1.0": cleared}, {})
    assert story({}, {"v1.0.2": "its run did not finish in time"}) == (
        "story not shown: v1.1.0 has no verdict; v1.0.2 failed: its run did not finish in time")


def test_the_pipeline_links_to_the_demos_report_server(tmp_path):
    options = DemoOptions(home=tmp_path, service_port=1, aws_port=2, ui_port=3, duration="90s",
                          dataset_profile="tiny", keep_running=False, run_timeout_s=10, report_port=18999)
    status = type("Status", (), {"aws_endpoint": "http://x", "url": "http://y/user/", "api_key": "k", "dsn": "d"})()
    env = _pipeline_env(type("S", (), {"home": tmp_path, "port": 1, "aws_port": 2, "environment": "sandbox"})(),
                        status, options)
    assert env["ULT_RESULTS_URL"] == "http://127.0.0.1:18999" and env["ULT_RESULTS_DIR"] == str(tmp_path / "results")
    assert options.trend_report_url == "http://127.0.0.1:18999/trend/trend_report.html"
    assert ResultsStoreResource(base_dir=env["ULT_RESULTS_DIR"], base_url=env["ULT_RESULTS_URL"]).url_of(
        tmp_path / "results" / "trend" / "trend_report.html") == options.trend_report_url


def test_the_report_server_serves_the_results_folder_and_stops(tmp_path):
    (tmp_path / "results" / "trend").mkdir(parents=True)
    (tmp_path / "results" / "trend" / "trend_report.html").write_text("<html>trend</html>")
    server = ReportServer(tmp_path / "results", free_port(), tmp_path / "server.log")
    server.start()
    try:
        answer = requests.get(server.url + "/trend/trend_report.html", timeout=10)
        assert answer.status_code == 200 and "trend" in answer.text
    finally:
        server.stop()
    assert server.proc.poll() is not None
    with pytest.raises(requests.ConnectionError):
        requests.get(server.url + "/", timeout=5)


def test_a_taken_port_is_one_line_naming_its_option():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(DemoPortError) as error:
            check_ports_free({"--ui-port": free_port(), "--report-port": port})
    message = error.value.format_message()
    assert f"port {port} (--report-port) is taken" in message and "\n" not in message


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
        "changes above 42 %)", "confirmation": "switched off (userNode worth a re-run)",
        "operations": [op("__all__", "unchanged", 1.0), op("me", "inconclusive", 42.0),
                       op("myUser", "unchanged", 5.0), op("userNode", "regressed", 7.2, 31.0)]}))
    store_gaps(folder, "v1.0.2-abc", "userNode (missing server-side)", [])
    with dg.instance_for_test() as instance:
        result = dg.materialize([fine], instance=instance)
        line = build_line(BUILDS[0], "v1.0.2-abc", instance.get_run_by_id(result.run_id), instance, 1.0, tmp_path)
    assert "1234 requests, p95 4.6 ms, errors 0.12%" in line
    assert "verdict: regressed (suspected) [userNode]" in line and "inconclusive: me" in line
    # The smallest change it could see: its own operation's, then over operations (the `__all__` row left out).
    assert "could see changes above 7 % on userNode (median 7 %, max 42 % over 3 operations)" in line
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



def test_ult_demo_refuses_a_taken_port_in_one_line_before_anything_starts(tmp_path):
    home = tmp_path / "home"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "ult_pipeline.cli", "demo", "--home", str(home),
                                 "--report-port", str(port), "--ui-port", str(free_port())],
                                capture_output=True, text=True, timeout=120, env=dict(os.environ))
    assert result.returncode == 1
    err = result.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert f"port {port} (--report-port) is taken" in err
    assert not home.exists()  # nothing made, nothing started


# --- `ult demo --writes` -----------------------------------------------------------------------------

def test_with_writes_the_rebuild_v1_0_2_is_pushed_losing_roster_writes_and_the_rest_is_the_same(tmp_path):
    assert demo_builds(False) == BUILDS
    lossy = demo_builds(True)
    assert [b.tag for b in lossy] == [b.tag for b in BUILDS] and LOSSY == "v1.0.2"
    for build, plain in zip(lossy, BUILDS, strict=True):
        if build.tag == LOSSY:
            assert build.knobs == ServiceKnobs(roster_writes="unlocked") and "loses parallel roster writes" in build.what
        else:
            assert build == plain
    status = type("Status", (), {"aws_endpoint": "http://x", "url": "http://y/user/", "api_key": "k", "dsn": "d"})()
    settings = type("S", (), {"home": tmp_path, "port": 1, "aws_port": 2, "environment": "sandbox"})()
    options = DemoOptions(home=tmp_path, service_port=1, aws_port=2, ui_port=3, duration="30s",
                          dataset_profile="tiny", keep_running=False, run_timeout_s=10)
    # Off by default, whatever the user's shell says; on with --writes.
    assert _pipeline_env(settings, status, options)["ULT_WRITE_TESTS"] == "none"
    writes = DemoOptions(**{**options.__dict__, "writes": True})
    assert _pipeline_env(settings, status, writes)["ULT_WRITE_TESTS"] == "all"


def test_the_writes_part_says_the_write_verdict_the_rows_and_whether_writes_were_lost():
    judged = {"verdict": "unchanged", "regressed_operations": "none"}
    assert writes_part({}, None, None) is None  # no write test ran: nothing on the line
    assert writes_part(judged, {"rows_written": 1234.0}, {"acknowledged": 40, "lost": 0}) == (
        "writes: unchanged, 1234 rows written; no_lost_writes passed (40 acknowledged roster writes, none lost)")
    assert writes_part({"verdict": "regressed (suspected)", "regressed_operations": "renameClass"},
                       {"rows_written": 12}, {"acknowledged": 40, "lost": 17}, "class c1: 9 of 10, class c2: 8 of 10") \
        == ("writes: regressed (suspected) [renameClass], 12 rows written; no_lost_writes FAILED: 17 of 40 "
            "acknowledged roster writes lost (class c1: 9 of 10, class c2: 8 of 10)")
    # The roster-contention test did not get to run (e.g. the admin_writes run failed first).
    assert writes_part({}, {"rows_written": 5}, {}) == "writes: no write verdict, 5 rows written; no_lost_writes not run"


@dg.asset(check_specs=[dg.AssetCheckSpec(NO_LOST_WRITES, asset="roster_contention")])
def roster_contention():
    yield dg.Output(1)
    yield dg.AssetCheckResult(check_name=NO_LOST_WRITES, passed=False, severity=dg.AssetCheckSeverity.ERROR,
                              description="lost writes: 17 of 40 acknowledged (class 05a81013-9152-4351-b429-"
                              "5c123d5afdfd: 9 of 10, class c2: 8 of 10)")


def test_a_build_line_with_lost_writes_reads_the_stores_and_the_checks_classes_once(tmp_path):
    results = ResultsStoreResource(base_dir=str(tmp_path))
    build, pushed = "v1.0.2-abc", "2026-11-01T03:00:00Z"
    rows = pd.DataFrame([{"build": build, "pushed_at": pushed, "operation": "createClass", "metric": "p50",
                          "value": 3.0}])
    results.history_store(WRITES_HISTORY_FOLDER).record({"build": build, "pushed_at": pushed, "rows_written": 321},
                                                        rows)
    results.history_store(CONTENTION_HISTORY_FOLDER).record(
        {"build": build, "pushed_at": pushed, "acknowledged": 40, "lost": 17}, rows)
    (results.partition_dir(build) / WRITES_FOLDER).mkdir(parents=True)
    (results.partition_dir(build) / WRITES_FOLDER / WRITE_VERDICT_FILE).write_text(json.dumps(
        {"verdict": "insufficient history", "regressed_operations": "none"}))
    # The contention run's own file, as loadtest.contention writes it beside its samples.
    k6 = results.partition_dir(build) / WRITES_FOLDER / "roster_contention" / "k6"
    k6.mkdir(parents=True)
    (k6 / "contention.json").write_text(json.dumps({"classes": [
        {"class_id": "05a81013-9152-4351-b429-5c123d5afdfd", "acknowledged": 10, "present": 1, "lost": list("abcdefghi")},
        {"class_id": "c2", "acknowledged": 10, "present": 2, "lost": list("abcdefgh")},
        {"class_id": "c3", "acknowledged": 20, "present": 20, "lost": []}]}))
    with dg.instance_for_test() as instance:
        result = dg.materialize([roster_contention], instance=instance)
        line = build_line(demo_builds(True)[2], build, instance.get_run_by_id(result.run_id), instance, 1.0, tmp_path)
    assert " SUCCESS " in line  # a lost write fails a check, not the run
    assert ("writes: insufficient history, 321 rows written; no_lost_writes FAILED: 17 of 40 acknowledged roster "
            "writes lost (class 05a81013: 9 of 10, class c2: 8 of 10)") in line, line
    assert "check roster_contention" not in line and line.count("17 of 40") == 1, line
    assert line.endswith("(rebuild, same speed, loses parallel roster writes (roster writes unlocked, as 4.5.0))")


def test_a_build_line_without_write_results_has_no_writes_part(tmp_path):
    with dg.instance_for_test() as instance:
        result = dg.materialize([fine], instance=instance)
        line = build_line(BUILDS[0], "v1.0.0-abc", instance.get_run_by_id(result.run_id), instance, 1.0, tmp_path)
    assert "writes" not in line


LOCKED = {"acknowledged": 40, "lost": 0}


def test_with_writes_the_story_names_the_lossy_build():
    contention = {"v1.0.0": LOCKED, "v1.0.1": LOCKED, "v1.0.2": {"acknowledged": 40, "lost": 17}, "v1.1.0": LOCKED}
    line = story({"v1.0.2": REBUILT, "v1.1.0": SLOWED}, {}, contention=contention)
    assert line.startswith("story shown: v1.1.0 regressed (suspected) on userNode"), line
    assert line.endswith("; v1.0.2 (roster writes unlocked) lost 17 of 40 acknowledged roster writes "
                         "(no_lost_writes failed); the other 3 builds lost none"), line
    # Without --writes the line is as before.
    assert story({"v1.0.2": REBUILT, "v1.1.0": SLOWED}, {}) == story({"v1.0.2": REBUILT, "v1.1.0": SLOWED}, {},
                                                                       contention=None)
    assert "roster" not in story({"v1.0.2": REBUILT, "v1.1.0": SLOWED}, {})


def test_with_writes_noise_on_the_reads_still_says_the_lost_writes_were_shown():
    hidden = verdict("inconclusive", [op("userNode", "inconclusive", 36.4, 25.0)])
    line = story({"v1.0.2": REBUILT, "v1.1.0": hidden}, {}, contention={"v1.0.2": {"acknowledged": 40, "lost": 3},
                                                                       "v1.1.0": LOCKED})
    assert line.startswith("story not shown: noise too high on this machine"), line
    assert line.endswith("; the lost writes were shown: v1.0.2 (roster writes unlocked) lost 3 of 40 acknowledged "
                         "roster writes (no_lost_writes failed); the other build lost none"), line


def test_with_writes_a_race_that_did_not_happen_or_a_locked_build_losing_writes_is_not_the_story():
    reads = {"v1.0.2": REBUILT, "v1.1.0": SLOWED}
    assert story(reads, {}, contention={"v1.0.2": LOCKED, "v1.1.0": LOCKED}) == (
        "story not shown: v1.0.2 (roster writes unlocked) lost none of its 40 acknowledged roster writes: the race "
        "did not happen this time")
    line = story(reads, {}, contention={"v1.0.2": {"acknowledged": 40, "lost": 2}, "v1.1.0": {"acknowledged": 40,
                                                                                              "lost": 1}})
    assert line.startswith("story not shown: v1.1.0 lost 1 of 40 acknowledged roster writes with its roster writes "
                           "locked"), line
    assert story(reads, {}, contention={}) == "story not shown: v1.0.2 has no roster-contention result"
    # A failed v1.0.2 is said once.
    assert story({"v1.1.0": SLOWED}, {"v1.0.2": "its run did not finish in time"}, contention={}) == (
        "story not shown: v1.0.2 failed: its run did not finish in time")


def test_the_lossy_classes_come_from_the_contention_runs_own_file_with_short_ids(tmp_path):
    import json

    from ult_pipeline.demo.run import lost_writes_detail

    assert lost_writes_detail(tmp_path) is None  # the test did not run
    k6 = tmp_path / "writes" / "roster_contention" / "k6"
    k6.mkdir(parents=True)
    classes = [{"class_id": "05a81013-1111-2222-3333-444455556666", "acknowledged": 10, "present": 5,
                "lost": ["a", "b", "c", "d", "e"]},
               {"class_id": "99999999-1111-2222-3333-444455556666", "acknowledged": 10, "present": 10, "lost": []}]
    (k6 / "contention.json").write_text(json.dumps({"classes": classes}))
    assert lost_writes_detail(tmp_path) == "class 05a81013: 5 of 10"
