"""The write tests as per-build assets against the sandbox: the administrators' journey with its own
history and verdict, and the roster-contention run whose `no_lost_writes` check passes on a build
that keeps every write and fails, naming the class, on a build that loses them (the sandbox knob
that makes roster writes read-modify-write without a lock, as 4.5.0 does)."""

from __future__ import annotations

import dagster as dg
import pytest

from ult_pipeline.assets.ab_confirmation import ab_confirmation
from ult_pipeline.assets.k6_results import k6_results
from ult_pipeline.assets.regression_comparison import regression_comparison
from ult_pipeline.assets.seeded_dataset import seeded_dataset
from ult_pipeline.assets.target_deployment import target_deployment
from ult_pipeline.assets.telemetry_gap import telemetry_gap
from ult_pipeline.assets.trend_report import trend_report, writes_by_build
from ult_pipeline.assets.write_tests import (
    NO_LOST_WRITES,
    NO_WRITE_REGRESSION,
    WRITE_RUN_HEALTHY,
    roster_contention,
    write_results,
    write_verdict,
)
from ult_pipeline.aws.images import list_images
from ult_pipeline.resources.target import CONTENTION_HISTORY_FOLDER, WRITES_HISTORY_FOLDER, ResultsStoreResource
from ult_pipeline.sandbox import aws as sandbox_aws
from ult_pipeline.sandbox import manager
from ult_pipeline.sandbox.service_process import ServiceKnobs

ASSETS = [target_deployment, seeded_dataset, k6_results, telemetry_gap, regression_comparison, ab_confirmation,
          write_results, write_verdict, roster_contention]


def run_config(writes: bool, contention: bool | None = None) -> dict:
    contention = writes if contention is None else contention
    return {"ops": {
        "seeded_dataset": {"config": {"profile": "tiny"}},
        "k6_results": {"config": {"load_profile": "short", "rate": 5, "duration": "6s"}},
        "ab_confirmation": {"config": {"confirm": False}},
        "write_results": {"config": {"enabled": writes, "load_profile": "short", "rate": 2, "duration": "15s"}},
        "roster_contention": {"config": {"enabled": contention, "rate": 1, "duration": "8s", "writers": 12}},
    }}


def metadata(result, asset):
    [mat] = result.asset_materializations_for_node(asset)
    return {k: v.value for k, v in mat.metadata.items()}


@pytest.fixture(scope="module")
def writes(pipeline_resources, sandbox_settings, results_base):
    store = ResultsStoreResource(base_dir=str(results_base / "writes"))
    resources = {**pipeline_resources, "results_store": store}
    # (tag, knobs, admin_writes on, roster_contention on)
    builds = [("w1.0.0", ServiceKnobs(), True, True), ("w1.0.1", ServiceKnobs(roster_writes="unlocked"), True, True),
              ("w1.0.2", ServiceKnobs(), False, False), ("w1.0.3", ServiceKnobs(), False, True)]
    results = {}
    with dg.instance_for_test() as instance:
        ecr = pipeline_resources["aws"].client("ecr")
        for tag, knobs, writes, contention in builds:
            digest = sandbox_aws.push(sandbox_settings.aws_port, tag, knobs)["digest"]
            image = next(im for im in list_images(ecr, sandbox_aws.REPOSITORY) if im.digest == digest)
            instance.add_dynamic_partitions("builds", [image.partition_key])
            result = dg.materialize(ASSETS, partition_key=image.partition_key, instance=instance, resources=resources,
                                    run_config=run_config(writes, contention), raise_on_error=False,
                                    tags=image.to_run_tags())
            results[tag] = {"result": result, "partition": image.partition_key, "tags": image.to_run_tags()}
        # The contention test of the lossy build alone, after the last build left its own image deployed.
        lossy = results["w1.0.1"]
        results["rerun"] = {"result": dg.materialize(
            ASSETS, selection=[roster_contention], partition_key=lossy["partition"], instance=instance,
            resources=resources, run_config={"ops": {"roster_contention": run_config(True)["ops"]["roster_contention"]}},
            raise_on_error=False, tags=lossy["tags"])}
        report = dg.materialize([trend_report], instance=instance, resources=resources)
        yield results, store, report
    manager.restart_service(sandbox_settings, ServiceKnobs())


