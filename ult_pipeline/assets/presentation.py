"""What the Dagster UI shows of a build: metadata entries in reading order, rounded, with units.

Display only: nothing reads these entries back (the analysis reads the history store and the
files the assets write). Conventions:
- the unit is in the name: `_ms` milliseconds, `_pct` percent (0-100), `_per_s` per second;
- a number that does not exist (an operation whose requests all failed has no latency) is left
  out, never NaN, None or 0;
- dict order is display order: the build, then the verdict, then the details.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import dagster as dg
import pandas as pd

from ult_pipeline.analysis.detector import DetectorConfig
from ult_pipeline.analysis.history import ALL_OPERATIONS
from ult_pipeline.analysis.regression import (
    IMPROVED,
    INCONCLUSIVE,
    INSUFFICIENT,
    REGRESSED,
    GateConfig,
)
from ult_pipeline.build import Build, tag_of

# The trend report's file in its folder (`analysis.report.write_report` writes it).
REPORT_FILE = "trend_report.html"
# How `__all__` (every request of the run together) is named wherever people read it.
ALL_LABEL = "all operations (load mix)"
# Its verdict cell: the gate never counts it (`gate.decide`, `regression.overall`).
ALL_VERDICT = "informational (not gated)"
# The per-series one-sided p a single build must reach before the family-wise test (`detector.compare`).
_SINGLE_BUILD_ALPHA = DetectorConfig().alpha_suspect
_MIN_ABS_CHANGE = DetectorConfig().min_abs_change
# Decimals: milliseconds to 0.01 ms, percentages to 0.01 (error rates 0.001 %), p-values 4 places.
MS_DECIMALS, PCT_DECIMALS, ERROR_PCT_DECIMALS, P_DECIMALS = 2, 2, 3, 4


def operation_label(operation: str) -> str:
    return ALL_LABEL if operation == ALL_OPERATIONS else operation


def metric_key_part(operation: str) -> str:
    """`userNode`, or `all` for the load mix: the part of a metadata key after `p95_ms/`."""
    return "all" if operation == ALL_OPERATIONS else operation


def build_entries(partition_key: str | None, run_tags: Mapping[str, str] | None = None) -> dict[str, str]:
    """`build` (the partition key) and `image` (its tag): the first entries of a build's page, so a page
    showing an older materialization says which build it is."""
    if not partition_key:
        return {}
    build = Build.from_run(run_tags or {}, partition_key)
    return {"build": partition_key, "image": build.tag if build is not None else tag_of(partition_key)}


def trend_report_link(results_store) -> dict[str, dg.UrlMetadataValue]:
    """`trend_report`: the URL of the trend report (every build's numbers, verdicts, change points) when
    the results store is served (ULT_RESULTS_URL), so a build's page opens it in one click; else nothing."""
    # Imported here: trend_report imports ab_confirmation, which imports this module.
    from ult_pipeline.assets.trend_report import REPORT_FOLDER

    url = results_store.url_of(results_store.partition_dir(REPORT_FOLDER) / REPORT_FILE)
    return {"trend_report": dg.MetadataValue.url(url)} if url else {}


def finite(value: Any) -> float | None:
    """`value` as a float when it is a finite number, else None (NaN, inf, None, text)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def rounded(value: Any, decimals: int) -> float | None:
    number = finite(value)
    return None if number is None else round(number, decimals)


def _signed(value: float | None, decimals: int = 1) -> str:
    return "" if value is None else f"{value:+.{decimals}f}"


def interval_text(low: Any, high: Any) -> str:
    """`+12.1 to +65.0` (percent; 95 % confidence); "" when either end is unknown, `... to unbounded` for inf."""
    lo, hi = finite(low), finite(high)
    if lo is None and hi is None:
        return ""
    return f"{_signed(lo) if lo is not None else 'unbounded'} to {_signed(hi) if hi is not None else 'unbounded'}"


def _p_text(p: float) -> str:
    return f"{p:.2g}" if p >= 0.0001 else "< 0.0001"


def _metric_rows(metrics: list[dict] | pd.DataFrame | None) -> dict[tuple[str, str], dict]:
    if metrics is None:
        return {}
    frame = metrics if isinstance(metrics, pd.DataFrame) else pd.DataFrame(metrics)
    if frame.empty or "operation" not in frame or "metric" not in frame:
        return {}
    return {(str(r["operation"]), str(r["metric"])): r for r in frame.to_dict(orient="records")}


def _shown_metric(op: Mapping[str, Any], rows: dict[tuple[str, str], dict]) -> str:
    """The metric whose change the row shows: what made it regressed (the smallest p_adjusted of its
    regressed metrics), else p95 (the tail the trend report draws)."""
    regressed = [m for m in str(op.get("regressed_metrics") or "").split(",") if m]
    if op.get("verdict") == REGRESSED and regressed:
        def p_of(metric: str) -> float:
            p = finite(rows.get((str(op["operation"]), metric), {}).get("p_adjusted"))
            return math.inf if p is None else p
        return min(regressed, key=p_of)
    return "p95"


def why(op: Mapping[str, Any], metric: Mapping[str, Any] | None, gate: GateConfig) -> str:
    """A short, true reason for the operation's verdict, from the rule that made it.

    `op` is one row of `regression.operation_verdicts` (after `gate.apply_confirmation` when A/B
    re-runs were made), `metric` the row of `regression.analyze` for the metric the table shows.
    """
    operation, verdict, confidence = op.get("operation"), op.get("verdict"), op.get("confidence")
    name = (metric or {}).get("metric", "p95")
    if operation == ALL_OPERATIONS:
        return "the whole run together: shown, never gated (a shift of everything looks like a busy host)"
    if op.get("not_comparable"):
        return f"not judged: {op['not_comparable']}"
    ab_change, ab_p = finite(op.get("ab_change_pct")), finite(op.get("ab_p_value"))
    if confidence in ("confirmed by A/B", "cleared by A/B") and ab_change is not None:
        what = confidence.split(" by")[0]
        text = f"{what} by A/B re-runs: {ab_change:+.1f} %" + (f", p {_p_text(ab_p)}" if ab_p is not None else "")
        ab_mdc = finite(op.get("ab_mdc_pct"))
        if verdict == INCONCLUSIVE and ab_mdc is not None:
            text += f"; they could only see > {ab_mdc:.0f} %"
        return text
    if verdict == INSUFFICIENT:
        return "too few earlier builds measured the same way"
    if verdict == INCONCLUSIVE:
        mdc = finite(op.get("mdc_pct"))
        seen = f"could only see > {mdc:.0f} %" if mdc is not None else "no change could be measured"
        return f"{seen}; a change of {gate.matters_pct:g} % matters"
    if verdict == REGRESSED:
        p_adj = finite((metric or {}).get("p_adjusted"))
        if confidence == "confirmed":
            return f"{name} slower on the newest builds together (confirmed)"
        return (f"{name} slower on this build alone" + (f", p_adjusted {_p_text(p_adj)} < {gate.suspect_alpha:g}"
                                                        if p_adj is not None else "") + " (suspected)")
    if verdict == IMPROVED:
        return f"{name} faster ({confidence or 'suspected'})"
    return _why_unchanged(metric, gate)


def _why_unchanged(metric: Mapping[str, Any] | None, gate: GateConfig) -> str:
    """Why a change is "unchanged": within the noise, below the tolerance, or not significant over the
    family of tests (Holm over the operations, `regression.family_wise`)."""
    if not metric:
        return "no change measured"
    name = metric.get("metric", "p95")
    change, p, p_adj = finite(metric.get("change_pct")), finite(metric.get("p_value")), finite(metric.get("p_adjusted"))
    low, high = finite(metric.get("ci_low_pct")), finite(metric.get("ci_high_pct"))
    if change is None:
        return "no change measured"
    change_abs = finite(metric.get("change_abs"))
    if name == "error_rate" and change_abs is not None and abs(change_abs) < _MIN_ABS_CHANGE:
        return f"below {_MIN_ABS_CHANGE * 100:g} percentage points"
    if abs(change) < gate.tolerance_pct:
        return f"below tolerance {gate.tolerance_pct:g} %"
    if low is not None and high is not None and low <= 0 <= high:
        return "within the noise (interval includes 0)"
    if p is not None and p >= _SINGLE_BUILD_ALPHA:
        return f"p {_p_text(p)} ≥ {_SINGLE_BUILD_ALPHA:g} on this build alone"
    if p_adj is not None and p_adj >= gate.suspect_alpha:
        return f"p_adjusted {_p_text(p_adj)} ≥ {gate.suspect_alpha:g} over all operations"
    return "no significant change"


# Columns of the verdict table, in reading order; `*_pct` percent, `*_ms` milliseconds.
VERDICT_COLUMNS = ["operation", "verdict", "metric", "change_pct", "ci95_pct", "p_adjusted", "mdc_pct", "why",
                   "p50_change_pct", "p95_change_pct", "p50_ms", "p95_ms", "noise_cv_pct", "confidence",
                   "regressed_metrics", "change_points", "ab_change_pct", "ab_p_value", "ab_mdc_pct"]
_STRING_COLUMNS = {"operation", "verdict", "metric", "ci95_pct", "why", "confidence", "regressed_metrics",
                   "change_points"}


def verdict_rows(operations: pd.DataFrame, metrics: list[dict] | pd.DataFrame | None, gate: GateConfig
                 ) -> list[dict[str, Any]]:
    """One display row per operation (the load mix last), keys in `VERDICT_COLUMNS` order, numbers rounded;
    a key is left out where there is no value."""
    rows = _metric_rows(metrics)
    out = []
    records = operations.to_dict(orient="records") if len(operations) else []
    # Regressed operations first, then those that need a look, the load mix last.
    rank = {REGRESSED: 0, INCONCLUSIVE: 1, IMPROVED: 2}
    records.sort(key=lambda r: (r.get("operation") == ALL_OPERATIONS, rank.get(r.get("verdict"), 3)))
    for op in records:
        operation = str(op.get("operation"))
        shown = _shown_metric(op, rows)
        metric = rows.get((operation, shown))
        change = (metric or {}).get("change_pct") if metric else op.get(f"{shown}_change_pct")
        low = (metric or {}).get("ci_low_pct") if metric else op.get(f"{shown}_ci_low_pct")
        high = (metric or {}).get("ci_high_pct") if metric else op.get(f"{shown}_ci_high_pct")
        p_adj = (metric or {}).get("p_adjusted") if metric else op.get("p_adjusted")
        is_all = operation == ALL_OPERATIONS
        if metric is None and not is_all:  # no per-metric rows: the operation's own columns of that metric
            metric = {"metric": shown, "change_pct": change, "ci_low_pct": low, "ci_high_pct": high,
                      "p_adjusted": p_adj}
        values: dict[str, Any] = {
            "operation": operation_label(operation),
            "verdict": ALL_VERDICT if is_all else str(op.get("verdict") or ""),
            "metric": shown,
            "change_pct": rounded(change, PCT_DECIMALS),
            "ci95_pct": interval_text(low, high),
            "p_adjusted": rounded(p_adj, P_DECIMALS),
            "mdc_pct": rounded(op.get("mdc_pct"), PCT_DECIMALS),
            "why": why(op, metric, gate),
            "p50_change_pct": rounded(op.get("p50_change_pct"), PCT_DECIMALS),
            "p95_change_pct": rounded(op.get("p95_change_pct"), PCT_DECIMALS),
            "p50_ms": rounded(op.get("p50_ms"), MS_DECIMALS),
            "p95_ms": rounded(op.get("p95_ms"), MS_DECIMALS),
            "noise_cv_pct": rounded(op.get("noise_cv_pct"), PCT_DECIMALS),
            "confidence": op.get("confidence") if isinstance(op.get("confidence"), str) and not is_all else "",
            "regressed_metrics": op.get("regressed_metrics")
            if isinstance(op.get("regressed_metrics"), str) and not is_all else "",
            "change_points": op.get("change_points") if isinstance(op.get("change_points"), str) else "",
            "ab_change_pct": rounded(op.get("ab_change_pct"), PCT_DECIMALS),
            "ab_p_value": rounded(op.get("ab_p_value"), P_DECIMALS),
            "ab_mdc_pct": rounded(op.get("ab_mdc_pct"), PCT_DECIMALS),
        }
        out.append({k: v for k, v in values.items() if v is not None})
    return out


def verdict_table(operations: pd.DataFrame, metrics: list[dict] | pd.DataFrame | None = None,
                  gate: GateConfig | None = None) -> dg.TableMetadataValue:
    """The operations' verdicts as a UI table: `VERDICT_COLUMNS` that have a value in some row, in that order.

    `metrics` (rows of `regression.analyze`) give each row's change, interval and p_adjusted of the
    metric shown and the reason; without them the operation's p95 columns are shown.
    """
    gate = gate or GateConfig()
    rows = verdict_rows(operations, metrics, gate)
    present = {k for row in rows for k in row}
    columns = [c for c in VERDICT_COLUMNS if c in present]
    # Columns only the A/B re-runs fill stay out when no re-run was made.
    columns = [c for c in columns if not c.startswith("ab_") or any(c in row for row in rows)]
    # Dagster needs every record to have every column: a cell without a value is empty, never NaN.
    records = [dg.TableRecord({c: row.get(c, "") for c in columns}) for row in rows]
    schema = dg.TableSchema(columns=[dg.TableColumn(c, "string" if c in _STRING_COLUMNS else "float")
                                     for c in columns])
    return dg.MetadataValue.table(records=records, schema=schema)
