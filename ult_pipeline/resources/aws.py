"""AWS (or the sandbox's moto) through boto3, with timeouts and retries."""

import dagster as dg
from pydantic import Field

from ult_pipeline.aws.clients import client


class AwsResource(dg.ConfigurableResource):
    region: str = "us-east-1"
    endpoint_url: str | None = Field(default=None, description="a local endpoint (moto) instead of AWS")
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 30.0
    max_attempts: int = Field(default=5, description="botocore standard retries after the first attempt, "
                                                     "throttling included")

    def client(self, service: str, budget_s: float | None = None):
        """A boto3 client; with `budget_s` (seconds), timeouts and attempts lowered so that one call
        fits in it (`ult_pipeline.aws.clients.budget_config`)."""
        return client(
            service, region=self.region, endpoint_url=self.endpoint_url, connect_timeout_s=self.connect_timeout_s,
            read_timeout_s=self.read_timeout_s, max_attempts=self.max_attempts, budget_s=budget_s,
        )
