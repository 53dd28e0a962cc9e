"""`k6_results`: what k6 saw of one build, per operation, exact and reproducible.

A complete run is recorded in the history store (`ResultsStoreResource.history_store`), where the
analysis reads the history across builds; the asset's metadata is for people only.
"""

from datetime import UTC, datetime, timedelta

import dagster as dg
import pandas as pd
from pydantic import Field

from ult_pipeline.analysis.history import rows_from_operations
from ult_pipeline.analysis.history_store import HistoryStore
from ult_pipeline.build import Build, tag_of
from ult_pipeline.loadtest.profiles import get_load_profile
from ult_pipeline.loadtest.run import LoadTestResult, run_load_test
from ult_pipeline.partitions import builds_partitions
from ult_pipeline.resources.k6 import K6RunnerResource
from ult_pipeline.resources.target import ResultsStoreResource, TargetApiResource

THRESHOLDS_HELD, NO_DROPPED_ITERATIONS, RUN_COMPLETE = "thresholds_held", "no_dropped_iterations", "run_complete"
# Achieved iteration rate may fall this far below the target before iterations count as dropped.
RATE_TOLERANCE = 0.01
# A build whose push time is unknown keeps its place in push order: this plus its partition's position.
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


class K6ResultsConfig(dg.Config):
    load_profile: str = Field(default="default", description="default (22 it/s, 10m) or short")
    scenario: str | None = Field(default=None, description="student_landing, teacher or mixed")
    rate: float | None = Field(default=None, description="iterations per second")
    duration: str | None = Field(default=None, description="e.g. 60s, 10m")


def operations_table(result: LoadTestResult) -> dg.TableMetadataValue:
    columns = ["operation", "count", "rate", "error_rate", "p50", "p90", "p95", "p99", "max", "check_pass_rate"]
    # An operation whose requests all failed has no latency (failed requests are never latencies):
    # its cells are left out, never 0, which the history would read as a fast build.
    records = [
        dg.TableRecord({c: (round(float(r[c]), 3) if c != "operation" else r[c]) for c in columns
                        if c == "operation" or pd.notna(r[c])})
        for r in result.operations.to_dict(orient="records")
    ]
    schema = dg.TableSchema(columns=[
        dg.TableColumn(c, "string" if c == "operation" else "float") for c in columns
    ])
    return dg.MetadataValue.table(records=records, schema=schema)


def result_metadata(result: LoadTestResult) -> dict:
    totals = result.totals()
    return {
        "operations": operations_table(result),
        "requests": totals["requests"],
        "error_rate": dg.FloatMetadataValue(float(totals["error_rate"])),
        "p95_ms": dg.FloatMetadataValue(round(float(totals["p95_ms"]), 3)),
        "p99_ms": dg.FloatMetadataValue(round(float(totals["p99_ms"]), 3)),
        "iterations": totals["iterations"],
        "target_rate": dg.FloatMetadataValue(float(result.target_rate)),
        "achieved_rate": dg.FloatMetadataValue(round(float(result.achieved_rate), 3)),
        "dropped_iterations": totals["dropped_iterations"],
        "interrupted": result.interrupted,
        "thresholds_crossed": result.k6.thresholds_crossed,
        "fingerprint": dg.MetadataValue.json(result.fingerprint),
        "dataset_hash": result.fingerprint["dataset_hash"],
        "scripts_hash": result.fingerprint["scripts_hash"],
        "k6_version": result.fingerprint["k6_version"],
        "results_dir": dg.MetadataValue.path(str(result.ingested.requests_path.parent)),
    }


def checks(result: LoadTestResult) -> list[dg.AssetCheckResult]:
    failed_thresholds = {m: e for m, exprs in result.k6.thresholds().items() for e, held in exprs.items() if not held}
    rate_ok = result.ingested.dropped_iterations == 0 and result.achieved_rate >= result.target_rate * (1 - RATE_TOLERANCE)
    return [
        dg.AssetCheckResult(
            check_name=THRESHOLDS_HELD, passed=not result.k6.thresholds_crossed,
            metadata={"crossed": dg.MetadataValue.json(failed_thresholds)},
        ),
        dg.AssetCheckResult(
            check_name=NO_DROPPED_ITERATIONS, passed=rate_ok,
            metadata={"target_rate": result.target_rate, "achieved_rate": round(result.achieved_rate, 3),
                      "dropped_iterations": result.ingested.dropped_iterations},
        ),
        dg.AssetCheckResult(check_name=RUN_COMPLETE, passed=not result.interrupted,
                            metadata={"exit_code": result.k6.exit_code}),
    ]