def checks_of(result) -> dict:
    return {c.check_name: c for c in result.get_asset_check_evaluations()}


@pytest.mark.slow
def test_the_write_journey_runs_every_write_operation_without_errors_and_enters_its_own_history(writes):
    results, store, _ = writes
    first = results["w1.0.0"]
    assert not [e.step_key for e in first["result"].get_step_failure_events()]
    page = metadata(first["result"], "write_results")
    operations = {row.data["operation"] for row in page["operations"].records}
    assert {"createClasses", "addStudentsToClasses", "addTeachersToClasses", "updateClasses", "moveStudentsToClass",
            "updateUsers", "removeStudentsFromClasses", "deleteClasses"} <= operations
    assert page["error_rate_pct"] == 0
    assert page["rows_written"] > 0
    assert checks_of(first["result"])[WRITE_RUN_HEALTHY].passed
    # Its own history: the write runs, never in the read test's.
    written = {s["build"] for s in store.history_store(WRITES_HISTORY_FOLDER).summaries()}
    read = {s["build"] for s in store.history_store().summaries()}
    assert {results["w1.0.0"]["partition"], results["w1.0.1"]["partition"]} <= written
    assert written <= read  # every write-tested build was read-tested too, but the histories are apart
    assert not any(row.startswith("create") for row in set(store.history_store().load()[0]["operation"]))


@pytest.mark.slow
def test_the_write_verdict_is_judged_on_the_write_history(writes):
    results, _, _ = writes
    verdict = metadata(results["w1.0.1"]["result"], "write_verdict")
    assert verdict["verdict"]  # insufficient history on two builds: judged, never a crash
    assert NO_WRITE_REGRESSION in checks_of(results["w1.0.1"]["result"])


@pytest.mark.slow
def test_no_lost_writes_passes_when_writes_are_kept_and_fails_naming_the_class_when_lost(writes):
    results, _, _ = writes
    kept = checks_of(results["w1.0.0"]["result"])[NO_LOST_WRITES]
    assert kept.passed, kept.description
    lost = checks_of(results["w1.0.1"]["result"])[NO_LOST_WRITES]
    assert not lost.passed
    assert "lost" in lost.description and "class " in lost.description
    assert lost.metadata["lost"].value > 0
    assert lost.metadata["classes_with_lost_writes"].value


@pytest.mark.slow
def test_the_contention_test_runs_without_the_write_journey(writes):
    results, _, _ = writes
    alone = results["w1.0.3"]["result"]
    assert alone.success
    assert not alone.asset_materializations_for_node("write_results")
    assert alone.asset_materializations_for_node("roster_contention")
    assert checks_of(alone)[NO_LOST_WRITES].passed


@pytest.mark.slow
def test_a_contention_test_run_alone_deploys_its_build_first(writes):
    results, _, _ = writes
    rerun = results["rerun"]["result"]
    assert not [e.step_key for e in rerun.get_step_failure_events()]
    # w1.0.3 (locked) was deployed last: a re-run on it would pass; the lossy build's own image loses writes.
    assert not checks_of(rerun)[NO_LOST_WRITES].passed


@pytest.mark.slow
def test_write_tests_switched_off_are_skipped_not_failed(writes):
    results, _, _ = writes
    off = results["w1.0.2"]["result"]
    assert off.success
    assert not off.asset_materializations_for_node("write_results")
    assert not off.asset_materializations_for_node("roster_contention")
    assert NO_LOST_WRITES not in checks_of(off)


@pytest.mark.slow
def test_the_trend_report_shows_the_write_tests_and_their_lost_writes(writes):
    results, store, report = writes
    table = writes_by_build(store).set_index("build")
    lossy = results["w1.0.1"]["partition"]
    assert table.loc[lossy, "lost"] > 0
    assert table.loc[results["w1.0.0"]["partition"], "lost"] == 0
    assert table.loc[results["w1.0.0"]["partition"], "rows_written"] > 0
    html = (store.partition_dir("trend") / "trend_report.html").read_text()
    assert 'id="writes-table"' in html and "FAILED" in html


# --- without a sandbox ------------------------------------------------------------------------------
def test_a_history_is_one_of_the_known_ones(tmp_path):
    store = ResultsStoreResource(base_dir=str(tmp_path))
    assert store.history_store(WRITES_HISTORY_FOLDER).folder.name == WRITES_HISTORY_FOLDER
    with pytest.raises(ValueError, match="unknown history"):
        store.history_store("history-typo")


