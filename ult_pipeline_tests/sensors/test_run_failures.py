"""`skipped_checks_sensor`: a check a failed run never got to says "skipped: <why>", never "Execution failed".

Stand-in assets with the pipeline's names and checks run in a real (temporary) Dagster instance:
the sensor reads only the event log, so what the assets compute does not matter, only how the run ends.
"""

import dagster as dg
import pytest

from ult_pipeline.sensors.run_failures import (
    RECORDED_TAG,
    record_skipped_checks,
    run_problems,
    scrub,
    skipped_checks_sensor,
    why_run_stopped,
)

PARTITION = "v1.0.0-0123456789ab"
builds = dg.DynamicPartitionsDefinition(name="builds")
AB_CHECK = dg.AssetCheckKey(dg.AssetKey("ab_confirmation"), "no_regression")
K6_CHECKS = ("thresholds_held", "no_dropped_iterations", "run_complete")


class Plan(dg.Config):
    fail_step: str = ""  # the asset that raises
    dropped: int = 0  # > 0: k6_results' blocking check no_dropped_iterations fails
    message: str = "the target did not answer"


@dg.asset(partitions_def=builds)
def seeded_dataset(config: Plan):
    if config.fail_step == "seeded_dataset":
        raise RuntimeError(f"{config.message}\nsecond line, never shown")
    return {}


@dg.asset(partitions_def=builds, deps=[seeded_dataset],
          check_specs=[dg.AssetCheckSpec(name, asset="k6_results", blocking=True) for name in K6_CHECKS])
def k6_results(config: Plan):
    if config.fail_step == "k6_results":
        raise RuntimeError(config.message)
    yield dg.Output({})
    for name in K6_CHECKS:
        dropped = name == "no_dropped_iterations" and config.dropped > 0
        yield dg.AssetCheckResult(check_name=name, passed=not dropped,
                                  description=f"{config.dropped} iterations dropped" if dropped else None)


@dg.asset(partitions_def=builds, deps=[k6_results],
          check_specs=[dg.AssetCheckSpec("no_regression", asset="ab_confirmation")])
def ab_confirmation():
    yield dg.Output({})
    yield dg.AssetCheckResult(check_name="no_regression", passed=True)


JOB = dg.define_asset_job("load_test_job", selection=[seeded_dataset, k6_results, ab_confirmation])
DEFS = dg.Definitions(assets=[seeded_dataset, k6_results, ab_confirmation], jobs=[JOB],
                      sensors=[skipped_checks_sensor])


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("builds", [PARTITION])
        yield instance


def run(instance, partition: str = PARTITION, **plan) -> dg.DagsterRun:
    """A finished run of the stand-in job for `partition` (added to the instance's builds already)."""
    config = {"ops": {name: {"config": plan} for name in ("seeded_dataset", "k6_results")}}
    result = DEFS.resolve_job_def("load_test_job").execute_in_process(
        instance=instance, partition_key=partition, run_config=config, raise_on_error=False)
    return instance.get_run_by_id(result.run_id)


def latest(instance, key: dg.AssetCheckKey):
    """The check's newest execution record: what the UI shows as the check's status."""
    return instance.event_log_storage.get_latest_asset_check_execution_by_key([key])[key]


def test_a_run_failed_at_a_step_marks_every_later_check_skipped_with_the_steps_first_error_line(instance):
    failed = run(instance, fail_step="seeded_dataset")
    recorded = record_skipped_checks(instance, failed, env={})
    assert {(e.asset_key.to_user_string(), e.check_name) for e in recorded} == {
        ("ab_confirmation", "no_regression"), *(("k6_results", name) for name in K6_CHECKS)}
    for evaluation in recorded:
        assert evaluation.description == "skipped: seeded_dataset failed: RuntimeError: the target did not answer"
        assert evaluation.severity == dg.AssetCheckSeverity.WARN and not evaluation.passed
        assert evaluation.metadata["build"].value == PARTITION
    # The check's record in that run (the one the UI showed as "Execution failed") now says why.
    record = latest(instance, AB_CHECK)
    assert record.run_id == failed.run_id and record.status.value == "FAILED"
    assert record.evaluation.description.startswith("skipped: seeded_dataset failed")
    assert record.evaluation.severity == dg.AssetCheckSeverity.WARN


