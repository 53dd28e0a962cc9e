"""The write tests of a build: what administrators' mutations cost, and whether the service loses writes.

- `write_results`: the `admin_writes` journey (k6/scenarios/admin_writes.js) at a constant arrival
  rate, recorded in a history of its own (`WRITES_HISTORY_FOLDER`) with the rows it created or
  changed, so its numbers are compared only with other builds' write runs.
- `write_verdict`: the gate (`analysis.gate`, the read test's rule and defaults) on that history;
  its `no_write_regression` check is ERROR on a regression the gate confirms, WARN on a suspected
  one. There are no A/B re-runs of the write test.
- `roster_contention`: several writers add distinct students to one class at the same moment; the
  rosters the API reports afterwards are compared with what was acknowledged
  (`loadtest.contention`). Its `no_lost_writes` check fails when an acknowledged write is missing,
  naming the classes and counts. Recorded in `CONTENTION_HISTORY_FOLDER` for the trend report.

Each test starts from a freshly wiped and seeded database (`seeded_dataset.wipe_and_seed`, the same
profile and seed as the build's read test), so writes never leak into the seeded baseline, and they
run after `ab_confirmation`, whose last run leaves the candidate deployed. A test that is switched
off (`enabled: false`, the default; `ULT_WRITE_TESTS` for the sensor's runs) materializes nothing:
Dagster shows the step as skipped, and the steps after it too.
"""

from pathlib import Path

import dagster as dg
import pandas as pd
from pydantic import Field

from ult_pipeline.analysis.gate import decide
from ult_pipeline.assets.ab_confirmation import final_verdict, no_regression_result, store_verdict
from ult_pipeline.assets.k6_results import checks as k6_checks
from ult_pipeline.assets.k6_results import pushed_at_of, record_build, result_metadata
from ult_pipeline.assets.presentation import build_entries, trend_report_link
from ult_pipeline.assets.regression_comparison import RegressionConfig, compare_build, comparison_metadata
from ult_pipeline.assets.seeded_dataset import wipe_and_seed
from ult_pipeline.assets.target_deployment import image_of_run
from ult_pipeline.build import Build
from ult_pipeline.loadtest import contention
from ult_pipeline.loadtest.profiles import (
    CONTENTION_WRITERS_RANGE,
    DEFAULT_ADMIN_WRITES_RATE,
    DEFAULT_CONTENTION_WRITERS,
    WRITE_SCENARIOS,
    get_load_profile,
)
from ult_pipeline.loadtest.run import run_load_test
from ult_pipeline.partitions import builds_partitions
from ult_pipeline.resources.aws import AwsResource
from ult_pipeline.resources.deployer import TargetDeployerResource
from ult_pipeline.resources.k6 import K6RunnerResource
from ult_pipeline.resources.target import (
    CONTENTION_HISTORY_FOLDER,
    WRITES_HISTORY_FOLDER,
    ResultsStoreResource,
    TargetApiResource,
    TargetDatabaseResource,
    TokenSignerResource,
)
from ult_pipeline.seeding.profiles import DatasetProfile
from ult_pipeline.settings import PipelineSettings

ADMIN_WRITES, ROSTER_CONTENTION = WRITE_SCENARIOS
NO_WRITE_REGRESSION, NO_LOST_WRITES, WRITE_RUN_HEALTHY = "no_write_regression", "no_lost_writes", "write_run_healthy"
# Under the build's folder: each write test's files (identities, k6 output, verdict).
WRITES_FOLDER = "writes"
WRITE_VERDICT_FILE = "write_verdict.json"


class WriteTestConfig(dg.Config):
    """One write test's switch and load. Rate and duration default to the load profile's duration and
    a write rate small enough for one administrator per iteration."""

    enabled: bool = Field(default=False, description="run this write test (ULT_WRITE_TESTS for the sensor's runs)")
    load_profile: str = Field(default="default", description="the read test's load profiles: default or short")
    rate: float = Field(default=float(DEFAULT_ADMIN_WRITES_RATE), description="iterations per second (whole numbers)")
    duration: str | None = Field(default=None, description="k6 duration, e.g. 60s; default: the load profile's")


