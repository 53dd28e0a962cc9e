"""The trend report: one HTML page of interactive Plotly charts and tables across builds, readable offline.

plotly.js is written into the page once (no CDN: the report is opened from disk or from the
results store's HTTP server on machines without internet access). The page shows, per build in
push order: its status (verdict, or failed / interrupted with the reason), each operation's p95
and p99 relative to the operation's median with verdicts and change points marked, error rates,
throughput and data volume, a comparison of the latest judged build with its baseline, and tables.

The numbers shown are decided here as pure functions (`host_factors`, `noisy_builds`,
`latency_frame`, `latency_range`, `error_range`, `rate_range`), so that tests can check what a
reader sees without a browser.
"""

from __future__ import annotations

import html
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs

from ult_pipeline.analysis.history import ALL_OPERATIONS, build_order
from ult_pipeline.analysis.regression import (
    CONFIRMED,
    IMPROVED,
    INCONCLUSIVE,
    INSUFFICIENT,
    REGRESSED,
    UNCHANGED,
    overall,
)
from ult_pipeline.build import tag_of

# Build statuses besides the verdicts (`regression.overall`'s strings) a judged build has.
FAILED, INTERRUPTED, NO_VERDICT = "failed", "interrupted", "no verdict yet"
NOT_COMPARABLE = "not comparable"  # gate.NOT_COMPARABLE (gate imports the A/B module; this page needs only the name)
STATUS_COLUMNS = ["build", "pushed_at", "status", "reason"]

# A build whose operations are, by their median, this many times slower (or faster) than usual is
# "noisy": the whole host moved (see `noisy_builds`). It is flagged and does not set the scale.
NOISY_FACTOR = 1.5
# ... or this many robust standard deviations of the builds' host factors away, on a noisy history.
NOISY_SIGMAS = 4.0
# Fewer operations than this cannot tell a busy host from a slow operation (regression.MIN_NORMALIZING_OPS).
MIN_OPERATIONS_FOR_HOST = 3
# Smallest half-span of a latency panel (% vs median): a 2 % wobble must look small.
MIN_LATENCY_SPAN_PCT = 10.0
# Smallest top of the error-rate axis (%): a 0.02 % wobble must look tiny, never like a crash.
MIN_ERROR_SPAN_PCT = 1.0
# X labels shown at most, per chart (tags are thinned beyond it; every point keeps its hover).
MAX_X_LABELS = 40
# Off-scale points labelled on a panel at most (the others have their value in the hover).
MAX_OFFSCALE_LABELS = 6

# How each status and verdict is drawn: (marker symbol, colour).
STYLE = {
    "regressed (confirmed)": ("triangle-up", "#c62828"),
    "regressed (suspected)": ("triangle-up-open", "#ef6c00"),
    IMPROVED: ("triangle-down", "#2e7d32"),
    INCONCLUSIVE: ("diamond-open", "#f9a825"),
    UNCHANGED: ("circle", "#546e7a"),
    INSUFFICIENT: ("circle-open", "#9e9e9e"),
    NOT_COMPARABLE: ("circle-open", "#8d6e63"),
    FAILED: ("x", "#b71c1c"),
    INTERRUPTED: ("square-x-open", "#6a1b9a"),
    NO_VERDICT: ("circle-open", "#bdbdbd"),
}
_NOISY_COLOR = "#757575"
_FONT = "system-ui, -apple-system, Segoe UI, Roboto, sans-serif"


# --- statuses ------------------------------------------------------------------------------------
def default_statuses(order: list[str], verdicts: pd.DataFrame) -> pd.DataFrame:
    """`STATUS_COLUMNS` for builds whose runs are not known: the verdict of their operations, else
    "no verdict yet" (pushed_at empty; `write_report` orders by the history)."""
    rows = []
    for build in order:
        ops = verdicts[verdicts["build"] == build] if len(verdicts) and "build" in verdicts else verdicts.iloc[0:0]
        status = overall(ops) if len(ops) and "verdict" in ops else NO_VERDICT
        rows.append({"build": build, "pushed_at": pd.NaT, "status": status, "reason": ""})
    return pd.DataFrame(rows, columns=STATUS_COLUMNS)


def verdict_mark(verdict: str | None, confidence: str | None) -> str | None:
    """The mark an operation's verdict gets on its panel: a `STYLE` key, or None (nothing to mark)."""
    if verdict == REGRESSED:
        return "regressed (confirmed)" if confidence in CONFIRMED else "regressed (suspected)"
    if verdict in (IMPROVED, INCONCLUSIVE):
        return verdict
    return None


# --- scaling -------------------------------------------------------------------------------------
def host_factors(history: pd.DataFrame, metric: str = "p95") -> pd.Series:
    """build -> its host factor (x, 1.0 = usual): the median over its operations of the operation's
    `metric` divided by that operation's median across builds. A busy host slows every operation
    alike (factor 10 when all are 10 times slower); one slower operation leaves it near 1.

    Builds with fewer than `MIN_OPERATIONS_FOR_HOST` operations get NaN.
    """
    rows = history[(history["metric"] == metric) & (history["operation"] != ALL_OPERATIONS) & (history["value"] > 0)]
    if rows.empty:
        return pd.Series(dtype=float)
    logs = np.log(rows.pivot_table(index="build", columns="operation", values="value", aggfunc="median"))
    deviation = logs - logs.median()
    factor = np.exp(deviation.median(axis=1))
    enough = deviation.notna().sum(axis=1) >= MIN_OPERATIONS_FOR_HOST
    return factor.where(enough)


