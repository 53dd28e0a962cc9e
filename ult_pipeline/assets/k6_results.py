"""`k6_results`: what k6 saw of one build, per operation, exact and reproducible.

A complete run is recorded in the history store (`ResultsStoreResource.history_store`), where the
analysis reads the history across builds; the asset's metadata is for people only.
"""

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import pandas as pd
from pydantic import Field

from ult_pipeline.analysis.history import ALL_OPERATIONS, rows_from_operations
from ult_pipeline.analysis.history_store import HistoryStore
from ult_pipeline.assets.presentation import (
    ERROR_PCT_DECIMALS,
    MS_DECIMALS,
    PCT_DECIMALS,
    build_entries,
    finite,
    metric_key_part,
    operation_label,
    trend_report_link,
)
from ult_pipeline.build import Build
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
    scenario: str | None = Field(default=None, description="student_landing, teacher, admin_writes, roster_contention or mixed")
    rate: float | None = Field(default=None, description="iterations per second")
    duration: str | None = Field(default=None, description="e.g. 60s, 10m")
    admin_writes_weight: int | None = Field(default=None, description="mixed: weight of administrators' writes "
                                            "beside students' and teachers' (ULT_ADMIN_WRITES_WEIGHT)")


# Columns of the operations table: (name shown, column of `LoadTestResult.operations`, scale, decimals).
# Error and check rates are fractions there, percent here; latencies are milliseconds.
OPERATION_COLUMNS = (
    ("error_rate_pct", "error_rate", 100.0, ERROR_PCT_DECIMALS), ("p50_ms", "p50", 1.0, MS_DECIMALS),
    ("p95_ms", "p95", 1.0, MS_DECIMALS), ("p99_ms", "p99", 1.0, MS_DECIMALS), ("p90_ms", "p90", 1.0, MS_DECIMALS),
    ("max_ms", "max", 1.0, MS_DECIMALS), ("requests", "count", 1.0, 0), ("rate_per_s", "rate", 1.0, MS_DECIMALS),
    ("check_pass_rate_pct", "check_pass_rate", 100.0, PCT_DECIMALS),
)
# Per-operation numbers as metadata of their own (`p95_ms/userNode`): Dagster's Plots tab draws each
# across the partitions (builds).
PLOTTED = (("p50_ms", "p50", 1.0), ("p95_ms", "p95", 1.0), ("p99_ms", "p99", 1.0), ("error_rate_pct", "error_rate", 100.0))


def operations_table(result: LoadTestResult) -> dg.TableMetadataValue:
    """One row per operation (the load mix last): `operation`, then `OPERATION_COLUMNS`, rounded.

    An operation whose requests all failed has no latency (failed requests are never latencies):
    its cells are empty, never 0, which a reader would take for a fast build.
    """
    records = []
    for row in _operation_rows(result):
        cells: dict = {"operation": operation_label(row["operation"])}
        for name, column, scale, decimals in OPERATION_COLUMNS:
            value = finite(row.get(column))
            cells[name] = "" if value is None else (int(value) if name == "requests" else round(value * scale, decimals))
        records.append(dg.TableRecord(cells))
    schema = dg.TableSchema(columns=[dg.TableColumn("operation", "string"), *(
        dg.TableColumn(name, "int" if name == "requests" else "float") for name, *_ in OPERATION_COLUMNS)])
    return dg.MetadataValue.table(records=records, schema=schema)


def _operation_rows(result: LoadTestResult) -> list[dict]:
    rows = result.operations.to_dict(orient="records")
    return sorted(rows, key=lambda r: r["operation"] == ALL_OPERATIONS)


def plotted_metadata(result: LoadTestResult) -> dict[str, dg.FloatMetadataValue]:
    """`p50_ms/<operation>`, `p95_ms/<operation>`, `p99_ms/<operation>`, `error_rate_pct/<operation>`
    (operation `all` for the load mix) as floats; a key is left out when the value does not exist."""
    out = {}
    for name, column, scale in PLOTTED:
        for row in _operation_rows(result):
            value = finite(row.get(column))
            if value is not None:
                decimals = ERROR_PCT_DECIMALS if name == "error_rate_pct" else MS_DECIMALS
                out[f"{name}/{metric_key_part(row['operation'])}"] = dg.FloatMetadataValue(round(value * scale, decimals))
    return out