class RosterContentionConfig(dg.Config):
    enabled: bool = Field(default=False, description="run the roster-contention test (ULT_WRITE_TESTS)")
    rate: float = Field(default=1.0, description="rounds per second: each round is one class and its writers")
    duration: str = Field(default="30s", description="k6 duration of the contention run")
    writers: int = Field(default=DEFAULT_CONTENTION_WRITERS, ge=CONTENTION_WRITERS_RANGE[0], le=CONTENTION_WRITERS_RANGE[1],
                         description="parallel one-student adds to the round's class")


def _fresh_data(context: dg.AssetExecutionContext, test: str, seeded_dataset: dict, results_store, *, target_api,
                target_db, token_signer, target_deployer, aws) -> tuple[Path, dict]:
    """On the build's image (`_on_the_build`), the build's dataset seeded again after a wipe (the same
    profile and seed as `seeded_dataset`) for write test `test`: (its folder under the build's, the new
    manifest with its identities file there)."""
    _on_the_build(context, target_deployer, aws)
    folder = results_store.partition_dir(context.partition_key) / WRITES_FOLDER / test
    folder.mkdir(parents=True, exist_ok=True)
    profile = DatasetProfile(**seeded_dataset["profile_definition"])
    prepared, _ = wipe_and_seed(profile, int(seeded_dataset["seed"]), folder / "identities.json",
                                target_api=target_api, target_db=target_db, token_signer=token_signer,
                                target_deployer=target_deployer, log=context.log.info)
    if not prepared.counts_match:
        raise dg.Failure(f"the fresh seeding for the write test does not match its profile: expected "
                         f"{prepared.expected_counts}, read back {prepared.actual_counts}")
    if prepared.dataset_hash != seeded_dataset["dataset_hash"]:
        raise dg.Failure("the fresh seeding's dataset differs from the read test's "
                         f"({prepared.dataset_hash} vs {seeded_dataset['dataset_hash']})")
    return folder, prepared.manifest()


def _on_the_build(context: dg.AssetExecutionContext, target_deployer: TargetDeployerResource,
                  aws: AwsResource) -> None:
    """Makes sure the target runs this build. A run that deployed it (`target_deployment` in its
    selection) has it: `ab_confirmation`'s A/B runs end on the candidate. A run of the write tests alone
    (a re-run, a backfill) rolls the target to the build's image first, or it would test whatever image
    the last run left there."""
    selection = context.run.asset_selection
    if selection is None or dg.AssetKey("target_deployment") in selection:
        return
    image = image_of_run(context, aws, PipelineSettings.from_env().ecr_repository)
    context.log.info(f"this run did not deploy the build: deploying {image.tag} ({image.digest}) first")
    target_deployer.deploy(image)


