"""Build New Relic custom events and Metric API gauges from a load test's per-operation stats (pure).

Nothing here does I/O: :mod:`ult_pipeline.newrelic.ingest` sends what these functions build.

New Relic's documented limits (:mod:`.limits`) are enforced here rather than left to the
collector, which accepts oversized payloads with a 200 and drops them later (visible only as
``NrIntegrationError`` events).

Too many attributes or a too-long name raise :class:`ValueError` naming the event (silently
dropping attributes would hide data); too-long string values are truncated. ``None``, NaN and
infinite values are dropped (New Relic rejects NaN, and JSON has no such value).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from ult_pipeline.newrelic.limits import (
    MAX_ATTRIBUTE_NAME_LENGTH,
    MAX_EVENT_ATTRIBUTES,
    MAX_METRIC_ATTRIBUTES,
    MAX_STRING_VALUE_LENGTH,
)

OPERATION_EVENT_TYPE = "UltOperationResult"
RUN_EVENT_TYPE = "UltLoadTestRun"
METRIC_PREFIX = "ult.loadtest"

#: Row of the per-operation stats that aggregates every operation; not an operation.
ALL_OPERATIONS = "__all__"


# operation-stats key -> event attribute name, in the order they appear in an event
_OPERATION_ATTRIBUTES: tuple[tuple[str, str], ...] = (
    ("p50", "p50"),
    ("p90", "p90"),
    ("p95", "p95"),
    ("p99", "p99"),
    ("max", "max"),
    ("mean", "mean"),
    ("rate", "rate"),
    ("error_rate", "errorRate"),
    ("check_pass_rate", "checkPassRate"),
    ("count", "count"),
)

# event attribute -> accepted keys of the totals dict (first present wins)
_RUN_TOTALS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("requests", ("requests", "http_reqs", "count")),
    ("errorRate", ("errorRate", "error_rate")),
    ("p95", ("p95", "p95_ms")),
    ("p99", ("p99", "p99_ms")),
    ("iterations", ("iterations",)),
    ("droppedIterations", ("droppedIterations", "dropped_iterations")),
    ("interrupted", ("interrupted",)),
)

# metric name suffix -> operation-stats key
_GAUGES: tuple[tuple[str, str], ...] = (
    ("http_req_duration.p50", "p50"),
    ("http_req_duration.p90", "p90"),
    ("http_req_duration.p95", "p95"),
    ("http_req_duration.p99", "p99"),
    ("http_req_duration.max", "max"),
    ("http_req_duration.mean", "mean"),
    ("http_reqs.rate", "rate"),
    ("http_reqs.count", "count"),
    ("http_req_failed.rate", "error_rate"),
    ("checks.pass_rate", "check_pass_rate"),
)


def clean_value(value: Any) -> Any:
    """An attribute value New Relic accepts, or ``None`` if the attribute must be dropped.

    Numbers stay numbers (numpy/pandas scalars become Python ones), booleans stay booleans,
    strings are truncated to 4096 characters, anything else is sent as its ``str``.
    """
    if value is None:
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy / pandas scalar
        try:
            value = value.item()
        except (TypeError, ValueError):
            pass
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if not isinstance(value, str):
        try:  # pandas.NA, NaT and friends
            if value != value:  # NaN-like
                return None
        except (TypeError, ValueError):
            pass
        value = str(value)
    return value[:MAX_STRING_VALUE_LENGTH]


def _checked_attributes(what: str, attributes: Mapping[str, Any], max_attributes: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, raw in attributes.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"{what}: attribute names must be non-empty strings, got {name!r}")
        if len(name) > MAX_ATTRIBUTE_NAME_LENGTH:
            raise ValueError(
                f"{what}: attribute name {name[:40]!r}... is {len(name)} characters long; "
                f"New Relic allows at most {MAX_ATTRIBUTE_NAME_LENGTH}"
            )
        value = clean_value(raw)
        if value is not None:
            out[name] = value
    if len(out) > max_attributes:
        raise ValueError(f"{what} has {len(out)} attributes; New Relic allows at most {max_attributes}")
    return out


def check_event(event: Mapping[str, Any]) -> dict[str, Any]:
    """Validate and clean one custom event (it must carry a string ``eventType``)."""
    event_type = event.get("eventType")
    if not isinstance(event_type, str) or not event_type:
        raise ValueError(f"event without an eventType: keys {sorted(event)[:10]}")
    return _checked_attributes(f"event {event_type!r}", event, MAX_EVENT_ATTRIBUTES)


def _is_all_row(operation: Mapping[str, Any]) -> bool:
    return operation.get("operation") == ALL_OPERATIONS


def operation_events(operations: Iterable[Mapping[str, Any]], common: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One ``UltOperationResult`` event per operation (the ``__all__`` row is skipped).

    Attributes: ``operation``, ``p50``/``p90``/``p95``/``p99``/``max``/``mean`` (ms, of the
    successful requests; omitted when none succeeded), ``rate`` (requests/s), ``errorRate``,
    ``checkPassRate``, ``count`` (every request), plus every key of ``common`` (the
    per-operation values win on a name clash; ``eventType`` always wins). ``failed_p50`` is
    not sent: a failed request's duration is not a latency.
    """
    events = []
    for op in operations:
        if _is_all_row(op):
            continue
        name = op.get("operation")
        if name is None or (isinstance(name, float) and math.isnan(name)):
            raise ValueError(f"operation stats row without an operation name: {dict(op)!r}"[:300])
        attrs: dict[str, Any] = dict(common)
        attrs["operation"] = str(name)
        for key, attr in _OPERATION_ATTRIBUTES:
            attrs[attr] = op.get(key)
        attrs["count"] = _as_int(attrs["count"])
        attrs["eventType"] = OPERATION_EVENT_TYPE
        events.append(
            _checked_attributes(f"event {OPERATION_EVENT_TYPE!r} (operation {name!r})", attrs, MAX_EVENT_ATTRIBUTES)
        )
    return events