def test_a_run_stopped_by_a_blocking_check_names_the_check_and_leaves_its_evaluation_alone(instance):
    failed = run(instance, dropped=3)
    assert why_run_stopped(instance, failed) == "check k6_results.no_dropped_iterations failed: 3 iterations dropped"
    recorded = record_skipped_checks(instance, failed, env={})
    # k6_results' own checks were evaluated: only the later asset's check is marked skipped.
    assert [(e.asset_key.to_user_string(), e.check_name) for e in recorded] == [("ab_confirmation", "no_regression")]
    assert recorded[0].description == "skipped: check k6_results.no_dropped_iterations failed: 3 iterations dropped"
    own = latest(instance, dg.AssetCheckKey(dg.AssetKey("k6_results"), "no_dropped_iterations"))
    assert own.run_id == failed.run_id and own.evaluation.description == "3 iterations dropped"


def test_a_run_that_succeeded_records_nothing(instance):
    succeeded = run(instance)
    assert succeeded.status == dg.DagsterRunStatus.SUCCESS
    assert record_skipped_checks(instance, succeeded, env={}) == []
    assert latest(instance, AB_CHECK).run_id == succeeded.run_id and latest(instance, AB_CHECK).evaluation.passed


def test_a_failed_run_is_handled_once(instance):
    failed = run(instance, fail_step="k6_results")
    assert len(record_skipped_checks(instance, failed, env={})) == 4
    assert record_skipped_checks(instance, failed, env={}) == []  # again: nothing twice
    assert instance.get_run_by_id(failed.run_id).tags[RECORDED_TAG] == "4"


def test_the_sensor_handles_each_failed_run_once_from_its_cursor(instance):
    def tick(cursor):
        context = dg.build_sensor_context(instance=instance, cursor=cursor, definitions=DEFS)
        result = skipped_checks_sensor.evaluate_tick(context)
        return result.cursor

    cursor = tick(None)  # the first tick starts after what is already in the event log
    run(instance)  # a success: nothing to do
    first = run(instance, fail_step="k6_results")
    cursor = tick(cursor)
    record = latest(instance, AB_CHECK)
    assert record.evaluation.description == "skipped: k6_results failed: RuntimeError: the target did not answer"
    assert record.evaluation.metadata["run_id"].value == first.run_id
    tick(cursor)  # the same cursor again: the run is tagged as handled, nothing recorded twice
    evaluations = instance.all_logs(first.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
    assert len(evaluations) == 4
    # The same build failing again: its new run's check says so too.
    second = run(instance, dropped=1)
    tick(cursor)
    record = latest(instance, AB_CHECK)
    assert record.run_id == second.run_id and record.evaluation.description.startswith("skipped: check k6_results")


def test_secrets_in_an_error_never_reach_the_check(instance):
    env = {"ULT_TARGET_DSN": "postgresql://ult:dsn-canary-pw@db.internal:5432/users",
           "ULT_TARGET_API_KEY": "api-canary-key-77"}
    failed = run(instance, fail_step="seeded_dataset",
                 message="cannot connect to postgresql://ult:dsn-canary-pw@db.internal:5432/users "
                         "with key api-canary-key-77 password=other-secret")
    [description] = {e.description for e in record_skipped_checks(instance, failed, env=env)}
    assert "dsn-canary-pw" not in description and "api-canary-key-77" not in description
    assert "other-secret" not in description and description.startswith("skipped: seeded_dataset failed: ")


def test_scrub_hides_url_passwords_and_password_keywords_without_settings():
    text = scrub("psql postgresql://u:hunter22@h/db host=h password=s3cret dbname=d", env={})
    assert "hunter22" not in text and "s3cret" not in text and "host=h" in text


def test_run_problems_reads_the_failed_step_and_the_failed_checks_not_the_skipped_ones(instance):
    failed = run(instance, dropped=2)
    before = run_problems(instance, failed)
    # The step stopped by its blocking check is said by the check's own finding, not Dagster's
    # "blocking asset check failed".
    assert before == ["check k6_results.no_dropped_iterations: 2 iterations dropped"]
    assert record_skipped_checks(instance, failed, env={})
    # The checks marked skipped afterwards are consequences: the reasons stay the same.
    assert run_problems(instance, instance.get_run_by_id(failed.run_id)) == before
