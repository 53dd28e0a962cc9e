"""New Relic's per-operation server view: the NRQL that asks for it and the parsing of its rows (pure).

The counterpart of :mod:`.prometheus` (the sandbox's own counters); :mod:`.compare` compares
either view with what k6 saw. The query runs through
:class:`ult_pipeline.newrelic.nerdgraph.NerdGraphClient`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any


def nrql_string(value: str) -> str:
    """A single-quoted NRQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def server_view_nrql(app_name: str, since_ms: int, until_ms: int) -> str:
    """NRQL giving, per transaction name, the count, error count and p95 ``duration`` (seconds) in a window.

    ``since_ms``/``until_ms`` are Unix epoch milliseconds (NRQL takes them as is).
    """
    if until_ms <= since_ms:
        raise ValueError(f"empty window: since {since_ms} >= until {until_ms}")
    return (
        "SELECT count(*) AS 'count', filter(count(*), WHERE error IS true) AS 'errors', "
        "percentile(duration, 95) AS 'p95' "
        f"FROM Transaction WHERE appName = {nrql_string(app_name)} "
        f"SINCE {int(since_ms)} UNTIL {int(until_ms)} FACET name LIMIT MAX"
    )


_OPERATION_TYPES = ("query", "mutation", "subscription")


def operation_from_transaction_name(name: str) -> str:
    """The GraphQL operation name in a New Relic transaction name.

    Assumption (not checked against a live account): with ``NODE_ENV=production`` the
    service's transactions are named after the GraphQL operation, in one of these shapes:

    * ``WebTransaction/Expressjs/POST//user/myUser`` -> ``myUser`` (last path segment);
    * ``WebTransaction/Expressjs/POST//graphql/query/myUser`` and New Relic's Apollo
      instrumentation, ``.../query/<operationName>/<deepest.unique.path>`` -> the segment after
      ``query``/``mutation``/``subscription`` (for ``<anonymous>`` operations, the first field of
      the deepest path);
    * ``.../query myUser`` (type and name separated by a space) -> ``myUser``.

    Anything else yields its last non-empty segment, so unknown shapes still group stably.
    """
    segments = [s.strip() for s in name.split("/") if s.strip()]
    if not segments:
        return name
    for i, seg in enumerate(segments[1:], start=1):
        head, _, rest = seg.partition(" ")
        if head.lower() in _OPERATION_TYPES and rest.strip():
            return rest.strip().split("(")[0].strip()
        if seg.lower() in _OPERATION_TYPES and i + 1 < len(segments):
            candidate = segments[i + 1]
            if candidate == "<anonymous>" and i + 2 < len(segments):
                return segments[i + 2].split(".")[0]
            return candidate
    return segments[-1].split("(")[0].strip()


def _number(value: Any) -> float | None:
    if isinstance(value, Mapping):  # percentile(...) answers {"95": x}
        value = next(iter(value.values()), None)
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def parse_server_view(results: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Map the rows of :func:`server_view_nrql` to ``operation -> {"count", "errors", "p95_ms"}``.

    Several transaction names mapping to one operation are merged: counts and errors add up,
    ``p95_ms`` is the largest p95 (conservative; exact percentiles cannot be merged). A row
    without a p95 gives ``nan``.
    """
    view: dict[str, dict[str, Any]] = {}
    for row in results:
        name = row.get("name", row.get("facet"))
        if isinstance(name, (list, tuple)):
            name = name[0] if name else None
        if not name:
            continue
        operation = operation_from_transaction_name(str(name))
        count = int(_number(row.get("count")) or 0)
        errors = int(_number(row.get("errors")) or 0)
        p95_s = _number(row.get("p95", row.get("percentile.duration")))
        p95_ms = p95_s * 1000.0 if p95_s is not None else math.nan
        entry = view.get(operation)
        if entry is None:
            view[operation] = {"count": count, "errors": errors, "p95_ms": p95_ms}
        else:
            entry["count"] += count
            entry["errors"] += errors
            if math.isnan(entry["p95_ms"]) or (not math.isnan(p95_ms) and p95_ms > entry["p95_ms"]):
                entry["p95_ms"] = p95_ms
    return view
