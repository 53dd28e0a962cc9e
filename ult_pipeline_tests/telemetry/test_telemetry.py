"""The server-side view from Prometheus text, and its comparison with k6's view (pure)."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from ult_pipeline.telemetry.compare import LOW_COVERAGE, MISSING, OK, compare
from ult_pipeline.telemetry.prometheus import histogram_quantile, server_view


def metrics_text() -> str:
    registry = CollectorRegistry()
    requests = Counter("ult_sandbox_graphql_requests", "r", ["operation"], registry=registry)
    errors = Counter("ult_sandbox_graphql_errors", "e", ["operation"], registry=registry)
    duration = Histogram("ult_sandbox_graphql_request_duration_seconds", "d", ["operation"],
                         buckets=(0.001, 0.002, 0.005, 0.01, 0.02), registry=registry)
    for i in range(100):
        requests.labels("myUser").inc()
        duration.labels("myUser").observe(0.0015 if i < 90 else 0.008)
    requests.labels("me").inc(40)
    errors.labels("me").inc(3)
    return generate_latest(registry).decode()


def test_server_view_counts_errors_and_interpolates_p95():
    view = server_view(metrics_text())
    assert view["myUser"]["count"] == 100 and view["myUser"]["errors"] == 0
    # 90 of 100 under 2 ms, 10 in (5, 10] ms: the 95th is half-way into that bucket.
    assert view["myUser"]["p95_ms"] == pytest.approx(7.5)
    assert view["me"] == {"count": 40, "errors": 3, "p95_ms": None}


def test_histogram_quantile_edges():
    assert histogram_quantile(0.5, []) is None
    assert histogram_quantile(0.5, [(0.1, 10.0), (float("inf"), 10.0)]) == pytest.approx(0.05)


def k6_op(name, count=1000, p95=10.0, error_rate=0.0):
    return {"operation": name, "count": count, "p95": p95, "error_rate": error_rate}


def test_gaps_name_missing_and_undercounted_operations_only():
    server = {"me": {"count": 1000, "errors": 0, "p95_ms": 8.0}, "myUser": {"count": 700, "errors": 0, "p95_ms": 9.0}}
    table = compare([k6_op("me"), k6_op("myUser"), k6_op("userNode"), k6_op("__all__")], server).set_index("operation")
    assert table.loc["me", "status"] == OK and table.loc["me", "latency_offset_ms"] == pytest.approx(2.0)
    assert table.loc["myUser", "status"] == LOW_COVERAGE and table.loc["myUser", "coverage"] == pytest.approx(0.7)
    assert table.loc["userNode", "status"] == MISSING
    assert "__all__" not in table.index


def test_error_counts_and_latency_offsets_beyond_tolerance_are_gaps():
    server = {"me": {"count": 1000, "errors": 0, "p95_ms": 8.0}, "myUser": {"count": 1000, "errors": 0, "p95_ms": 200.0}}
    table = compare([k6_op("me", error_rate=0.05), k6_op("myUser")], server).set_index("operation")
    assert table.loc["me", "status"] == "error counts disagree"
    assert table.loc["myUser", "status"] == "latency offset"
