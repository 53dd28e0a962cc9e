"""The k6 runner as a resource."""

import dagster as dg
from pydantic import Field

from ult_pipeline.loadtest.runner import K6Runner


class K6RunnerResource(dg.ConfigurableResource):
    script: str | None = Field(default=None, description="entry script (default: k6/main.js of this project)")
    progress_interval_s: float = Field(default=10.0, description="seconds between progress lines in the log")

    def runner(self) -> K6Runner:
        return K6Runner(script=self.script, progress_interval_s=self.progress_interval_s)
