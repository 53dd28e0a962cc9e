"""The performance history as Dagster recorded it: k6_results of every build partition."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import pandas as pd

from ult_pipeline.analysis.history import rows_from_operations
from ult_pipeline.build import pushed_at_utc

_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def latest_metadata(instance: dg.DagsterInstance, asset: str, partitions: list[str]) -> dict[str, dict]:
    latest: dict[str, dict] = {}
    if not partitions:
        return latest
    cursor = None
    while True:
        result = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=partitions), limit=1000, cursor=cursor
        )
        for record in result.records:  # newest first
            mat = record.asset_materialization
            if mat is not None and mat.partition not in latest:
                latest[mat.partition] = {k: v.value for k, v in mat.metadata.items()}
        if not result.has_more:
            return latest
        cursor = result.cursor


def operations_of(metadata: dict) -> list[dict]:
    table = metadata.get("operations")
    if table is None:
        return []
    return [dict(record.data) for record in table.records]


def load_history(instance: dg.DagsterInstance, partitions_def_name: str = "builds") -> tuple[pd.DataFrame, pd.DataFrame]:
    """(history rows, one row per build) for complete builds, in push order.

    Builds are partitions, added by the sensor in push order; an interrupted run's
    partial results are left out.
    """
    partitions = list(instance.get_dynamic_partitions(partitions_def_name))
    k6 = latest_metadata(instance, "k6_results", partitions)
    seeded = latest_metadata(instance, "seeded_dataset", partitions)
    deployed = latest_metadata(instance, "target_deployment", partitions)
    rows, builds = [], []
    for position, partition in enumerate(partitions):
        meta = k6.get(partition)
        if not meta or meta.get("interrupted"):
            continue
        recorded = deployed.get(partition, {}).get("pushed_at")
        # Aware UTC whatever form it was recorded in; a build never deployed keeps its place in push order.
        pushed_at = pushed_at_utc(recorded) if recorded else _EPOCH + timedelta(seconds=position)
        rows += rows_from_operations(partition, pushed_at, operations_of(meta), str(meta.get("results_dir") or ""))
        builds.append({
            "build": partition, "pushed_at": pushed_at, "requests": meta.get("requests"),
            "p95_ms": meta.get("p95_ms"), "error_rate": meta.get("error_rate"),
            "students": seeded.get(partition, {}).get("students"),
            "dataset_hash": str(meta.get("dataset_hash", ""))[:19],
        })
    history = pd.DataFrame(rows, columns=["build", "pushed_at", "operation", "metric", "value", "samples_path"])
    if len(history):
        history["pushed_at"] = pd.to_datetime(history["pushed_at"], utc=True)
    return history, pd.DataFrame(builds)
