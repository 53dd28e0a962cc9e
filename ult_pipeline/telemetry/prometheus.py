"""The sandbox service's `/user/metrics` (Prometheus text) as a per-operation server view."""

from __future__ import annotations

from collections import defaultdict

from prometheus_client.parser import text_string_to_metric_families

REQUESTS = "ult_sandbox_graphql_requests"
ERRORS = "ult_sandbox_graphql_errors"
DURATION = "ult_sandbox_graphql_request_duration_seconds"


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """Prometheus' histogram_quantile: linear interpolation inside the bucket holding rank q."""
    buckets = sorted(buckets)
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if bound == float("inf"):
                return lower_bound
            width = count - lower_count
            return lower_bound + (bound - lower_bound) * ((rank - lower_count) / width if width else 0.0)
        lower_bound, lower_count = bound, count
    return lower_bound


def server_view(text: str) -> dict[str, dict]:
    """operation -> {count, errors, p95_ms}, cumulative since the service started."""
    counts: dict[str, float] = defaultdict(float)
    errors: dict[str, float] = defaultdict(float)
    buckets: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            op = sample.labels.get("operation")
            if op is None:
                continue
            if family.name == REQUESTS and sample.name.endswith("_total"):
                counts[op] += sample.value
            elif family.name == ERRORS and sample.name.endswith("_total"):
                errors[op] += sample.value
            elif family.name == DURATION and sample.name.endswith("_bucket"):
                buckets[op].append((float(sample.labels["le"]), sample.value))
    view = {}
    for op in counts:
        p95 = histogram_quantile(0.95, buckets.get(op, []))
        view[op] = {"count": int(counts[op]), "errors": int(errors.get(op, 0)),
                    "p95_ms": None if p95 is None else p95 * 1000}
    return view
