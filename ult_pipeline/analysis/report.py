"""The trend report: a static HTML page (charts embedded, readable offline) and a PNG chart."""

from __future__ import annotations

import base64
import html
import io
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: files only

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from ult_pipeline.analysis.history import ALL_OPERATIONS, build_order  # noqa: E402

_MARKERS = {"regressed": ("v", "#c62828"), "improved": ("^", "#2e7d32"), "inconclusive": ("o", "#f9a825")}


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def _ticks(ax, builds: list[str]) -> None:
    step = max(1, len(builds) // 12)
    positions = list(range(0, len(builds), step))
    ax.set_xticks(positions)
    ax.set_xticklabels([builds[i] for i in positions], rotation=45, ha="right", fontsize=7)


def latency_chart(history: pd.DataFrame, verdicts: pd.DataFrame, order: list[str],
                  drawn: dict[str, list[str]] | None = None) -> bytes:
    """p95 and p99 per operation across builds, with change points and verdicts marked.

    ``drawn``, when given, receives operation -> the builds where a change point was drawn.
    """
    operations = sorted(o for o in history["operation"].unique() if o != ALL_OPERATIONS) or [ALL_OPERATIONS]
    columns = 2
    rows = (len(operations) + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(12, 2.6 * rows), squeeze=False, sharex=True)
    index = {b: i for i, b in enumerate(order)}
    for ax, operation in zip(axes.flat, operations, strict=False):
        op = history[history["operation"] == operation]
        for metric, style in (("p95", "-"), ("p99", ":")):
            series = op[op["metric"] == metric].assign(x=lambda f: f["build"].map(index)).sort_values("x")
            ax.plot(series["x"], series["value"], style, label=metric, linewidth=1.2)
        marks = verdicts[verdicts["operation"] == operation] if len(verdicts) else verdicts
        p95 = op[op["metric"] == "p95"].set_index("build")["value"]
        for verdict, (marker, color) in _MARKERS.items():
            hit = marks[marks["verdict"] == verdict]["build"] if len(marks) else []
            xs = [index[b] for b in hit if b in p95.index]
            ax.scatter(xs, [p95[b] for b in hit if b in p95.index], marker=marker, color=color, zorder=3,
                       label=verdict if xs else None)
        # Every build's analysis names the change points of its own window: draw each build once.
        cps = {b for cp in (marks["change_points"].dropna() if len(marks) and "change_points" in marks else [])
               for b in str(cp).split(",") if b in index}
        for build in sorted(cps, key=index.get):
            ax.axvline(index[build], color="#999", linestyle="--", linewidth=0.8)
        if drawn is not None and cps:
            drawn[operation] = sorted(cps, key=index.get)
        ax.set_title(operation, fontsize=9)
        ax.set_ylabel("ms", fontsize=8)
        ax.legend(fontsize=7, loc="upper left")
    for ax in axes.flat[len(operations):]:
        ax.set_visible(False)
    for ax in axes[-1]:
        _ticks(ax, order)
    fig.suptitle("Latency per operation across builds (p95 solid, p99 dotted; change points dashed)")
    return _png(fig)


def volume_chart(history: pd.DataFrame, builds: pd.DataFrame, order: list[str]) -> bytes:
    """Error rate per operation, throughput, and data volume across builds."""
    fig, (err_ax, thr_ax, vol_ax) = plt.subplots(3, 1, figsize=(12, 7.5), sharex=True)
    index = {b: i for i, b in enumerate(order)}
    errors = history[history["metric"] == "error_rate"]
    for operation, op in errors.groupby("operation"):
        op = op.assign(x=op["build"].map(index)).sort_values("x")
        err_ax.plot(op["x"], op["value"] * 100, label=operation, linewidth=1)
    err_ax.set_ylabel("errors %")
    err_ax.legend(fontsize=6, ncol=4)
    thr = history[(history["metric"] == "throughput") & (history["operation"] == ALL_OPERATIONS)]
    thr = thr.assign(x=thr["build"].map(index)).sort_values("x")
    thr_ax.plot(thr["x"], thr["value"], color="#1565c0")
    thr_ax.set_ylabel("requests/s")
    if len(builds) and "students" in builds:
        vol = builds.assign(x=builds["build"].map(index)).dropna(subset=["x"]).sort_values("x")
        vol_ax.bar(vol["x"], vol["students"], color="#8d6e63")
    vol_ax.set_ylabel("students seeded")
    _ticks(vol_ax, order)
    fig.suptitle("Errors, throughput and data volume across builds")
    return _png(fig)


def _table(frame: pd.DataFrame) -> str:
    if frame is None or not len(frame):
        return "<p>none yet</p>"
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>" for row in frame.itertuples(index=False)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fmt(value) -> str:
    if isinstance(value, float):
        return "" if pd.isna(value) else f"{value:.3g}"
    return "" if value is None else str(value)


def write_report(
    out_dir: Path,
    history: pd.DataFrame,
    verdicts: pd.DataFrame,
    builds: pd.DataFrame,
    telemetry: pd.DataFrame | None = None,
) -> dict:
    """Writes trend_report.html and trend_latency.png.

    Returns {"html": path, "png": path, "seconds": float, "change_points": {operation: [build, ...]}}.
    """
    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    order = build_order(history) if len(history) else []
    change_points: dict[str, list[str]] = {}
    latency = latency_chart(history, verdicts, order, change_points)
    volume = volume_chart(history, builds, order)
    png_path = out_dir / "trend_latency.png"
    png_path.write_bytes(latency)
    images = "".join(
        f'<figure><img alt="{alt}" src="data:image/png;base64,{base64.b64encode(data).decode()}"></figure>'
        for alt, data in (("latency per operation", latency), ("errors, throughput, data volume", volume))
    )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ult-pipeline trend report</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; font-size: 13px; margin: 1em 0; }}
th, td {{ border: 1px solid #ccc; padding: 3px 8px; text-align: left; }}
th {{ background: #f3f3f3; }}
img {{ max-width: 100%; }}
</style></head><body>
<h1>User-service load tests: trends across builds</h1>
<p>{len(order)} builds, generated {time.strftime("%Y-%m-%d %H:%M:%S %Z")}. Verdicts compare each build with the
complete builds before it; "confirmed" regressions are unlikely to be noise.</p>
{images}
<h2>Change points</h2>
<p>{html.escape("; ".join(f"{op}: {', '.join(b)}" for op, b in change_points.items()) or "none found")}</p>
<h2>Builds</h2>
{_table(builds)}
<h2>Latest verdicts per operation</h2>
{_table(verdicts[verdicts["build"] == order[-1]] if len(verdicts) and order else verdicts)}
<h2>Server-side telemetry against k6</h2>
{_table(telemetry)}
</body></html>
"""
    html_path = out_dir / "trend_report.html"
    html_path.write_text(page, encoding="utf-8")
    return {"html": html_path, "png": png_path, "seconds": time.perf_counter() - started,
            "change_points": change_points}