def noisy_builds(factors: pd.Series, min_factor: float = NOISY_FACTOR, sigmas: float = NOISY_SIGMAS) -> list[str]:
    """Builds whose host factor is at least `min_factor` away from 1 (either way) and beyond `sigmas`
    robust standard deviations of all builds' factors (on a history that is noisy throughout, only
    the outliers are flagged)."""
    logs = np.log(factors.dropna().astype(float))
    if logs.empty:
        return []
    spread = 1.4826 * float(np.median(np.abs(logs - np.median(logs))))
    limit = max(math.log(min_factor), sigmas * spread)
    return [str(b) for b, v in logs.items() if abs(v) >= limit]


def latency_frame(history: pd.DataFrame, metrics: tuple[str, ...] = ("p95", "p99")) -> pd.DataFrame:
    """Per operation and latency metric, each build's value (ms) and its change (%) vs the
    operation's median across builds (the reference line at 0 %).

    Columns: operation, metric, build, ms, median_ms, change_pct. `__all__` is left out unless it is
    the only operation.
    """
    rows = history[history["metric"].isin(metrics) & (history["value"] > 0)]
    if (rows["operation"] != ALL_OPERATIONS).any():
        rows = rows[rows["operation"] != ALL_OPERATIONS]
    rows = rows[["operation", "metric", "build", "value"]].rename(columns={"value": "ms"})
    median = rows.groupby(["operation", "metric"])["ms"].transform("median")
    return rows.assign(median_ms=median, change_pct=(rows["ms"] / median - 1.0) * 100.0).reset_index(drop=True)


def latency_range(change_pct: pd.Series | np.ndarray, min_half_span: float = MIN_LATENCY_SPAN_PCT) -> tuple[float, float]:
    """The y range (% vs median) of a latency panel from the values that set its scale (the noisy
    builds' already left out): their extent, padded, at least +-`min_half_span`, never below -100 %
    (no latency falls below zero)."""
    values = np.asarray(change_pct, dtype=float)
    values = values[np.isfinite(values)]
    low = min(float(values.min()) if len(values) else 0.0, -min_half_span)
    high = max(float(values.max()) if len(values) else 0.0, min_half_span)
    pad = 0.08 * (high - low)
    return max(low - pad, -100.0), high + pad


def error_range(error_pct: pd.Series | np.ndarray, min_top: float = MIN_ERROR_SPAN_PCT) -> tuple[float, float]:
    """The y range (%) of the error-rate chart: from 0 (never below) to the highest rate plus room,
    at least `min_top` so that a tiny wobble looks tiny."""
    values = np.asarray(error_pct, dtype=float)
    values = values[np.isfinite(values)]
    top = float(values.max()) * 1.15 if len(values) else 0.0
    return 0.0, max(top, min_top)


def rate_range(values: pd.Series | np.ndarray) -> tuple[float, float]:
    """The y range of a rate or count (req/s, students): from 0 to the highest value plus 10 %."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    top = float(values.max()) * 1.1 if len(values) else 0.0
    return 0.0, top if top > 0 else 1.0


@dataclass(frozen=True)
class Panel:
    """What one operation's latency panel shows (pure data: the figure is drawn from it)."""

    operation: str
    frame: pd.DataFrame  # latency_frame rows of the operation, with x (build position) and offscale (bool)
    y_range: tuple[float, float]  # % vs the operation's median
    noisy: tuple[str, ...]  # noisy builds that have a value on this panel


def latency_panel(frame: pd.DataFrame, operation: str, position: dict[str, int], noisy: list[str]) -> Panel:
    """The panel of `operation` from `latency_frame` rows: the noisy builds do not set the y range;
    points outside it are `offscale` (drawn at its edge with their value)."""
    rows = frame[frame["operation"] == operation]
    rows = rows[rows["build"].isin(position)]
    rows = rows.assign(x=rows["build"].map(position)).sort_values(["metric", "x"])
    is_noisy = rows["build"].isin(noisy)
    low, high = latency_range(rows.loc[~is_noisy, "change_pct"])
    offscale = (rows["change_pct"] > high) | (rows["change_pct"] < low)
    shown = tuple(b for b in dict.fromkeys(rows.loc[is_noisy, "build"]))
    return Panel(operation, rows.assign(offscale=offscale).reset_index(drop=True), (low, high), shown)


# --- figures -------------------------------------------------------------------------------------
def _x_axis(order: list[str]) -> dict:
    step = max(1, math.ceil(len(order) / MAX_X_LABELS))
    ticks = list(range(0, len(order), step))
    return dict(tickmode="array", tickvals=ticks, ticktext=[tag_of(order[i]) for i in ticks], tickangle=-45,
                automargin=True, range=[-0.6, max(len(order) - 0.4, 0.6)], title=dict(text="build (image tag)"),
                showgrid=False, zeroline=False)


def _layout(title: str, order: list[str], y_title: str, y_range: tuple[float, float], height: int) -> dict:
    return dict(
        title=dict(text=title, x=0.01, xanchor="left", y=0.99, yref="container", yanchor="top", font=dict(size=14)),
        height=height, margin=dict(l=70, r=20, t=90, b=40), font=dict(family=_FONT, size=11), hovermode="closest",
        xaxis=_x_axis(order), yaxis=dict(title=dict(text=y_title), range=list(y_range), automargin=True),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0, xanchor="left", font=dict(size=10)),
        plot_bgcolor="#fff", paper_bgcolor="#fff", shapes=[], annotations=[],
    )


def _bands(layout: dict, order: list[str], statuses: pd.DataFrame, noisy: list[str]) -> None:
    """Shaded columns behind failed/interrupted builds (red) and noisy builds (grey), on every chart."""
    position = {b: i for i, b in enumerate(order)}
    marks = [(b, "#ffcdd2") for b in statuses.loc[statuses["status"].isin((FAILED, INTERRUPTED)), "build"]]
    marks += [(b, "#e0e0e0") for b in noisy]
    for build, color in marks:
        if build in position:
            x = position[build]
            layout["shapes"].append(dict(type="rect", xref="x", yref="paper", x0=x - 0.45, x1=x + 0.45, y0=0, y1=1,
                                         fillcolor=color, opacity=0.5, line=dict(width=0), layer="below"))


