"""`telemetry_gap`: does the service's own telemetry see what k6 saw? Per operation."""

import dagster as dg
from pydantic import Field

from ult_pipeline.partitions import builds_partitions
from ult_pipeline.resources.telemetry import TelemetrySourceResource
from ult_pipeline.telemetry.compare import OK, GapTolerances, compare

COVERS_EVERY_OPERATION = "telemetry_covers_every_operation"


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
                  telemetry_source: TelemetrySourceResource):
    window = k6_results.get("window") or {}
    server = telemetry_source.server_view(window.get("start_ms") or 0, window.get("end_ms") or 0)
    table = compare(k6_results["operations"], server, GapTolerances(
        min_coverage=config.min_coverage, max_coverage=config.max_coverage,
        max_latency_offset_ms=config.max_latency_offset_ms, max_error_difference=config.max_error_difference,
    ))
    gaps = table[table["status"] != OK]
    columns = list(table.columns)
    records = [dg.TableRecord({k: ("" if v is None else (round(v, 3) if isinstance(v, float) else v))
                               for k, v in row.items()}) for row in table.to_dict(orient="records")]
    table_meta = dg.MetadataValue.table(records=records, schema=dg.TableSchema(columns=[
        dg.TableColumn(c, "string" if c in ("operation", "status") else "float") for c in columns]))
    yield dg.Output(table.to_dict(orient="records"), metadata={
        "operations": table_meta,
        "gaps": ", ".join(f"{r.operation} ({r.status})" for r in gaps.itertuples()) or "none",
        "operations_with_gaps": len(gaps),
    })
    yield dg.AssetCheckResult(
        check_name=COVERS_EVERY_OPERATION, passed=not len(gaps),
        metadata={"gaps": ", ".join(gaps["operation"]) or "none"},
        description=None if not len(gaps) else f"telemetry falls short for {', '.join(gaps['operation'])}",
    )