def _as_int(value: Any) -> Any:
    """Counts come out of pandas as floats; send whole numbers as integers."""
    value = clean_value(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _first(totals: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        if key in totals and clean_value(totals[key]) is not None:
            return totals[key]
    return None


def run_event(
    totals: Mapping[str, Any],
    common: Mapping[str, Any],
    *,
    verdict: str | None,
    duration_s: float,
    timestamp: int,
) -> dict[str, Any]:
    """One ``UltLoadTestRun`` event for a whole run.

    ``totals`` may use camelCase or the stats' snake_case names: ``requests`` (or
    ``http_reqs``/``count``), ``errorRate`` (``error_rate``), ``p95`` (``p95_ms``, as
    :meth:`LoadTestResult.totals` names it), ``p99`` (``p99_ms``), ``iterations``,
    ``droppedIterations`` (``dropped_iterations``), ``interrupted``. Latencies are of the
    successful requests; NaN (every request failed) is omitted, not sent as 0. ``verdict`` is omitted
    while unknown. ``timestamp`` is the event's time, in Unix seconds or milliseconds (New
    Relic accepts both).
    """
    attrs: dict[str, Any] = dict(common)
    for attr, keys in _RUN_TOTALS:
        attrs[attr] = _first(totals, keys)
    for attr in ("requests", "iterations", "droppedIterations"):
        attrs[attr] = _as_int(attrs[attr])
    if attrs.get("interrupted") is not None:
        attrs["interrupted"] = bool(attrs["interrupted"])
    attrs["verdict"] = verdict
    attrs["durationSeconds"] = float(duration_s)
    attrs["timestamp"] = int(timestamp)
    attrs["eventType"] = RUN_EVENT_TYPE
    return _checked_attributes(f"event {RUN_EVENT_TYPE!r}", attrs, MAX_EVENT_ATTRIBUTES)


def gauges(
    operations: Iterable[Mapping[str, Any]], common: Mapping[str, Any], timestamp_ms: int
) -> list[dict[str, Any]]:
    """Metric API gauges per operation (the ``__all__`` row is skipped).

    Names: ``ult.loadtest.http_req_duration.{p50,p90,p95,p99,max,mean}`` (ms),
    ``ult.loadtest.http_reqs.{rate,count}``, ``ult.loadtest.http_req_failed.rate``,
    ``ult.loadtest.checks.pass_rate``. Percentiles are gauges because the Metric API's
    ``summary`` type carries only count/sum/min/max. Attributes: ``common`` plus ``operation``.
    Missing or NaN values produce no gauge.
    """
    metrics = []
    for op in operations:
        if _is_all_row(op):
            continue
        name = str(op.get("operation"))
        attributes = _checked_attributes(
            f"metric attributes (operation {name!r})", {**common, "operation": name}, MAX_METRIC_ATTRIBUTES
        )
        for suffix, key in _GAUGES:
            value = clean_value(op.get(key))
            if value is None or isinstance(value, (bool, str)):
                continue
            metrics.append(
                {
                    "name": f"{METRIC_PREFIX}.{suffix}",
                    "type": "gauge",
                    "value": value,
                    "timestamp": int(timestamp_ms),
                    "attributes": dict(attributes),
                }
            )
    return metrics