# A switched-off test yields nothing: its output and its checks are optional (a subsettable multi-asset's
# are), so Dagster shows the step as skipped, not failed. A separate @asset_check would load a
# partitioned asset's value without its partition, so the checks are evaluated in the asset's step.
@dg.multi_asset(
    outs={"write_results": dg.AssetOut(
        is_required=False, group_name="load_test",
        description="The administrators' write journey (admin_writes) on freshly seeded data, per operation, with "
        "the rows it wrote; recorded in the write test's own history. Skipped unless enabled.")},
    partitions_def=builds_partitions,
    pool="load_test_target",
    ins={"seeded_dataset": dg.AssetIn()},
    deps=["ab_confirmation"],
    can_subset=True,
    check_specs=[dg.AssetCheckSpec(
        WRITE_RUN_HEALTHY, asset="write_results", blocking=True,
        description="the write run held k6's thresholds (p99 < 1 s, failures and GraphQL errors < 1 % per "
        "operation), dropped no iteration and was not interrupted; a failed run is not judged")],
)
def write_results(
    context: dg.AssetExecutionContext,
    config: WriteTestConfig,
    seeded_dataset: dict,
    target_api: TargetApiResource,
    target_db: TargetDatabaseResource,
    token_signer: TokenSignerResource,
    target_deployer: TargetDeployerResource,
    aws: AwsResource,
    k6_runner: K6RunnerResource,
    results_store: ResultsStoreResource,
):
    if not config.enabled:
        context.log.info("write test switched off (write_results.enabled, ULT_WRITE_TESTS): not run")
        return
    profile = get_load_profile(config.load_profile).with_overrides(
        scenario=ADMIN_WRITES, rate=config.rate, duration=config.duration)
    folder, manifest = _fresh_data(context, ADMIN_WRITES, seeded_dataset, results_store, target_api=target_api,
                                   target_db=target_db, token_signer=token_signer, target_deployer=target_deployer,
                                   aws=aws)
    result = run_load_test(
        runner=k6_runner.runner(), target_url=target_api.url, identities_path=Path(manifest["identities_path"]),
        profile=profile, out_dir=folder / "k6", dataset_hash=manifest["dataset_hash"], image=Build.image_tag_of_run(context.run.tags, context.partition_key),
        tags={"build": context.partition_key, "test": ADMIN_WRITES}, log=context.log.info,
    )
    written = result.rows_written  # operation -> rows its successful requests created or changed
    if not result.interrupted:
        store = results_store.history_store(WRITES_HISTORY_FOLDER)
        record_build(store, context.partition_key, pushed_at_of(context, store), result, manifest,
                     extra={"rows_written": sum(written.values()), "rows_written_by_operation": written})
    metadata = result_metadata(result, context.partition_key, context.run.tags, trend_report_link(results_store))
    metadata["rows_written"] = sum(written.values())
    if written:
        metadata["rows_written_by_operation"] = dg.MetadataValue.json(written)
    yield dg.Output({**result.to_json(), "rows_written": written}, output_name="write_results", metadata=metadata)
    failed = [c for c in k6_checks(result) if not c.passed]
    yield dg.AssetCheckResult(
        check_name=WRITE_RUN_HEALTHY, asset_key="write_results", passed=not failed,
        metadata={"failed": dg.MetadataValue.json({c.check_name: c.description for c in failed})},
        description="; ".join(f"{c.check_name}: {c.description}" for c in failed) or None,
    )


@dg.asset(
    partitions_def=builds_partitions,
    group_name="load_test",
    pool="load_test_target",
    ins={"write_results": dg.AssetIn()},
    check_specs=[dg.AssetCheckSpec(NO_WRITE_REGRESSION, asset="write_verdict",
                                   description="error on a confirmed regression of the write test, warning on a "
                                   "suspected one or an inconclusive operation (the read test's rule)")],
    description="The write test's verdict: the build's admin_writes run against the earlier builds' write runs "
    "measured the same way, by the read test's gate.",
)
def write_verdict(context: dg.AssetExecutionContext, config: RegressionConfig, write_results: dict,
                  results_store: ResultsStoreResource):
    build = context.partition_key
    gate = config.gate()
    outcome = compare_build(results_store.history_store(WRITES_HISTORY_FOLDER), build, gate)
    if isinstance(outcome, str):
        raise dg.Failure(f"write test: {outcome}")
    operations = pd.DataFrame(outcome["operations"])
    decision = decide(operations, gate)
    final = final_verdict(build, operations, "no A/B re-runs for the write test", gate=gate)
    folder = results_store.partition_dir(build) / WRITES_FOLDER
    store_verdict(folder, final, WRITE_VERDICT_FILE)
    metadata = {**comparison_metadata(outcome, gate, context.run.tags), "summary": decision.summary,
                **trend_report_link(results_store)}
    yield dg.Output(final, metadata=metadata)
    yield no_regression_result(decision, NO_WRITE_REGRESSION)


def lost_writes_result(result: contention.ContentionResult, interrupted: bool = False) -> dg.AssetCheckResult:
    """`no_lost_writes`: fails (ERROR) when any acknowledged add is absent from its class's roster,
    naming the classes and counts. A run that had nothing acknowledged could not see a lost write: it
    fails too (WARN), saying so, never "passed"; an interrupted run's finding stands on what it saw."""
    lossy = result.lost_classes
    blind = result.acknowledged == 0
    if lossy:
        description = result.line()
    elif blind:
        description = (f"nothing to check: no roster write was acknowledged ({result.refused} refused, "
                       f"{len(result.classes)} classes), so lost writes could not be seen")
    else:
        description = None
    if interrupted and description is not None:
        description += " (run interrupted)"
    return dg.AssetCheckResult(
        check_name=NO_LOST_WRITES, asset_key="roster_contention", passed=not lossy and not blind,
        severity=dg.AssetCheckSeverity.ERROR if lossy else dg.AssetCheckSeverity.WARN,
        metadata={
            "acknowledged": result.acknowledged, "lost": result.lost,
            "classes_with_lost_writes": dg.MetadataValue.json(
                {c.class_id: {"acknowledged": c.acknowledged, "present": c.present, "lost": len(c.lost)}
                 for c in lossy}),
            "write_errors": dg.MetadataValue.json(result.write_errors),
        },
        description=description,
    )


