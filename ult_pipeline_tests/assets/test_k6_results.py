"""`k6_results` against the sandbox: a real k6, its checks, thresholds and cancellation."""

from __future__ import annotations

import os
import signal
import threading
import time

import dagster as dg
import psutil
import pytest

from ult_pipeline.assets.k6_results import NO_DROPPED_ITERATIONS, RUN_COMPLETE, THRESHOLDS_HELD, k6_results
from ult_pipeline.assets.seeded_dataset import seeded_dataset
from ult_pipeline.sandbox import manager
from ult_pipeline.sandbox.service_process import ServiceKnobs

SHORT = {"load_profile": "short", "duration": "8s"}


def run_config(k6: dict) -> dict:
    return {"ops": {"seeded_dataset": {"config": {"profile": "tiny"}}, "k6_results": {"config": k6}}}


def k6_processes() -> list[psutil.Process]:
    # Ours only: k6 runs in a session of its own but stays a child of this process.
    return [p for p in psutil.Process().children(recursive=True) if p.name() == "k6" and p.status() != psutil.STATUS_ZOMBIE]


@pytest.fixture(scope="module")
def instance():
    with dg.instance_for_test() as inst:
        inst.add_dynamic_partitions("builds", ["b1", "b2", "b3"])
        yield inst


def test_a_short_run_materializes_with_exact_per_operation_results(instance, pipeline_resources):
    result = dg.materialize(
        [seeded_dataset, k6_results], partition_key="b1", instance=instance, resources=pipeline_resources,
        run_config=run_config(SHORT),
    )
    assert result.success
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks[THRESHOLDS_HELD] and checks[NO_DROPPED_ITERATIONS] and checks[RUN_COMPLETE]
    [mat] = result.asset_materializations_for_node("k6_results")
    meta = {k: v.value for k, v in mat.metadata.items()}
    operations = {r.data["operation"] for r in mat.metadata["operations"].records}
    assert {"me", "myUser", "memberships", "orgMemberships", "myUsers", "userNode", "myClasses", "permissions"} <= operations
    assert meta["interrupted"] is False and meta["error_rate_pct"] == 0
    assert meta["fingerprint"]["k6_version"].startswith("k6 v1.1.0")
    assert meta["fingerprint"]["dataset_hash"] == meta["dataset_hash"]
    assert meta["requests"] == 8 * meta["iterations"]
    # Recorded in the history store, where the analysis reads it: rows, totals, data volume, fingerprint.
    store = pipeline_resources["results_store"].history_store()
    stored = store.summary("b1")
    assert stored["requests"] == meta["requests"] and stored["students"] > 0 and stored["interrupted"] is False
    assert stored["scripts_hash"] == meta["scripts_hash"] and stored["load_profile"] == meta["fingerprint"]["load_profile"]
    history, _ = store.load()
    assert {"me", "userNode"} <= set(history.loc[history["build"] == "b1", "operation"])


def test_crossed_thresholds_are_a_result_with_a_failing_check(instance, pipeline_resources, sandbox_settings):
    manager.restart_service(sandbox_settings, ServiceKnobs(latency_ms={"myUser": 1200}))
    try:
        result = dg.materialize(
            [seeded_dataset, k6_results], partition_key="b2", instance=instance, resources=pipeline_resources,
            run_config=run_config(SHORT), raise_on_error=False,
        )
    finally:
        manager.restart_service(sandbox_settings, ServiceKnobs())
    [mat] = result.asset_materializations_for_node("k6_results")
    assert mat.metadata["thresholds_crossed"].value is True
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert not checks[THRESHOLDS_HELD].passed
    assert "http_req_duration{operation:myUser}" in checks[THRESHOLDS_HELD].metadata["crossed"].value
    my_user = next(r.data for r in mat.metadata["operations"].records if r.data["operation"] == "myUser")
    assert my_user["p50_ms"] > 1200


def test_cancelling_keeps_partial_results_and_leaves_no_k6(instance, pipeline_resources):
    # What a cancel does to a run: the run is marked CANCELING, then its worker is
    # interrupted (SIGINT). Do the same to this in-process run once k6 is running.
    def cancel_when_k6_runs():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not k6_processes():
            time.sleep(0.2)
        time.sleep(3)
        [run] = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
        instance.report_run_canceling(run)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=cancel_when_k6_runs, daemon=True).start()
    result = dg.materialize(
        [seeded_dataset, k6_results], partition_key="b3", instance=instance, resources=pipeline_resources,
        run_config=run_config({"load_profile": "short", "rate": 5, "duration": "60s"}), raise_on_error=False,
    )
    assert not result.success
    assert instance.get_run_by_id(result.run_id).status == dg.DagsterRunStatus.CANCELED
    assert not k6_processes()
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("k6_results"), asset_partitions=["b3"]), limit=1
    ).records
    assert records, "the partial results were not recorded"
    meta = records[0].asset_materialization.metadata
    assert meta["interrupted"].value is True and meta["requests"].value > 0
    # Partial results stay in the results folder, out of the history.
    assert pipeline_resources["results_store"].history_store().summary("b3") is None
