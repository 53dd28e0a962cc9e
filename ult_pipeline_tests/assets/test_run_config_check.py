"""Every setting of a run is checked before anything is deployed or wiped (pure, no Dagster run)."""

from __future__ import annotations

import dagster as dg
import pytest

from ult_pipeline.assets.run_config_check import run_config_problems
from ult_pipeline.settings import PipelineSettings


def ops(**configs) -> dict:
    return {"ops": {asset: {"config": config} for asset, config in configs.items()}}


def test_the_sensors_default_settings_have_no_problem():
    assert run_config_problems(PipelineSettings().run_config()) == []
    assert run_config_problems(None) == []
    # A forced confirmation (every worse operation re-run A/B) is a setting people use.
    assert run_config_problems(ops(regression_comparison={"trigger_alpha": 1.0, "suspect_alpha": 1.0})) == []


@pytest.mark.parametrize("run_config, problem", [
    (ops(k6_results={"rate": 2.5}), "k6_results: rate must be a whole number"),
    (ops(k6_results={"rate": float("nan")}), "k6_results: rate must be a whole number"),
    (ops(k6_results={"duration": "0s"}), "k6_results: duration '0s' is zero"),
    (ops(k6_results={"load_profile": "heavy"}), "k6_results: unknown load profile 'heavy'"),
    (ops(k6_results={"scenario": "admins"}), "k6_results: scenario 'admins' is not one of"),
    (ops(seeded_dataset={"profile": "huge"}), "seeded_dataset: unknown dataset profile 'huge'"),
    (ops(seeded_dataset={"profile": "mine", "custom_profiles": {"mine": {"organizations": 1}}}), "seeded_dataset:"),
    (ops(regression_comparison={"baseline": "release:["}), "regression_comparison: baseline"),
    (ops(regression_comparison={"suspect_alpha": 1.5}), "regression_comparison: suspect_alpha must be above 0"),
    (ops(regression_comparison={"tolerance_pct": 20.0}), "regression_comparison: tolerance_pct (20.0) must not be above"),
    (ops(ab_confirmation={"duration": "soon"}), "ab_confirmation: duration 'soon'"),
    (ops(ab_confirmation={"pairs": 0}), "ab_confirmation: pairs"),
    (ops(telemetry_gap={"min_coverage": 0.0}), "telemetry_gap: coverage bounds"),
    (ops(write_results={"enabled": True, "rate": 2.5}), "write_results: rate must be a whole number"),
    (ops(write_results={"duration": "soon"}), "write_results: duration 'soon'"),
    (ops(roster_contention={"writers": 51}), "roster_contention: writers"),
    (ops(roster_contention={"rate": 0}), "roster_contention: rate must be a whole number"),
    (ops(write_verdict={"tolerance_pct": 20.0}), "write_verdict: tolerance_pct (20.0) must not be above"),
])
def test_each_bad_setting_is_named(run_config, problem):
    problems = run_config_problems(run_config)
    assert len(problems) == 1 and problems[0].startswith(problem), problems


def test_the_first_assets_refuse_a_run_with_a_bad_setting_before_deploying(pipeline_resources):
    from ult_pipeline.assets.k6_results import k6_results
    from ult_pipeline.assets.seeded_dataset import seeded_dataset
    from ult_pipeline.assets.target_deployment import target_deployment
    from ult_pipeline.partitions import builds_partitions

    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(builds_partitions.name, ["v9.9.9-000000000000"])
        result = dg.materialize(
            [target_deployment, seeded_dataset, k6_results], resources=pipeline_resources, instance=instance,
            partition_key="v9.9.9-000000000000", run_config=ops(k6_results={"rate": 2.5}), raise_on_error=False,
        )
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failure.step_key == "target_deployment"
    assert "nothing was deployed or wiped" in failure.step_failure_data.error.message
    assert "k6_results: rate must be a whole number" in failure.step_failure_data.error.message
    assert not result.get_asset_materialization_events()


TINY_WITHOUT_ADMINS = {"profile": "mine", "custom_profiles": {"mine": {
    "organizations": 1, "schools_per_organization": 1, "classes_per_school": 1, "teachers_per_organization": 2,
    "students_per_organization": 8, "org_admins_per_organization": 0, "school_admins_per_school": 0}}}


@pytest.mark.parametrize("run_config, problems", [
    (ops(seeded_dataset=TINY_WITHOUT_ADMINS, write_results={"enabled": True}),
     ["write_results: the write tests need organization administrators", "write_results: admin_writes needs a school"]),
    (ops(seeded_dataset=TINY_WITHOUT_ADMINS, roster_contention={"enabled": True}),
     ["roster_contention: the write tests need organization administrators",
      "roster_contention: 10 writers need as many students per organization; dataset profile 'mine' has 8"]),
    (ops(seeded_dataset={"profile": "few", "custom_profiles": {"few": {
        "organizations": 1, "schools_per_organization": 1, "classes_per_school": 1, "teachers_per_organization": 1,
        "students_per_organization": 20}}}, roster_contention={"enabled": True, "writers": 50}),
     ["roster_contention: 50 writers need as many students per organization; dataset profile 'few' has 20"]),
])
def test_a_write_test_its_dataset_cannot_serve_is_refused_before_the_wipe(run_config, problems):
    found = run_config_problems(run_config)
    assert len(found) == len(problems) and all(f.startswith(p) for f, p in zip(found, problems, strict=True)), found


def test_write_tests_switched_off_ask_nothing_of_the_dataset():
    assert run_config_problems(ops(seeded_dataset=TINY_WITHOUT_ADMINS)) == []
    assert run_config_problems(ops(seeded_dataset={"profile": "tiny"}, write_results={"enabled": True},
                                   roster_contention={"enabled": True})) == []