def _failed_marks(order: list[str], statuses: pd.DataFrame, y: float) -> go.Scatter | None:
    """Failed and interrupted builds as markers at height `y`, the reason in the hover."""
    position = {b: i for i, b in enumerate(order)}
    rows = statuses[statuses["status"].isin((FAILED, INTERRUPTED)) & statuses["build"].isin(position)]
    if rows.empty:
        return None
    return go.Scatter(
        x=[position[b] for b in rows["build"]], y=[y] * len(rows), mode="markers", name="failed / interrupted build",
        marker=dict(symbol=[STYLE[s][0] for s in rows["status"]], color=[STYLE[s][1] for s in rows["status"]], size=11,
                    line=dict(width=2, color=[STYLE[s][1] for s in rows["status"]])),
        customdata=np.column_stack([rows["build"], rows["status"], rows["reason"].fillna("")]),
        hovertemplate="%{customdata[0]}<br><b>%{customdata[1]}</b>: %{customdata[2]}<extra></extra>",
    )


def status_figure(order: list[str], statuses: pd.DataFrame, noisy: list[str], factors: pd.Series) -> go.Figure:
    """One marker per build, in the row of its status (verdict, failed, interrupted, no verdict yet)."""
    position = {b: i for i, b in enumerate(order)}
    rows = statuses[statuses["build"].isin(position)].assign(x=lambda f: f["build"].map(position))
    present = [s for s in STYLE if s in set(rows["status"])] + sorted(set(rows["status"]) - set(STYLE))
    layout = _layout("Builds: status (hover for the reason)", order, "", (-0.5, len(present) - 0.5),
                     150 + 26 * len(present))
    layout["yaxis"] = dict(tickmode="array", tickvals=list(range(len(present))), ticktext=present, automargin=True,
                           range=[-0.6, len(present) - 0.4], showgrid=True, gridcolor="#f0f0f0")
    layout["showlegend"] = False
    layout["margin"] = dict(l=70, r=20, t=40, b=40)  # no legend above the plot
    _bands(layout, order, statuses, noisy)
    figure = go.Figure(layout=layout)
    for row, status in enumerate(present):
        these = rows[rows["status"] == status]
        symbol, color = STYLE.get(status, ("circle", "#000"))
        factor = [f"host x{factors.get(b):.2f}" + (" (noisy)" if b in noisy else "")
                  if pd.notna(factors.get(b, np.nan)) else "" for b in these["build"]]
        figure.add_trace(go.Scatter(
            x=these["x"], y=[row] * len(these), mode="markers", name=status,
            marker=dict(symbol=symbol, color=color, size=11, line=dict(width=2, color=color)),
            customdata=np.column_stack([these["build"], these["reason"].fillna(""), factor]),
            hovertemplate="%{customdata[0]}<br><b>" + html.escape(status)
            + "</b> %{customdata[1]}<br>%{customdata[2]}<extra></extra>",
        ))
    return figure


def _change_points(verdicts: pd.DataFrame, operation: str, position: dict[str, int]) -> list[str]:
    """The builds named as change points of `operation` by any build's stored analysis, each once, in order."""
    if not len(verdicts) or "change_points" not in verdicts:
        return []
    stored = verdicts.loc[verdicts["operation"] == operation, "change_points"].dropna()
    found = {b.strip() for cp in stored for b in str(cp).split(",") if b.strip() in position}
    return sorted(found, key=position.get)