def result_metadata(result: LoadTestResult, partition_key: str | None = None,
                    run_tags: Mapping[str, str] | None = None, links: Mapping[str, Any] | None = None) -> dict:
    """The k6_results page: the build, `links` (the trend report), the run's totals (ms, %, per second),
    the operations table, the run's identity (fingerprint), then one number per operation and metric
    for the Plots tab."""
    totals = result.totals()
    metadata: dict = {**build_entries(partition_key, run_tags), **(links or {})}
    if result.interrupted:  # said first when true (the key keeps this place when updated below)
        metadata["interrupted"] = True
    p95, p99 = finite(totals["p95_ms"]), finite(totals["p99_ms"])
    metadata.update({
        "requests": totals["requests"],
        "error_rate_pct": dg.FloatMetadataValue(round(float(totals["error_rate"]) * 100.0, ERROR_PCT_DECIMALS)),
        **({"p95_ms": dg.FloatMetadataValue(round(p95, MS_DECIMALS))} if p95 is not None else {}),
        **({"p99_ms": dg.FloatMetadataValue(round(p99, MS_DECIMALS))} if p99 is not None else {}),
        "target_rate_per_s": dg.FloatMetadataValue(float(result.target_rate)),
        "achieved_rate_per_s": dg.FloatMetadataValue(round(float(result.achieved_rate), 3)),
        "iterations": totals["iterations"],
        "dropped_iterations": totals["dropped_iterations"],
        "operations": operations_table(result),
        "interrupted": result.interrupted,
        "thresholds_crossed": result.k6.thresholds_crossed,
        "results_dir": dg.MetadataValue.path(str(result.ingested.requests_path.parent)),
        "fingerprint": dg.MetadataValue.json(result.fingerprint),
        "dataset_hash": result.fingerprint["dataset_hash"],
        "scripts_hash": result.fingerprint["scripts_hash"],
        "k6_version": result.fingerprint["k6_version"],
    })
    metadata.update(plotted_metadata(result))
    return metadata


def checks(result: LoadTestResult) -> list[dg.AssetCheckResult]:
    failed_thresholds = {m: e for m, exprs in result.k6.thresholds().items() for e, held in exprs.items() if not held}
    rate_ok = result.ingested.dropped_iterations == 0 and result.achieved_rate >= result.target_rate * (1 - RATE_TOLERANCE)
    return [
        dg.AssetCheckResult(
            check_name=THRESHOLDS_HELD, passed=not result.k6.thresholds_crossed,
            metadata={"crossed": dg.MetadataValue.json(failed_thresholds)},
            description=None if not result.k6.thresholds_crossed else "thresholds crossed: " + (", ".join(
                f"{metric} {expression}" for metric, expression in failed_thresholds.items()) or "see k6's summary"),
        ),
        dg.AssetCheckResult(
            check_name=NO_DROPPED_ITERATIONS, passed=rate_ok,
            metadata={"target_rate_per_s": result.target_rate, "achieved_rate_per_s": round(result.achieved_rate, 3),
                      "dropped_iterations": result.ingested.dropped_iterations},
            description=None if rate_ok else (
                f"{result.ingested.dropped_iterations} iterations dropped; {result.achieved_rate:.2f} of "
                f"{result.target_rate:g} iterations/s achieved (the load generator or the target could not keep up)"),
        ),
        dg.AssetCheckResult(check_name=RUN_COMPLETE, passed=not result.interrupted,
                            metadata={"exit_code": result.k6.exit_code},
                            description=None if not result.interrupted else
                            f"interrupted: {result.interrupted_reason or 'k6 stopped before the planned end'}"),
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
                 seeded_dataset: dict, extra: Mapping[str, Any] | None = None) -> None:
    """The complete run's per-operation rows and summary (totals, data volume, fingerprint, and `extra`
    fields) into the store."""
    totals = result.totals()
    rows = rows_from_operations(build, pushed_at, result.operations.to_dict(orient="records"),
                                str(result.ingested.requests_path.parent))
    store.record({
        "build": build, "pushed_at": pushed_at, "requests": totals["requests"], "p95_ms": totals["p95_ms"],
        "error_rate": totals["error_rate"], "students": (seeded_dataset.get("counts") or {}).get("students"),
        "interrupted": result.interrupted, **result.fingerprint, **(extra or {}),
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
        scenario=config.scenario, rate=config.rate, duration=config.duration,
        admin_writes_weight=config.admin_writes_weight,
    )
    image = Build.image_tag_of_run(context.run.tags, context.partition_key)

    def keep_partial(partial: LoadTestResult) -> None:
        # The run is being cancelled: record what k6 saw so far, marked interrupted.
        context.log_event(dg.AssetMaterialization(
            asset_key=context.asset_key, partition=context.partition_key, metadata=result_metadata(partial, context.partition_key, context.run.tags,
                                                                   trend_report_link(results_store)),
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
    yield dg.Output(result.to_json(), metadata=result_metadata(result, context.partition_key, context.run.tags,
                                                               trend_report_link(results_store)))
    yield from checks(result)
