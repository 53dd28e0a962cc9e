"""The k6 runner as a resource."""

import dagster as dg
from pydantic import Field

from ult_pipeline.loadtest.runner import K6Runner, OtlpOutput


class K6RunnerResource(dg.ConfigurableResource):
    script: str | None = Field(default=None, description="entry script (default: k6/main.js of this project)")
    progress_interval_s: float = Field(default=10.0, description="seconds between progress lines in the log")
    otlp_endpoint: str | None = Field(default=None, description="raw series over OTLP, host:port (e.g. "
                                      "otlp.nr-data.net:4318; EU otlp.eu01.nr-data.net:4318); None: off")
    otlp_headers: str = Field(default="", description="e.g. api-key=<license key>; bind with EnvVar")
    otlp_insecure: bool = False

    def runner(self) -> K6Runner:
        otlp = OtlpOutput(self.otlp_endpoint, self.otlp_headers, self.otlp_insecure) if self.otlp_endpoint else None
        return K6Runner(script=self.script, progress_interval_s=self.progress_interval_s, otlp=otlp)