def _record(store, folder, build, pushed_at, summary, rows):
    import pandas as pd

    frame = pd.DataFrame([{"build": build, "pushed_at": pushed_at, "operation": op, "metric": m, "value": v}
                          for op, m, v in rows], columns=["build", "pushed_at", "operation", "metric", "value"])
    store.history_store(folder).record({"build": build, "pushed_at": pushed_at, **summary}, frame)


def test_the_trend_report_reads_the_write_tests_from_their_histories_and_files(tmp_path):
    from ult_pipeline.analysis.report import write_report
    from ult_pipeline.assets.ab_confirmation import store_verdict
    from ult_pipeline.assets.write_tests import WRITE_VERDICT_FILE, WRITES_FOLDER

    store = ResultsStoreResource(base_dir=str(tmp_path))
    _record(store, WRITES_HISTORY_FOLDER, "b1", "2026-11-01T00:00:00Z",
            {"requests": 90, "p95_ms": 12.5, "error_rate": 0.0, "rows_written": 321},
            [("createClasses", "p95", 10.0)])
    _record(store, CONTENTION_HISTORY_FOLDER, "b1", "2026-11-01T00:00:00Z", {"acknowledged": 40, "lost": 0},
            [("addStudentsToClasses", "lost", 0.0)])
    _record(store, CONTENTION_HISTORY_FOLDER, "b2", "2026-11-02T00:00:00Z", {"acknowledged": 38, "lost": 7},
            [("addStudentsToClasses", "lost", 7.0)])
    store_verdict(store.partition_dir("b1") / WRITES_FOLDER, {"verdict": "insufficient history",
                                                              "summary": "2 builds"}, WRITE_VERDICT_FILE)
    table = writes_by_build(store).set_index("build")
    assert table.loc["b1", "rows_written"] == 321 and table.loc["b1", "write_verdict"] == "insufficient history"
    assert table.loc["b2", "lost"] == 7 and table.loc["b1", "lost"] == 0
    import pandas as pd

    out = write_report(tmp_path / "trend", pd.DataFrame(columns=["build", "pushed_at", "operation", "metric", "value"]),
                       None, pd.DataFrame(), writes=table.reset_index())
    html = out["html"].read_text()
    assert 'id="writes-table"' in html and "321" in html and "FAILED" in html and "passed" in html


def test_a_report_without_write_tests_says_how_to_run_them(tmp_path):
    import pandas as pd

    from ult_pipeline.analysis.report import write_report

    out = write_report(tmp_path, pd.DataFrame(columns=["build", "pushed_at", "operation", "metric", "value"]), None,
                       pd.DataFrame())
    assert "no write test has run yet (ULT_WRITE_TESTS)" in out["html"].read_text()


def _contention(acknowledged: dict[str, int], lost: dict[str, int], refused: int = 0):
    from ult_pipeline.loadtest import contention

    classes = tuple(contention.ClassContention(class_id=c, acknowledged=n, present=n - lost.get(c, 0),
                                               lost=tuple(f"s{i}" for i in range(lost.get(c, 0))))
                    for c, n in acknowledged.items())
    return contention.ContentionResult(classes=classes, write_errors={
        contention.OPERATION: {"ERROR_SAVING": refused}} if refused else {})


def test_no_lost_writes_names_each_lossy_class_with_its_counts():
    from ult_pipeline.assets.write_tests import lost_writes_result

    check = lost_writes_result(_contention({"c1": 10, "c2": 10}, {"c2": 3}, refused=2))
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert "3 of 20 acknowledged" in check.description and "class c2: 3 of 10" in check.description
    assert "c1" not in check.description
    assert check.metadata["classes_with_lost_writes"].value == {"c2": {"acknowledged": 10, "present": 7, "lost": 3}}


def test_no_lost_writes_passes_only_when_writes_were_acknowledged_and_kept():
    from ult_pipeline.assets.write_tests import lost_writes_result

    assert lost_writes_result(_contention({"c1": 10}, {})).passed
    blind = lost_writes_result(_contention({"c1": 0}, {}, refused=10))
    assert not blind.passed and blind.severity == dg.AssetCheckSeverity.WARN
    assert "nothing to check" in blind.description and "10 refused" in blind.description
