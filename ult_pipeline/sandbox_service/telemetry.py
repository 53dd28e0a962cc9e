"""The service's own request telemetry, on a private Prometheus registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

# Fine-grained from 1 ms (a cached read) to 10 s (a stuck pool).
DURATION_BUCKETS = (
    0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075,
    0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0,
)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class Telemetry:
    def __init__(self, excluded_operations: frozenset[str] = frozenset()) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.excluded_operations = excluded_operations
        self.requests = Counter(
            "ult_sandbox_graphql_requests",
            "GraphQL requests handled, by operation name.",
            ["operation"],
            registry=self.registry,
        )
        self.errors = Counter(
            "ult_sandbox_graphql_errors",
            "GraphQL requests whose response carried an errors array.",
            ["operation"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "ult_sandbox_graphql_request_duration_seconds",
            "Time from request received to response ready, knob delays included.",
            ["operation"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )

    def record(self, operation: str, seconds: float, had_errors: bool) -> None:
        if operation in self.excluded_operations:
            return
        self.requests.labels(operation).inc()
        if had_errors:
            self.errors.labels(operation).inc()
        self.duration.labels(operation).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
