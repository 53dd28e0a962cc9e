"""`trend_report`: how performance moves across builds, as one interactive HTML page readable offline.

It reads files only, never Dagster metadata: the history store (every recorded build, interrupted
ones included) and the write tests' histories, and in each build's folder `verdict.json`
(`ab_confirmation`), `writes/write_verdict.json` (`write_verdict`), `telemetry_gap.json`
(`telemetry_gap`) and `k6/result.json` (`loadtest.run`: why a run failed or was cut short). A build
whose k6 run failed its blocking checks (`k6_results`) is in the history but has no verdict: its
status says which check and why (`build_status`).
"""

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pandas as pd

from ult_pipeline.analysis.history_store import safe_key
from ult_pipeline.analysis.report import FAILED, INTERRUPTED, NO_VERDICT, STATUS_COLUMNS, write_report
from ult_pipeline.assets.ab_confirmation import VERDICT_FILE
from ult_pipeline.assets.k6_results import RATE_TOLERANCE
from ult_pipeline.assets.telemetry_gap import read_gaps
from ult_pipeline.assets.write_tests import WRITE_VERDICT_FILE, WRITES_FOLDER
from ult_pipeline.resources.target import (
    CONTENTION_HISTORY_FOLDER,
    HISTORY_FOLDERS,
    WRITES_HISTORY_FOLDER,
    ResultsStoreResource,
)

VERDICT_COLUMNS = ["build", "operation", "verdict", "confidence", "p95_ms", "p95_change_pct", "p95_ci_low_pct",
                   "p95_ci_high_pct", "p95_measured_change_pct", "mdc_pct", "p_adjusted", "noise_cv_pct",
                   "regressed_metrics", "change_points"]
# Where `loadtest.run` leaves a build's run summary, under the build's folder.
RESULT_FILE = Path("k6") / "result.json"
# The report's own folder under the results store (no partition key is named this).
REPORT_FOLDER = "trend"


def _read_json(path: Path) -> dict | None:
    """The JSON object in `path`; None when it is missing, unreadable or not an object."""
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def failure_reasons(result: Mapping, rate_tolerance: float = RATE_TOLERANCE) -> list[str]:
    """Why a complete k6 run failed the blocking checks of `k6_results`, in words, from its
    `result.json`: each crossed threshold (`http_req_failed rate<0.01`), dropped iterations, an
    achieved rate more than `rate_tolerance` below the target. [] when it passed."""
    reasons = []
    crossed = [f"{metric} {expression}" for metric, expressions in (result.get("thresholds") or {}).items()
               for expression, held in (expressions or {}).items() if not held]
    if crossed:
        reasons.append("thresholds crossed: " + ", ".join(crossed))
    elif result.get("thresholds_crossed"):
        reasons.append("thresholds crossed")
    dropped = int((result.get("totals") or {}).get("dropped_iterations") or 0)
    if dropped:
        reasons.append(f"{dropped:,} iterations dropped")
    target, achieved = result.get("target_rate"), result.get("achieved_rate")
    if target and achieved is not None and float(achieved) < float(target) * (1 - rate_tolerance):
        below = (1 - float(achieved) / float(target)) * 100
        reasons.append(f"achieved {float(achieved):.3g} of {float(target):g} iterations/s ({below:.1f} % below the "
                       f"target; at most {rate_tolerance * 100:g} % allowed)")
    return reasons


def build_status(summary: Mapping | None, result: Mapping | None, verdict: Mapping | None,
                 rate_tolerance: float = RATE_TOLERANCE) -> tuple[str, str]:
    """(status, reason) of one build from its files: its history summary, `k6/result.json` and
    `verdict.json` (each None when absent).

    "interrupted" (the run was cut short) and "failed" (a blocking check of `k6_results` failed:
    `failure_reasons`) win over a verdict (one left from an earlier run of the build would be stale);
    else the stored verdict with its summary; else "no verdict yet".
    """
    if (result or {}).get("interrupted") or (summary or {}).get("interrupted"):
        result = result or {}
        seconds = result.get("seconds")
        parts = [f"after {float(seconds):.0f} s of load" if seconds is not None else "",
                 str(result.get("interrupted_reason") or ""),
                 f"k6 exit code {result['exit_code']}" if result.get("exit_code") not in (None, 0) else ""]
        return INTERRUPTED, ("run interrupted " + "; ".join(p for p in parts if p)) if any(parts) else "run interrupted"
    if result:
        reasons = failure_reasons(result, rate_tolerance)
        if reasons:
            return FAILED, "; ".join(reasons)
    if verdict and verdict.get("verdict"):
        return str(verdict["verdict"]), str(verdict.get("summary") or "")
    if result is None and summary is None:
        return NO_VERDICT, "no load-test result yet"
    return NO_VERDICT, ""


def verdicts_by_build(results_store: ResultsStoreResource, builds: list[str]) -> pd.DataFrame:
    """Every build's final per-operation verdicts, change points included, as `ab_confirmation` stored them."""
    rows = []
    for build in builds:
        stored = _read_json(results_store.partition_dir(build) / VERDICT_FILE)
        rows += [{**op, "build": build} for op in (stored or {}).get("operations") or []]
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