def latency_figure(panel: Panel, order: list[str], verdicts: pd.DataFrame, statuses: pd.DataFrame,
                   factors: pd.Series, change_points: list[str]) -> go.Figure:
    """p95 and p99 of one operation, % vs its median, with verdicts, change points, noisy and failed builds."""
    low, high = panel.y_range
    layout = _layout(f"{panel.operation}: p95 and p99, % vs the operation's median", order,
                     "change vs median (%)", panel.y_range, 360)
    _bands(layout, order, statuses, list(panel.noisy))
    position = {b: i for i, b in enumerate(order)}
    for build in change_points:
        layout["shapes"].append(dict(type="line", xref="x", yref="paper", x0=position[build], x1=position[build],
                                     y0=0, y1=1, line=dict(color="#1565c0", dash="dash", width=1.5),
                                     name=f"change point {build}"))
        layout["annotations"].append(dict(x=position[build], y=1, xref="x", yref="paper", text="change point",
                                          showarrow=False, yanchor="top", xanchor="left", xshift=3,
                                          font=dict(size=9, color="#1565c0")))
    layout["shapes"].append(dict(type="line", xref="paper", yref="y", x0=0, x1=1, y0=0, y1=0,
                                 line=dict(color="#9e9e9e", width=1), layer="below"))
    figure = go.Figure(layout=layout)
    frame = panel.frame
    edge_top, edge_bottom = high - 0.03 * (high - low), low + 0.03 * (high - low)
    # p99 first: p95, the deciding metric, is drawn on top of it.
    for metric, dash, color in (("p99", "dot", "#90a4ae"), ("p95", "solid", "#1565c0")):
        rows = frame[frame["metric"] == metric]
        if rows.empty:
            continue
        figure.add_trace(go.Scatter(
            x=rows["x"], y=rows["change_pct"].where(~rows["offscale"]), mode="lines+markers", name=metric,
            connectgaps=True, line=dict(color=color, dash=dash, width=1.5), marker=dict(size=6, color=color),
            customdata=np.column_stack([rows["build"], rows["ms"], rows["median_ms"]]),
            hovertemplate="%{customdata[0]}<br>" + metric + " %{customdata[1]:.3g} ms (%{y:+.1f} % vs median "
            "%{customdata[2]:.3g} ms)<extra></extra>",
        ))
    off = frame[frame["offscale"]]
    if len(off):
        above = (off["change_pct"] > high).to_numpy()
        noisy = off["build"].isin(panel.noisy).to_numpy()
        note = [f"noisy build: host x{factors.get(b, np.nan):.2f}" if n else "" for b, n in zip(off["build"], noisy, strict=True)]
        figure.add_trace(go.Scatter(
            x=off["x"], y=np.where(above, edge_top, edge_bottom), mode="markers", name="off the scale (hover: value)",
            marker=dict(symbol=np.where(above, "triangle-up", "triangle-down"), size=11, color=_NOISY_COLOR,
                        line=dict(width=1, color="#000")),
            customdata=np.column_stack([off["build"], off["metric"], off["ms"], off["change_pct"], note]),
            hovertemplate="%{customdata[0]}<br>%{customdata[1]} %{customdata[2]:.3g} ms (%{customdata[3]:+.0f} % "
            "vs median), off the scale<br>%{customdata[4]}<extra></extra>",
        ))
        labels = off[off["metric"] == "p95"].head(MAX_OFFSCALE_LABELS)
        for row in labels.itertuples(index=False):
            top = row.change_pct > high
            text = f"{row.change_pct:+.0f} %" + (" (noisy build)" if row.build in panel.noisy else "")
            figure.add_annotation(x=row.x, y=edge_top if top else edge_bottom, text=text, showarrow=False,
                                  font=dict(size=9), xanchor="left", xshift=7, yanchor="middle")
    p95 = frame[frame["metric"] == "p95"].set_index("build")
    if len(verdicts) and len(p95):
        rows = verdicts[(verdicts["operation"] == panel.operation) & verdicts["build"].isin(p95.index)]
        marks = [verdict_mark(v, c) for v, c in zip(rows["verdict"], rows.get("confidence", [None] * len(rows)), strict=True)]
        rows = rows.assign(mark=marks).dropna(subset=["mark"])
        for mark in STYLE:
            hit = rows[rows["mark"] == mark]
            if hit.empty:
                continue
            y = p95.loc[hit["build"], "change_pct"].clip(edge_bottom, edge_top)
            change = pd.to_numeric(hit.get("p95_change_pct"), errors="coerce") if "p95_change_pct" in hit else \
                pd.Series(np.nan, index=hit.index)
            symbol, color = STYLE[mark]
            figure.add_trace(go.Scatter(
                x=hit["build"].map(position), y=y.to_numpy(), mode="markers", name=mark,
                marker=dict(symbol=symbol, size=15, color=color, line=dict(width=2, color=color)),
                customdata=np.column_stack([hit["build"], change.to_numpy(dtype=float)]),
                hovertemplate="%{customdata[0]}<br><b>" + mark + "</b>: p95 %{customdata[1]:+.1f} % vs baseline"
                "<extra></extra>",
            ))
    failed = _failed_marks(order, statuses, edge_bottom)
    if failed is not None:
        figure.add_trace(failed)
    if change_points:  # a legend entry for the dashed lines
        figure.add_trace(go.Scatter(x=[None], y=[None], mode="lines", name="change point",
                                    line=dict(color="#1565c0", dash="dash", width=1.5)))
    return figure


def error_figure(history: pd.DataFrame, order: list[str], statuses: pd.DataFrame, noisy: list[str]) -> go.Figure:
    """Error rate (%) per operation; the axis from 0 to at least `MIN_ERROR_SPAN_PCT`."""
    position = {b: i for i, b in enumerate(order)}
    rows = history[(history["metric"] == "error_rate") & history["build"].isin(position)]
    y_range = error_range(rows["value"] * 100.0)
    layout = _layout("Error rate per operation", order, "failed requests (%)", y_range, 340)
    _bands(layout, order, statuses, noisy)
    figure = go.Figure(layout=layout)
    for operation, op in rows.groupby("operation", sort=True):
        op = op.assign(x=op["build"].map(position)).sort_values("x")
        figure.add_trace(go.Scatter(
            x=op["x"], y=op["value"] * 100.0, mode="lines+markers", name=str(operation), marker=dict(size=5),
            customdata=op[["build"]].to_numpy(),
            hovertemplate="%{customdata[0]}<br>" + html.escape(str(operation)) + " %{y:.3g} % failed<extra></extra>",
        ))
    failed = _failed_marks(order, statuses, y_range[1] * 0.97)
    if failed is not None:
        figure.add_trace(failed)
    return figure


def throughput_figure(history: pd.DataFrame, order: list[str], statuses: pd.DataFrame, noisy: list[str]) -> go.Figure:
    """Requests per second of the whole run (the `__all__` row, else the operations' sum), from 0."""
    position = {b: i for i, b in enumerate(order)}
    rows = history[(history["metric"] == "throughput") & history["build"].isin(position)]
    total = rows[rows["operation"] == ALL_OPERATIONS].groupby("build")["value"].first()
    summed = rows[rows["operation"] != ALL_OPERATIONS].groupby("build")["value"].sum()
    total = pd.concat([total, summed[~summed.index.isin(total.index)]])
    series = pd.DataFrame({"build": total.index, "rate": total.to_numpy()}).assign(x=lambda f: f["build"].map(position))
    series = series.sort_values("x")
    y_range = rate_range(series["rate"])
    layout = _layout("Throughput (all operations)", order, "requests per second (req/s)", y_range, 300)
    layout["showlegend"] = False
    _bands(layout, order, statuses, noisy)
    figure = go.Figure(layout=layout)
    figure.add_trace(go.Scatter(x=series["x"], y=series["rate"], mode="lines+markers", name="throughput",
                                line=dict(color="#1565c0"), customdata=series[["build"]].to_numpy(),
                                hovertemplate="%{customdata[0]}<br>%{y:.4g} req/s<extra></extra>"))
    failed = _failed_marks(order, statuses, y_range[1] * 0.97)
    if failed is not None:
        figure.add_trace(failed)
    return figure


