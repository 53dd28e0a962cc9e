"""`telemetry_gap`: does the service's own telemetry see what k6 saw? Per operation.

The comparison is stored beside the build's results (`telemetry_gap.json`), where the trend
report and `ult demo` read it; the asset's metadata is for people only.
"""

import json
from pathlib import Path

import dagster as dg
from pydantic import Field

from ult_pipeline.assets.presentation import build_entries, finite
from ult_pipeline.loadtest.run import json_safe
from ult_pipeline.partitions import builds_partitions
from ult_pipeline.resources.target import ResultsStoreResource
from ult_pipeline.resources.telemetry import TelemetrySourceResource
from ult_pipeline.telemetry.compare import OK, GapTolerances, compare

COVERS_EVERY_OPERATION = "telemetry_covers_every_operation"
TELEMETRY_FILE = "telemetry_gap.json"


def store_gaps(folder: Path, build: str, gaps: str, operations: list[dict]) -> Path:
    """Writes the build's comparison as strict JSON to folder/telemetry_gap.json (replacing any)."""
    path = folder / TELEMETRY_FILE
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(json_safe({"build": build, "gaps": gaps, "operations": operations}), indent=2,
                              default=str, allow_nan=False))
    tmp.replace(path)
    return path


def read_gaps(folder: Path) -> dict | None:
    """The stored comparison of the build whose results are in `folder`; None when none is stored or readable."""
    try:
        stored = json.loads((folder / TELEMETRY_FILE).read_text())
    except (OSError, ValueError):
        return None
    return stored if isinstance(stored, dict) else None


# The comparison's columns as shown: (name, column of `telemetry.compare.compare`, scale, decimals).
# Coverage is a ratio there, percent here.
GAP_COLUMNS = (("status", "status", None, None), ("coverage_pct", "coverage", 100.0, 2),
               ("latency_offset_ms", "latency_offset_ms", 1.0, 2), ("k6_p95_ms", "k6_p95_ms", 1.0, 2),
               ("server_p95_ms", "server_p95_ms", 1.0, 2), ("k6_requests", "k6_count", 1.0, 0),
               ("server_requests", "server_count", 1.0, 0), ("k6_errors", "k6_errors", 1.0, 0),
               ("server_errors", "server_errors", 1.0, 0))


def gap_table(rows: list[dict]) -> dg.TableMetadataValue:
    """One row per operation: `operation`, then `GAP_COLUMNS` (rounded; a cell without a value empty)."""
    records = []
    for row in rows:
        cells: dict = {"operation": row["operation"]}
        for name, column, scale, decimals in GAP_COLUMNS:
            value = row.get(column)
            if scale is None:
                cells[name] = "" if value is None else str(value)
            elif (number := finite(value)) is not None:
                cells[name] = int(round(number)) if decimals == 0 else round(number * scale, decimals)
            else:
                cells[name] = ""
        records.append(dg.TableRecord(cells))
    schema = dg.TableSchema(columns=[dg.TableColumn("operation", "string"), *(
        dg.TableColumn(name, "string" if scale is None else ("int" if decimals == 0 else "float"))
        for name, _, scale, decimals in GAP_COLUMNS)])
    return dg.MetadataValue.table(records=records, schema=schema)


class TelemetryGapConfig(dg.Config):
    min_coverage: float = Field(default=0.99, description="server count / k6 count at least this")
    max_coverage: float = 1.05
    max_latency_offset_ms: float = Field(default=50.0, description="|k6 p95 - server p95| at most this")
    max_error_difference: int = 2


@dg.asset(
    partitions_def=builds_partitions,
    group_name="load_test",
    pool="load_test_target",
    ins={"k6_results": dg.AssetIn()},
    check_specs=[dg.AssetCheckSpec(COVERS_EVERY_OPERATION, asset="telemetry_gap",
                                   description="every operation k6 sent is recorded server-side within tolerance")],
    description="Compares k6's view of the test window with the service's own telemetry (New Relic in production, "
    "/user/metrics in the sandbox): request coverage, latency offset, missing operations, error counts.",
)
def telemetry_gap(context: dg.AssetExecutionContext, config: TelemetryGapConfig, k6_results: dict,
                  telemetry_source: TelemetrySourceResource, results_store: ResultsStoreResource):
    window = k6_results.get("window") or {}
    server = telemetry_source.server_view(window.get("start_ms") or 0, window.get("end_ms") or 0)
    table = compare(k6_results["operations"], server, GapTolerances(
        min_coverage=config.min_coverage, max_coverage=config.max_coverage,
        max_latency_offset_ms=config.max_latency_offset_ms, max_error_difference=config.max_error_difference,
    ))
    gaps = table[table["status"] != OK]
    table_meta = gap_table(table.to_dict(orient="records"))
    gap_text = ", ".join(f"{r.operation} ({r.status})" for r in gaps.itertuples()) or "none"
    store_gaps(results_store.partition_dir(context.partition_key), context.partition_key, gap_text,
               table.to_dict(orient="records"))
    yield dg.Output(table.to_dict(orient="records"), metadata={
        "gaps": gap_text,
        "operations_with_gaps": len(gaps),
        **build_entries(context.partition_key, context.run.tags),
        "operations": table_meta,
    })
    yield dg.AssetCheckResult(
        check_name=COVERS_EVERY_OPERATION, passed=not len(gaps),
        metadata={"gaps": ", ".join(gaps["operation"]) or "none"},
        description=None if not len(gaps) else f"telemetry falls short for {', '.join(gaps['operation'])}",
    )