def statuses_by_build(results_store: ResultsStoreResource) -> pd.DataFrame:
    """`STATUS_COLUMNS` of every build the results store knows: those in the history store (interrupted
    ones too), and those with only a `k6/result.json` in their folder (a run cut short is never
    recorded in the history; its push time is then the file's time)."""
    base = Path(results_store.base_dir).expanduser()
    summaries = {str(s["build"]): s for s in results_store.history_store().summaries(complete_only=False)}
    entries = {b: s["pushed_at"] for b, s in summaries.items()}
    stored_as = {safe_key(b) for b in summaries}
    if base.is_dir():
        for folder in sorted(base.iterdir()):
            result = folder / RESULT_FILE
            if folder.name in stored_as or folder.name in (*HISTORY_FOLDERS, REPORT_FOLDER) or not result.is_file():
                continue
            entries[folder.name] = datetime.fromtimestamp(result.stat().st_mtime, UTC)
    rows = []
    for build, pushed_at in entries.items():
        folder = base / safe_key(build)
        status, reason = build_status(summaries.get(build), _read_json(folder / RESULT_FILE),
                                      _read_json(folder / VERDICT_FILE))
        rows.append({"build": build, "pushed_at": pushed_at, "status": status, "reason": reason})
    return pd.DataFrame(rows, columns=STATUS_COLUMNS)


def writes_by_build(results_store: ResultsStoreResource) -> pd.DataFrame:
    """One row per build whose write tests ran: the admin_writes run's summary in its history
    (requests, p95_ms, error_rate, rows_written), its verdict (`write_verdict`'s file), and the
    roster-contention run's acknowledged and lost writes (its history)."""
    rows: dict[str, dict] = {}
    for summary in results_store.history_store(WRITES_HISTORY_FOLDER).summaries():
        build = str(summary["build"])
        stored = _read_json(results_store.partition_dir(build) / WRITES_FOLDER / WRITE_VERDICT_FILE) or {}
        rows[build] = {"build": build, "requests": summary.get("requests"), "p95_ms": summary.get("p95_ms"),
                       "error_rate": summary.get("error_rate"), "rows_written": summary.get("rows_written"),
                       "write_verdict": stored.get("verdict", ""), "write_summary": stored.get("summary", "")}
    for summary in results_store.history_store(CONTENTION_HISTORY_FOLDER).summaries():
        build = str(summary["build"])
        rows.setdefault(build, {"build": build}).update(acknowledged=summary.get("acknowledged"),
                                                        lost=summary.get("lost"))
    return pd.DataFrame(list(rows.values()))


def write_trend_report(results_store: ResultsStoreResource) -> dict:
    """Reads the results store and writes `<base_dir>/trend/trend_report.html`; `write_report`'s result
    plus "builds" (count) and "latest" (build, status) of the newest build."""
    history, builds = results_store.history_store().load()
    statuses = statuses_by_build(results_store)
    keys = list(statuses["build"])
    report = write_report(results_store.partition_dir(REPORT_FOLDER), history, verdicts_by_build(results_store, keys),
                          builds, telemetry_by_build(results_store, keys), statuses=statuses,
                          writes=writes_by_build(results_store))
    newest = statuses.sort_values(["pushed_at", "build"]).iloc[-1] if len(statuses) else None
    return {**report, "builds": len(keys),
            "latest": None if newest is None else (str(newest["build"]), str(newest["status"]))}


@dg.asset(
    group_name="trends",
    deps=[dg.AssetDep("ab_confirmation"), dg.AssetDep("write_verdict"), dg.AssetDep("roster_contention")],
    # Seconds of CPU (every build's analysis, charts), launched when a build's run ends, i.e. while
    # the next build deploys and seeds: in the target's pool it runs between load tests, never beside one.
    pool="load_test_target",
    description="Interactive HTML report (plotly.js inline: readable offline) across builds: each build's status "
    "(verdict, or failed/interrupted with the reason), p95/p99 per operation vs its median with verdicts, change "
    "points and noisy builds marked, errors, throughput, data volume, the latest judged build against its "
    "baseline, and tables with units. Open it from the 'report' link (or the 'html' path).",
)
def trend_report(context: dg.AssetExecutionContext, results_store: ResultsStoreResource):
    report = write_trend_report(results_store)
    url = results_store.url_of(report["html"])
    latest_build, latest_status = report["latest"] or ("none", "none")
    metadata = {"report": dg.MetadataValue.url(url)} if url else {}
    metadata.update({
        "html": dg.MetadataValue.path(str(report["html"])),
        "builds": report["builds"],
        "failed_builds": report["failed"],
        "latest_build": latest_build,
        "latest_verdict": latest_status,
        "noisy_builds": ", ".join(report["noisy"]) or "none",
        "seconds": dg.FloatMetadataValue(round(report["seconds"], 2)),
    })
    context.log.info(f"trend report: {report['html']}" + (f" ({url})" if url else ""))
    return dg.MaterializeResult(metadata=metadata)