def volume_figure(builds: pd.DataFrame, order: list[str]) -> go.Figure | None:
    """Students seeded per build (bars from 0); None without data volumes."""
    if not len(builds) or "students" not in builds:
        return None
    position = {b: i for i, b in enumerate(order)}
    rows = builds[builds["build"].isin(position)].assign(students=lambda f: pd.to_numeric(f["students"], errors="coerce"))
    rows = rows.dropna(subset=["students"]).assign(x=lambda f: f["build"].map(position))
    if rows.empty:
        return None
    layout = _layout("Data volume", order, "students seeded (students)", rate_range(rows["students"]), 260)
    layout["showlegend"] = False
    figure = go.Figure(layout=layout)
    figure.add_trace(go.Bar(x=rows["x"], y=rows["students"], marker=dict(color="#8d6e63"), name="students",
                            customdata=rows[["build"]].to_numpy(),
                            hovertemplate="%{customdata[0]}<br>%{y:,} students<extra></extra>"))
    return figure


# --- compare two builds --------------------------------------------------------------------------
def latest_judged(order: list[str], statuses: pd.DataFrame, verdicts: pd.DataFrame) -> str | None:
    """The newest build with a judged change on some operation (a verdict with a p95 change), or None."""
    if not len(verdicts) or "p95_change_pct" not in verdicts:
        return None
    judged = set(verdicts.loc[pd.to_numeric(verdicts["p95_change_pct"], errors="coerce").notna(), "build"])
    failed = set(statuses.loc[statuses["status"].isin((FAILED, INTERRUPTED)), "build"])
    candidates = [b for b in order if b in judged and b not in failed]
    return candidates[-1] if candidates else None


def comparison_table(verdicts: pd.DataFrame, candidate: str) -> pd.DataFrame:
    """The candidate's operations (not `__all__`): verdict, p95 change and its interval (%), smallest
    detectable change (%), adjusted p, candidate p95 (ms), sorted by change, largest first."""
    rows = verdicts[(verdicts["build"] == candidate) & (verdicts["operation"] != ALL_OPERATIONS)]
    columns = ["operation", "verdict", "confidence", "p95_ms", "p95_change_pct", "p95_ci_low_pct", "p95_ci_high_pct",
               "mdc_pct", "p_adjusted"]
    table = rows.reindex(columns=columns)
    for column in columns[3:]:
        table[column] = pd.to_numeric(table[column], errors="coerce")
    return table.sort_values("p95_change_pct", ascending=False, na_position="last").reset_index(drop=True)


def compare_range(table: pd.DataFrame, min_half_span: float = MIN_LATENCY_SPAN_PCT) -> tuple[float, float]:
    """The x range (%) of the forest plot: every interval and smallest detectable change, at least
    +-`min_half_span` around 0 so that a 1 % change looks small."""
    values = pd.concat([table[c] for c in ("p95_change_pct", "p95_ci_low_pct", "p95_ci_high_pct", "mdc_pct")])
    values = pd.concat([values, -table["mdc_pct"]]).astype(float)
    values = values[np.isfinite(values)]
    low = min(float(values.min()) if len(values) else 0.0, -min_half_span)
    high = max(float(values.max()) if len(values) else 0.0, min_half_span)
    pad = 0.05 * (high - low)
    return low - pad, high + pad


def compare_figure(table: pd.DataFrame, candidate: str) -> go.Figure:
    """Forest plot: each operation's p95 change vs baseline (%) with its interval, coloured by verdict,
    and the smallest change the run could detect (grey ticks at +-MDC)."""
    ops = list(table["operation"])[::-1]  # largest change at the top
    figure = go.Figure(layout=dict(
        title=dict(text=f"{tag_of(candidate)} vs its baseline: p95 change per operation (95 % interval)", x=0.01,
                   font=dict(size=14)),
        height=120 + 32 * max(len(ops), 1), margin=dict(l=120, r=20, t=60, b=50), font=dict(family=_FONT, size=11),
        xaxis=dict(title=dict(text="p95 change vs baseline (%)"), zeroline=True, zerolinecolor="#616161",
                   automargin=True, range=list(compare_range(table)), gridcolor="#eee"),
        yaxis=dict(categoryorder="array", categoryarray=ops, automargin=True, title=dict(text="operation")),
        legend=dict(orientation="h", yanchor="bottom", y=1.0, x=1.0, xanchor="right"), plot_bgcolor="#fff",
        showlegend=True,
    ))
    mdc = table.dropna(subset=["mdc_pct"])
    if len(mdc):
        figure.add_trace(go.Scatter(
            x=[*mdc["mdc_pct"], *(-mdc["mdc_pct"])], y=[*mdc["operation"], *mdc["operation"]], mode="markers",
            name="smallest detectable change (+-)", marker=dict(symbol="line-ns-open", size=14, color="#9e9e9e",
                                                                 line=dict(width=2, color="#9e9e9e")),
            hovertemplate="%{y}: changes smaller than %{x:.1f} % could not be seen<extra></extra>",
        ))
    marks = [verdict_mark(v, c) or (v if v in STYLE else UNCHANGED) for v, c in zip(table["verdict"], table["confidence"], strict=True)]
    table = table.assign(mark=marks)
    for mark, rows in table.groupby("mark", sort=False):
        symbol, color = STYLE.get(mark, ("circle", "#546e7a"))
        change = rows["p95_change_pct"]
        figure.add_trace(go.Scatter(
            x=change, y=rows["operation"], mode="markers", name=str(mark),
            marker=dict(symbol=symbol, size=12, color=color, line=dict(width=2, color=color)),
            error_x=dict(type="data", symmetric=False, array=(rows["p95_ci_high_pct"] - change).clip(lower=0),
                         arrayminus=(change - rows["p95_ci_low_pct"]).clip(lower=0), color=color, thickness=1.5),
            customdata=np.column_stack([rows["p95_ci_low_pct"], rows["p95_ci_high_pct"], rows["mdc_pct"],
                                        rows["p_adjusted"]]),
            hovertemplate="%{y}: %{x:+.1f} % (95 % interval %{customdata[0]:+.1f} to %{customdata[1]:+.1f} %)<br>"
            "smallest detectable change %{customdata[2]:.1f} %, adjusted p %{customdata[3]:.3g}<extra></extra>",
        ))
    return figure