def contention_rows(build: str, pushed_at, result: contention.ContentionResult, samples: str) -> pd.DataFrame:
    """The contention run as history rows: acknowledged, lost and refused adds of the round's operation."""
    refused = result.refused
    return pd.DataFrame([
        {"build": build, "pushed_at": pushed_at, "operation": contention.OPERATION, "metric": metric,
         "value": float(value), "samples_path": samples}
        for metric, value in (("acknowledged", result.acknowledged), ("lost", result.lost), ("refused", refused))
    ])


@dg.multi_asset(
    outs={"roster_contention": dg.AssetOut(
        is_required=False, group_name="load_test",
        description="Parallel roster writes to one class at a time, on freshly seeded data; the rosters read back "
        "through the API against what the service acknowledged (lost writes), and write errors per operation. "
        "Skipped unless enabled.")},
    partitions_def=builds_partitions,
    pool="load_test_target",
    ins={"seeded_dataset": dg.AssetIn()},
    # After the read test's last step, like write_results, and independent of it: either may run alone.
    deps=["ab_confirmation"],
    can_subset=True,
    check_specs=[dg.AssetCheckSpec(NO_LOST_WRITES, asset="roster_contention",
                                   description="every roster write the service acknowledged is on the class's roster "
                                   "afterwards")],
)
def roster_contention(
    context: dg.AssetExecutionContext,
    config: RosterContentionConfig,
    seeded_dataset: dict,
    target_api: TargetApiResource,
    target_db: TargetDatabaseResource,
    token_signer: TokenSignerResource,
    target_deployer: TargetDeployerResource,
    aws: AwsResource,
    k6_runner: K6RunnerResource,
    results_store: ResultsStoreResource,
):
    if not config.enabled:
        context.log.info("roster-contention test switched off (roster_contention.enabled, ULT_WRITE_TESTS): not run")
        return
    profile = get_load_profile("short").with_overrides(scenario=ROSTER_CONTENTION, rate=config.rate,
                                                        duration=config.duration, contention_writers=config.writers)
    folder, manifest = _fresh_data(context, ROSTER_CONTENTION, seeded_dataset, results_store, target_api=target_api,
                                   target_db=target_db, token_signer=token_signer, target_deployer=target_deployer,
                                   aws=aws)
    client = target_api.client()  # the API key's client reads the rosters back after the run
    try:
        run = run_load_test(
            runner=k6_runner.runner(), target_url=target_api.url, identities_path=Path(manifest["identities_path"]),
            profile=profile, out_dir=folder / "k6", dataset_hash=manifest["dataset_hash"], image=Build.image_tag_of_run(context.run.tags, context.partition_key),
            tags={"build": context.partition_key, "test": ROSTER_CONTENTION}, log=context.log.info,
            contention_client=client,
        )
    finally:
        client.close()
    result = run.contention
    if result is None:
        raise dg.Failure(f"the roster-contention run left no integrity check (see {folder / 'k6'})")
    if not run.interrupted:
        store = results_store.history_store(CONTENTION_HISTORY_FOLDER)
        pushed_at = pushed_at_of(context, store)
        store.record({"build": context.partition_key, "pushed_at": pushed_at, "acknowledged": result.acknowledged,
                      "lost": result.lost, "writers": config.writers, "interrupted": False, **run.fingerprint},
                     contention_rows(context.partition_key, pushed_at, result, str(folder / "k6")))
    yield dg.Output(result.to_json(), output_name="roster_contention", metadata={
        **build_entries(context.partition_key, context.run.tags),
        "lost_writes": result.lost, "acknowledged_writes": result.acknowledged,
        "classes": len(result.classes), "writers_per_class": config.writers,
        "write_errors": dg.MetadataValue.json(result.write_errors),
        "interrupted": run.interrupted,
        "results_dir": dg.MetadataValue.path(str(folder / "k6")),
        **trend_report_link(results_store),
    })
    yield lost_writes_result(result, run.interrupted)
