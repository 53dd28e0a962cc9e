"""Where server-side telemetry falls short of what k6 saw (pure)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

OK, MISSING, LOW_COVERAGE, ERRORS_DISAGREE, LATENCY_OFFSET = (
    "ok", "missing server-side", "low coverage", "error counts disagree", "latency offset",
)


@dataclass(frozen=True)
class GapTolerances:
    min_coverage: float = 0.99          # server count / k6 count
    max_coverage: float = 1.05          # more than k6 sent: counted twice, or other traffic
    max_latency_offset_ms: float = 50.0  # k6 p95 minus server p95 (network, queueing, client)
    max_error_difference: int = 2       # or 1 % of requests, whichever is larger


def compare(k6_operations: list[dict], server: dict[str, dict], tolerances: GapTolerances = GapTolerances()) -> pd.DataFrame:
    rows = []
    for op in k6_operations:
        name = op["operation"]
        if name == "__all__":
            continue
        k6_count = int(op["count"])
        k6_errors = round(k6_count * float(op.get("error_rate") or 0.0))
        seen = server.get(name)
        row = {"operation": name, "k6_count": k6_count, "k6_p95_ms": float(op["p95"]), "k6_errors": k6_errors,
               "server_count": None, "coverage": 0.0, "server_p95_ms": None, "latency_offset_ms": None,
               "server_errors": None}
        if seen is None or not seen.get("count"):
            row["status"] = MISSING
            rows.append(row)
            continue
        row.update(server_count=int(seen["count"]), coverage=seen["count"] / k6_count if k6_count else 0.0,
                   server_p95_ms=seen.get("p95_ms"), server_errors=int(seen.get("errors") or 0))
        if row["server_p95_ms"] is not None:
            row["latency_offset_ms"] = row["k6_p95_ms"] - row["server_p95_ms"]
        allowed_errors = max(tolerances.max_error_difference, 0.01 * k6_count)
        if not tolerances.min_coverage <= row["coverage"] <= tolerances.max_coverage:
            row["status"] = LOW_COVERAGE
        elif abs(row["server_errors"] - k6_errors) > allowed_errors:
            row["status"] = ERRORS_DISAGREE
        elif row["latency_offset_ms"] is not None and abs(row["latency_offset_ms"]) > tolerances.max_latency_offset_ms:
            row["status"] = LATENCY_OFFSET
        else:
            row["status"] = OK
        rows.append(row)
    return pd.DataFrame(rows)