# --- tables --------------------------------------------------------------------------------------
def fmt(value, decimals: int | None = None) -> str:
    """A cell: numbers to 3 significant figures without exponents (fixed `decimals` when given),
    thousands separated; blanks for None/NaN/''."""
    if value is None or value == "" or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        value = float(value)
        if decimals is not None:
            return f"{value:,.{decimals}f}"
        magnitude = abs(value)
        if magnitude == 0:
            return "0"
        if magnitude >= 100:
            return f"{value:,.0f}"
        if magnitude >= 0.001:
            places = 2 - math.floor(math.log10(magnitude))
            return f"{value:.{places}f}"
        return f"{value:.2g}"
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d %H:%M UTC") if value.tzinfo else value.strftime("%Y-%m-%d %H:%M")
    return str(value)


def table_html(frame: pd.DataFrame | None, headers: dict[str, str], table_id: str, decimals: dict[str, int] | None = None,
               empty: str = "none yet") -> str:
    """An HTML table of `frame`'s columns named in `headers` (column -> header with its unit), in that order."""
    if frame is None or not len(frame):
        return f"<p>{html.escape(empty)}</p>"
    columns = [c for c in headers if c in frame.columns]
    decimals = decimals or {}
    head = "".join(f"<th>{html.escape(headers[c])}</th>" for c in columns)
    body = []
    for row in frame[columns].itertuples(index=False):
        cells = []
        for column, value in zip(columns, row, strict=True):
            text = html.escape(fmt(value, decimals.get(column)))
            numeric = isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
            cells.append(f'<td class="num">{text}</td>' if numeric else f"<td>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


BUILD_HEADERS = {"tag": "image tag", "build": "build (partition key)", "pushed_at": "pushed (UTC)", "status": "status",
                 "reason": "reason / summary", "requests": "requests (count)", "p95_ms": "p95, all ops (ms)",
                 "error_pct": "error rate (%)", "students": "students (count)", "host_factor": "host factor (x)",
                 "dataset_hash": "data set"}
COMPARE_HEADERS = {"operation": "operation", "verdict": "verdict", "confidence": "confidence",
                   "p95_ms": "candidate p95 (ms)", "p95_change_pct": "p95 change (%)",
                   "p95_ci_low_pct": "95 % interval low (%)", "p95_ci_high_pct": "95 % interval high (%)",
                   "mdc_pct": "smallest detectable change (%)", "p_adjusted": "adjusted p (family-wise)"}
TELEMETRY_HEADERS = {"build": "build", "operation": "operation", "status": "status", "k6_count": "k6 requests (count)",
                     "server_count": "server requests (count)", "coverage_pct": "coverage (%)",
                     "k6_p95_ms": "k6 p95 (ms)", "server_p95_ms": "server p95 (ms)",
                     "latency_offset_ms": "k6 - server p95 (ms)", "k6_errors": "k6 errors (count)",
                     "server_errors": "server errors (count)"}


def _builds_table(order: list[str], when: pd.Series, builds: pd.DataFrame, statuses: pd.DataFrame,
                  factors: pd.Series, noisy: list[str]) -> pd.DataFrame:
    """One row per build, newest first: `when` (build -> push time) gives the push times."""
    if not order:
        return pd.DataFrame()
    table = pd.DataFrame({"build": order, "pushed_at": [when.get(b) for b in order]})
    table = table.merge(statuses.drop(columns=["pushed_at"]), on="build", how="left")
    if len(builds):
        table = table.merge(builds.drop_duplicates("build").drop(columns=["pushed_at"], errors="ignore"), on="build",
                            how="left")
    if "error_rate" in table:
        table["error_pct"] = pd.to_numeric(table["error_rate"], errors="coerce") * 100.0
    table["host_factor"] = table["build"].map(factors)
    table["tag"] = table["build"].map(tag_of)
    table["status"] = [f"{s}, noisy host" if b in noisy else s for b, s in zip(table["build"], table["status"], strict=True)]
    for column in ("requests", "students"):
        if column in table:
            table[column] = pd.to_numeric(table[column], errors="coerce").astype("Int64").astype(object)
            table[column] = table[column].where(table[column].notna(), None)
    if "pushed_at" in table:
        table["pushed_at"] = pd.to_datetime(table["pushed_at"], utc=True, errors="coerce")
    return table.iloc[::-1].reset_index(drop=True)  # newest first


WRITES_HEADERS = {"build": "build", "write_verdict": "write test verdict", "write_summary": "summary",
                  "requests": "write requests (count)", "p95_ms": "p95, all writes (ms)",
                  "error_pct": "write error rate (%)", "rows_written": "rows created or changed (count)",
                  "acknowledged": "roster adds acknowledged (count)", "lost": "lost writes (count)",
                  "lost_writes": "no_lost_writes"}


def _writes_table(writes: pd.DataFrame | None, order: list[str]) -> pd.DataFrame | None:
    """The write tests per build, newest first (builds in `order` first, in push order reversed)."""
    if writes is None or not len(writes):
        return None
    table = writes.copy()
    if "error_rate" in table:
        table["error_pct"] = pd.to_numeric(table["error_rate"], errors="coerce") * 100.0
    _whole_numbers(table, ("requests", "rows_written", "acknowledged", "lost"))
    if "lost" in table:
        acknowledged = table["acknowledged"] if "acknowledged" in table else [None] * len(table)
        table["lost_writes"] = [None if lost is None else "FAILED" if lost else
                                "nothing acknowledged" if not acked else "passed"
                                for lost, acked in zip(table["lost"], acknowledged, strict=True)]
    position = {b: i for i, b in enumerate(order)}
    table["_order"] = table["build"].map(lambda b: position.get(b, -1))
    return table.sort_values("_order", ascending=False).drop(columns="_order").reset_index(drop=True)


def _telemetry_table(telemetry: pd.DataFrame | None) -> pd.DataFrame | None:
    if telemetry is None or not len(telemetry):
        return telemetry
    table = telemetry.replace("", np.nan)
    if "coverage" in table:
        table["coverage_pct"] = pd.to_numeric(table["coverage"], errors="coerce") * 100.0
    _whole_numbers(table, ("k6_count", "server_count", "k6_errors", "server_errors"))
    return table


def _whole_numbers(table: pd.DataFrame, columns: tuple[str, ...]) -> None:
    """Counts as ints (None where there is no number), in place: a table shows 12, never 12.0 or nan."""
    for column in columns:
        if column in table:
            values = pd.to_numeric(table[column], errors="coerce")
            table[column] = [None if pd.isna(v) else int(v) for v in values]


# --- the page ------------------------------------------------------------------------------------
_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 1.5em 2em; color: #222; }
h1 { font-size: 1.5em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; padding-bottom: .2em; }
.panels { display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr)); gap: 14px; }
.panel { border: 1px solid #eee; }
table { border-collapse: collapse; font-size: 13px; margin: .6em 0; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.summary { background: #f7f9fc; border: 1px solid #dde3ee; padding: .6em 1em; display: inline-block; }
.failed { color: #b71c1c; font-weight: 600; } .note { color: #555; font-size: 13px; max-width: 70em; }
"""

_CONFIG = {"displaylogo": False, "responsive": True}


def _plain(value):
    """`value` as plain (nested) lists and dicts, None for NaN: plotly.py would write numpy arrays as
    base64 typed arrays, which plotly.js reads but a reader of a plot's `data` (the browser tests) does not."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, pd.Series | pd.Index):
        value = value.to_numpy()
    if isinstance(value, np.ndarray | list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _div(figure: go.Figure, div_id: str) -> str:
    """The figure as a div and its script (plotly.js itself is in the page's head, once)."""
    # The figure was validated when built: its plain form is written as it is.
    plain = {"data": [_plain(trace.to_plotly_json()) for trace in figure.data],
             "layout": _plain(figure.layout.to_plotly_json())}
    return pio.to_html(plain, validate=False, full_html=False, include_plotlyjs=False, div_id=div_id, config=_CONFIG,
                       default_width="100%", default_height=f"{figure.layout.height or 360}px")


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def write_report(
    out_dir: Path,
    history: pd.DataFrame,
    verdicts: pd.DataFrame,
    builds: pd.DataFrame,
    telemetry: pd.DataFrame | None = None,
    statuses: pd.DataFrame | None = None,
    writes: pd.DataFrame | None = None,
) -> dict:
    """Writes out_dir/trend_report.html (interactive, plotly.js inline: works offline).

    `history`: the long table (build, pushed_at, operation, metric, value; ms, fraction, req/s).
    `verdicts`: per build and operation, as `ab_confirmation` stored them (verdict, confidence,
    change_points, p95_change_pct and its interval, mdc_pct, p_adjusted, p95_ms). `builds`: one row
    per build (requests, p95_ms, error_rate, students, ...). `telemetry`: per build and operation
    (`telemetry_gap`). `statuses`: `STATUS_COLUMNS` per build (failed and interrupted ones with their
    reason, also builds absent from the history); default: from the verdicts. `writes`: per build, the
    write tests (write_verdict, write_summary, requests, p95_ms, error_rate, rows_written;
    acknowledged and lost roster writes), when they ran.

    Returns {"html": path, "seconds": float, "change_points": {operation: [build, ...]},
    "noisy": [build, ...], "failed": int (failed or interrupted builds), "candidate": build or None}.
    """
    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    verdicts = verdicts if verdicts is not None else pd.DataFrame(columns=["build", "operation", "verdict"])
    history_order = build_order(history) if len(history) else []
    if statuses is None:
        statuses = default_statuses(history_order, verdicts)
    statuses = statuses.reindex(columns=STATUS_COLUMNS).drop_duplicates("build", keep="last")
    # Push order of every build, in the history or not (an interrupted run is never in the history).
    pushed = history.groupby("build")["pushed_at"].min() if len(history) else pd.Series(dtype="datetime64[ns, UTC]")
    known = pd.to_datetime(statuses.set_index("build")["pushed_at"], utc=True, errors="coerce")
    when = pd.concat([pd.to_datetime(pushed, utc=True), known[~known.index.isin(pushed.index)]])
    order = sorted(when.index, key=lambda b: (pd.isna(when[b]), when[b] if pd.notna(when[b]) else 0, str(b)))
    order = [str(b) for b in order]
    missing = [b for b in order if b not in set(statuses["build"])]
    if missing:
        statuses = pd.concat([statuses, default_statuses(missing, verdicts)], ignore_index=True)
    statuses = statuses.assign(reason=statuses["reason"].fillna(""))

    factors = host_factors(history) if len(history) else pd.Series(dtype=float)
    noisy = noisy_builds(factors)
    position = {b: i for i, b in enumerate(order)}
    frame = latency_frame(history) if len(history) else pd.DataFrame(columns=["operation", "metric", "build"])
    operations = sorted(frame["operation"].unique())
    change_points: dict[str, list[str]] = {}
    panels = []
    for operation in operations:
        panel = latency_panel(frame, operation, position, noisy)
        cps = _change_points(verdicts, operation, position)
        if cps:
            change_points[operation] = cps
        figure = latency_figure(panel, order, verdicts, statuses, factors, cps)
        panels.append(f'<div class="panel">{_div(figure, f"latency-{_slug(operation)}")}</div>')
    status_div = _div(status_figure(order, statuses, noisy, factors), "status") if order else "<p>no builds yet</p>"
    charts = []
    if len(history):
        charts.append(_div(error_figure(history, order, statuses, noisy), "errors"))
        charts.append(_div(throughput_figure(history, order, statuses, noisy), "throughput"))
    volume = volume_figure(builds, order)
    if volume is not None:
        charts.append(_div(volume, "volume"))

    candidate = latest_judged(order, statuses, verdicts)
    if candidate is not None:
        compared = comparison_table(verdicts, candidate)
        status = statuses.set_index("build")["status"].get(candidate, "")
        compare_html = (
            f"<p>Candidate <b>{html.escape(candidate)}</b> ({html.escape(str(status))}) against its baseline: the "
            "comparable builds before it, as the gate compared them (the build's host factor divided out where "
            "determined). An interval that excludes 0 % is a change; whether it counts also depends on the "
            "family-wise adjusted p and the gate's tolerance.</p>"
            + _div(compare_figure(compared, candidate), "compare")
            + table_html(compared, COMPARE_HEADERS, "compare-table",
                         decimals={c: 1 for c in ("p95_change_pct", "p95_ci_low_pct", "p95_ci_high_pct", "mdc_pct")})
        )
    else:
        compare_html = "<p>No build has been judged against a baseline yet.</p>"

    failed = statuses[statuses["status"].isin((FAILED, INTERRUPTED))]
    latest = order[-1] if order else None
    latest_status = statuses.set_index("build")["status"].get(latest, "") if latest else ""
    failed_html = "".join(
        f'<li><span class="failed">{html.escape(s)}</span> {html.escape(b)}: {html.escape(r)}</li>'
        for b, s, r in zip(failed["build"], failed["status"], failed["reason"], strict=True))
    noisy_html = ", ".join(f"{html.escape(b)} (host x{factors[b]:.2f})" for b in noisy) or "none"
    cp_html = html.escape("; ".join(f"{op}: {', '.join(b)}" for op, b in change_points.items()) or "none found")
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ult-pipeline trend report</title>
<style>{_CSS}</style>
<script>{get_plotlyjs()}</script></head><body>
<h1>User-service load tests: trends across builds</h1>
<div class="summary" id="summary">{len(order)} builds; latest <b>{html.escape(str(latest or "none"))}</b>:
<b>{html.escape(str(latest_status))}</b>; failed or interrupted: {len(failed)}; noisy builds: {len(noisy)}.
Generated {time.strftime("%Y-%m-%d %H:%M:%S %Z")}.</div>
{f'<ul id="failed-builds">{failed_html}</ul>' if failed_html else ""}
<p class="note">Verdicts compare each build with the comparable builds before it: "confirmed" regressions are
unlikely to be noise; "suspected" ones rest on one build and need a re-run or the next build. Failed builds
(k6 thresholds crossed, iterations dropped) and interrupted ones have no verdict; the reason is in the hover and
the table. Red columns: failed or interrupted builds; grey columns: noisy builds.</p>
{status_div}
<h2>Latency per operation</h2>
<p class="note">p95 (solid) and p99 (dotted) as % change vs the operation's median over the builds shown (hover
for ms and the full build key). Markers: ▲ regressed, confirmed (filled) or suspected (open); ▼ improved;
◇ inconclusive (the run could not see a change that matters); dashed blue lines: change points. A noisy build
(most operations slower or faster by the same factor: a busy host) does not set the scale: its values are drawn
at the edge of the axis with their value. Noisy builds: {noisy_html}.</p>
<div class="panels">{"".join(panels) or "<p>no latencies yet</p>"}</div>
<h2>Compare two builds</h2>
{compare_html}
<h2>Errors, throughput and data volume</h2>
{"".join(charts) or "<p>no data yet</p>"}
<h2>Builds</h2>
{table_html(_builds_table(order, when, builds, statuses, factors, noisy), BUILD_HEADERS, "builds-table",
            decimals={"error_pct": 3, "host_factor": 2})}
<h2>Change points</h2>
<p id="change-points">{cp_html}</p>
<h2>Write tests</h2>
<p class="note">Builds whose write tests ran (each on freshly seeded data): the administrators' journey
(admin_writes) judged against earlier builds' write runs, the rows it created or changed, and the roster-contention
run: roster adds the service acknowledged, and how many of them were missing from the roster afterwards (lost
writes; any lost write fails <code>no_lost_writes</code>).</p>
{table_html(_writes_table(writes, order), WRITES_HEADERS, "writes-table", decimals={"error_pct": 3},
            empty="no write test has run yet (ULT_WRITE_TESTS)")}
<h2>Server-side telemetry against k6</h2>
{table_html(_telemetry_table(telemetry), TELEMETRY_HEADERS, "telemetry-table")}
</body></html>
"""
    html_path = out_dir / "trend_report.html"
    html_path.write_text(page, encoding="utf-8")
    return {"html": html_path, "seconds": time.perf_counter() - started, "change_points": change_points,
            "noisy": noisy, "failed": len(failed), "candidate": candidate}