def pushed_at_of(context: dg.AssetExecutionContext, store: HistoryStore) -> datetime:
    """When the run's build was pushed: from the run's tags (set by the sensor), else as recorded before
    for this build, else its place among the build partitions (added in push order; `_EPOCH` + position
    seconds), else the run's creation time."""
    key = context.partition_key
    build = Build.from_run(context.run.tags, key)
    if build is not None and build.pushed_at is not None:
        return build.pushed_at
    recorded = store.summary(key)
    if recorded is not None:
        return recorded["pushed_at"]
    partitions = list(context.instance.get_dynamic_partitions(builds_partitions.name))
    if key in partitions:
        return _EPOCH + timedelta(seconds=partitions.index(key))
    record = context.instance.get_run_record_by_id(context.run_id)
    return record.create_timestamp if record is not None else datetime.now(UTC)


def record_build(store: HistoryStore, build: str, pushed_at: datetime, result: LoadTestResult,
                 seeded_dataset: dict) -> None:
    """The complete run's per-operation rows and summary (totals, data volume, fingerprint) into the store."""
    totals = result.totals()
    rows = rows_from_operations(build, pushed_at, result.operations.to_dict(orient="records"),
                                str(result.ingested.requests_path.parent))
    store.record({
        "build": build, "pushed_at": pushed_at, "requests": totals["requests"], "p95_ms": totals["p95_ms"],
        "error_rate": totals["error_rate"], "students": (seeded_dataset.get("counts") or {}).get("students"),
        "interrupted": result.interrupted, **result.fingerprint,
    }, pd.DataFrame(rows, columns=["build", "pushed_at", "operation", "metric", "value", "samples_path"]))


@dg.asset(
    partitions_def=builds_partitions,
    group_name="load_test",
    pool="load_test_target",
    ins={"seeded_dataset": dg.AssetIn()},
    check_specs=[
        dg.AssetCheckSpec(THRESHOLDS_HELD, asset="k6_results", blocking=True,
                          description="k6's thresholds (p99 < 1 s, failures < 1 %, overall and per operation) held"),
        dg.AssetCheckSpec(NO_DROPPED_ITERATIONS, asset="k6_results", blocking=True,
                          description="achieved iteration rate within 1 % of the target, none dropped"),
        dg.AssetCheckSpec(RUN_COMPLETE, asset="k6_results", blocking=True, description="the run was not interrupted"),
    ],
    description="Runs the k6 suite against the seeded target and ingests every request into Parquet, "
    "with exact per-operation aggregates and a 10-second time series.",
)
def k6_results(
    context: dg.AssetExecutionContext,
    config: K6ResultsConfig,
    seeded_dataset: dict,
    target_api: TargetApiResource,
    k6_runner: K6RunnerResource,
    results_store: ResultsStoreResource,
):
    profile = get_load_profile(config.load_profile).with_overrides(
        scenario=config.scenario, rate=config.rate, duration=config.duration
    )
    build = Build.from_run(context.run.tags, context.partition_key)
    image = build.tag if build is not None else tag_of(context.partition_key)

    def keep_partial(partial: LoadTestResult) -> None:
        # The run is being cancelled: record what k6 saw so far, marked interrupted.
        context.log_event(dg.AssetMaterialization(
            asset_key=context.asset_key, partition=context.partition_key, metadata=result_metadata(partial),
            description="interrupted: partial results",
        ))

    result = run_load_test(
        runner=k6_runner.runner(), target_url=target_api.url, identities_path=seeded_dataset["identities_path"],
        profile=profile, out_dir=results_store.partition_dir(context.partition_key) / "k6",
        dataset_hash=seeded_dataset["dataset_hash"], image=image, tags={"build": context.partition_key},
        log=context.log.info, on_interrupt=keep_partial,
    )
    if not result.interrupted:  # partial results never enter the history (they are in the results folder)
        store = results_store.history_store()
        record_build(store, context.partition_key, pushed_at_of(context, store), result, seeded_dataset)
    yield dg.Output(result.to_json(), metadata=result_metadata(result))
    yield from checks(result)
