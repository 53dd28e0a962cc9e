"""The code location loads, as `dg check defs` and the Dagster UI load it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import dagster as dg

ROOT = Path(__file__).resolve().parents[1]


def test_definitions_hold_the_pipeline_assets_and_their_checks():
    from ult_pipeline.definitions import defs

    graph = defs().resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {"target_deployment", "seeded_dataset", "k6_results"} <= keys
    assert graph.get(dg.AssetKey("k6_results")).parent_keys == {dg.AssetKey("seeded_dataset")}
    assert graph.get(dg.AssetKey("seeded_dataset")).parent_keys == {dg.AssetKey("target_deployment")}
    check_names = {k.name for k in graph.asset_check_keys}
    assert {"seeded_counts_match", "thresholds_held", "no_dropped_iterations", "run_complete"} <= check_names


def test_dg_check_defs_passes():
    dg_cli = Path(sys.executable).parent / "dg"
    result = subprocess.run([str(dg_cli), "check", "defs"], cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All definitions loaded successfully" in result.stdout + result.stderr


def test_nothing_heavy_runs_beside_a_load_test():
    # One pool (limit 1, run granularity): a deploy, a wipe, a load test, an A/B confirmation or the
    # CPU-heavy trend report never run at the same time as another of them.
    from ult_pipeline.definitions import defs

    pooled = {"target_deployment", "seeded_dataset", "k6_results", "telemetry_gap", "regression_comparison",
              "ab_confirmation", "trend_report"}
    pools = {key.to_user_string(): asset.op.pool for asset in defs().assets for key in asset.keys}
    assert {name: pools.get(name) for name in pooled} == dict.fromkeys(pooled, "load_test_target")


def test_each_run_executes_its_steps_in_one_process():
    # A process per step cost 8 to 17 s per step on two busy cores (bench/build_loop.py); the steps run
    # one after another anyway. Cancellation still stops k6 (the bench's stop test checks it).
    from ult_pipeline.definitions import defs

    for name in ("load_test_job", "trend_report_job"):
        assert defs().resolve_job_def(name).executor_def.name == dg.in_process_executor.name, name


def test_a_bad_sensor_setting_leaves_the_code_location_up(monkeypatch):
    # One typo in production must not remove every asset and job from the UI: the sensor skips with the reason.
    import ult_pipeline.definitions as definitions_module

    for name, value in (("ULT_BUILD_TAG_PATTERN", "v[0-9"), ("ULT_SENSOR_BUDGET_S", "0"), ("ULT_SENSOR_INTERVAL_S", "0")):
        monkeypatch.setenv(name, value)
    defs = definitions_module.defs()
    assert defs.get_job_def("load_test_job") is not None
    assert {s.name for s in defs.sensors} >= {"ecr_image_sensor"}
