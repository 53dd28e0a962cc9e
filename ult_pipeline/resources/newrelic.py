"""New Relic ingest (Event and Metric APIs) as a resource; without a key, exports are stored for later."""

import dagster as dg
from pydantic import Field

from ult_pipeline.newrelic.ingest import NewRelicClient
from ult_pipeline.newrelic.transport import NewRelicEndpoints


class NewRelicResource(dg.ConfigurableResource):
    account_id: int = 0
    license_key: str = Field(default="", description="an ingest (license) key; bind with EnvVar; empty: no export")
    region: str = "US"
    endpoint_base_url: str | None = Field(default=None, description="a local server speaking New Relic's protocol")
    send_metrics: bool = Field(default=False, description="also send per-operation gauges to the Metric API")
    timeout_s: float = 30.0
    max_attempts: int = 5

    @property
    def configured(self) -> bool:
        return bool(self.license_key and self.account_id)

    def client(self) -> NewRelicClient:
        endpoints = (NewRelicEndpoints.local(self.endpoint_base_url) if self.endpoint_base_url
                     else NewRelicEndpoints.for_region(self.region))
        return NewRelicClient(self.account_id, self.license_key, endpoints, timeout_s=self.timeout_s,
                              max_attempts=self.max_attempts)
