"""Where the server-side view comes from: New Relic (production) or the sandbox's /user/metrics."""

from __future__ import annotations

from abc import ABC, abstractmethod

import dagster as dg
import requests
from pydantic import Field

from ult_pipeline.telemetry.prometheus import server_view


class TelemetrySourceResource(dg.ConfigurableResource, ABC):
    @abstractmethod
    def server_view(self, start_ms: int, end_ms: int) -> dict[str, dict]:
        """operation -> {count, errors, p95_ms} as the service's own telemetry recorded them in the window."""


class SandboxTelemetryResource(TelemetrySourceResource):
    """The sandbox service's Prometheus counters, which start at zero when the build is deployed."""

    metrics_url: str = Field(description="e.g. http://127.0.0.1:18080/user/metrics")
    timeout_s: float = 10.0

    def server_view(self, start_ms: int, end_ms: int) -> dict[str, dict]:
        # Counters are cumulative since the service started (deploy or wipe restarted it),
        # and the load test's operations are the only traffic with these names.
        response = requests.get(self.metrics_url, timeout=self.timeout_s)
        response.raise_for_status()
        return server_view(response.text)


class NewRelicTelemetryResource(TelemetrySourceResource):
    """Transactions the New Relic agent recorded, per GraphQL operation, through NerdGraph NRQL."""

    account_id: int
    user_key: str = Field(description="a New Relic user key (NerdGraph); bind with EnvVar")
    app_name: str = Field(description="NEW_RELIC_APP_NAME of the load-test environment's service")
    region: str = "US"
    endpoint_base_url: str | None = Field(default=None, description="a local server speaking New Relic's protocol")
    timeout_s: float = 30.0

    def server_view(self, start_ms: int, end_ms: int) -> dict[str, dict]:
        from ult_pipeline.newrelic.nerdgraph import NerdGraphClient
        from ult_pipeline.newrelic.transport import NewRelicEndpoints
        from ult_pipeline.telemetry.newrelic import parse_server_view, server_view_nrql

        endpoints = (NewRelicEndpoints.local(self.endpoint_base_url) if self.endpoint_base_url
                     else NewRelicEndpoints.for_region(self.region))
        with NerdGraphClient(self.account_id, self.user_key, endpoints, timeout_s=self.timeout_s) as client:
            return parse_server_view(client.nrql(server_view_nrql(self.app_name, start_ms, end_ms)))
