"""`trend_report`: how performance moves across builds, as an offline HTML page and a PNG.

It reads files only: the history store, each build's `verdict.json` (`ab_confirmation`) and
`telemetry_gap.json` (`telemetry_gap`).
"""

import base64
import json

import dagster as dg
import pandas as pd

from ult_pipeline.analysis.report import write_report
from ult_pipeline.assets.ab_confirmation import VERDICT_FILE
from ult_pipeline.assets.telemetry_gap import read_gaps
from ult_pipeline.resources.target import ResultsStoreResource

VERDICT_COLUMNS = ["build", "operation", "verdict", "confidence", "p95_change_pct", "p95_ci_low_pct",
                   "p95_ci_high_pct", "mdc_pct", "noise_cv_pct", "regressed_metrics", "change_points"]


def verdicts_by_build(results_store: ResultsStoreResource, builds: list[str]) -> pd.DataFrame:
    """Every build's final per-operation verdicts, change points included, as `ab_confirmation` stored them."""
    rows = []
    for build in builds:
        path = results_store.partition_dir(build) / VERDICT_FILE
        if path.is_file():
            rows += [{**op, "build": build} for op in json.loads(path.read_text())["operations"]]
    frame = pd.DataFrame(rows)
    return frame.reindex(columns=VERDICT_COLUMNS) if len(frame) else pd.DataFrame(columns=VERDICT_COLUMNS)


def telemetry_by_build(results_store: ResultsStoreResource, builds: list[str]) -> pd.DataFrame:
    """Every build's telemetry comparison, as `telemetry_gap` stored it (numbers to 3 places, blanks for none)."""
    rows = []
    for build in builds:
        stored = read_gaps(results_store.partition_dir(build)) or {}
        rows += [{"build": build, **{k: ("" if v is None else (round(v, 3) if isinstance(v, float) else v))
                                     for k, v in op.items()}} for op in stored.get("operations") or []]
    return pd.DataFrame(rows)


@dg.asset(
    group_name="trends",
    deps=[dg.AssetDep("ab_confirmation")],
    # Seconds of CPU (every build's analysis, charts), launched when a build's run ends, i.e. while
    # the next build deploys and seeds: in the target's pool it runs between load tests, never beside one.
    pool="load_test_target",
    description="Static HTML report (readable offline) of p95/p99 per operation across builds with change points "
    "and verdicts, error rate, throughput, data volume, and a table of builds; a PNG chart for the UI.",
)
def trend_report(context: dg.AssetExecutionContext, results_store: ResultsStoreResource):
    history, builds = results_store.history_store().load()
    keys = list(builds["build"]) if len(builds) else []
    verdicts = verdicts_by_build(results_store, keys)
    report = write_report(results_store.partition_dir("trend"), history, verdicts, builds,
                          telemetry_by_build(results_store, keys))
    png = base64.b64encode(report["png"].read_bytes()).decode()
    return dg.MaterializeResult(metadata={
        "builds": len(keys),
        "html": dg.MetadataValue.path(str(report["html"])),
        "png": dg.MetadataValue.path(str(report["png"])),
        "chart": dg.MetadataValue.md(f"![latency per operation across builds](data:image/png;base64,{png})"),
        "seconds": dg.FloatMetadataValue(round(report["seconds"], 2)),
    })
