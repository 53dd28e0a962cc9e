"""The sandbox's deployer: ECS in moto rolled like the real one, and the local service restarted.

It lives with the sandbox, not in `ult_pipeline.resources`: production code never imports the
sandbox (its packages come with the `sandbox` extra only).
"""

from __future__ import annotations

import time

from ult_pipeline.aws.images import Image
from ult_pipeline.deploy.ecs import roll_service
from ult_pipeline.resources.aws import AwsResource
from ult_pipeline.resources.deployer import TargetDeployerResource
from ult_pipeline.sandbox import aws as sandbox_aws
from ult_pipeline.sandbox import manager
from ult_pipeline.sandbox.settings import DEFAULT_AWS_PORT, DEFAULT_PORT, SandboxSettings


class SandboxDeployerResource(TargetDeployerResource):
    """The sandbox: ECS in moto rolled like the real one, and the local service restarted with the image's knobs."""

    home: str = "~/.ult/sandbox"
    port: int = DEFAULT_PORT
    aws_port: int = DEFAULT_AWS_PORT

    def settings(self) -> SandboxSettings:
        return SandboxSettings.from_env(home=self.home, port=self.port, aws_port=self.aws_port)

    def _aws(self) -> AwsResource:
        sandbox_aws.ensure_credentials()
        return AwsResource(endpoint_url=sandbox_aws.endpoint(self.aws_port), region=sandbox_aws.REGION)

    def deploy(self, image: Image) -> dict:
        started = time.monotonic()
        aws = self._aws()
        rolled = roll_service(
            aws.client("ecs"), cluster=sandbox_aws.CLUSTER, service=sandbox_aws.SERVICE, container="user-service",
            image=f"{sandbox_aws.REPOSITORY}@{image.digest}", stable_timeout_s=60, poll_s=1,
        )
        knobs = sandbox_aws.knobs_of(aws.client("ecr"), image.digest)
        status = manager.restart_service(self.settings(), knobs)
        return {
            "task_definition": rolled.task_definition_arn, "rollout_state": rolled.rollout_state,
            "process": f"pid {status.service_pid}", "knobs": knobs.to_json(),
            "seconds_to_healthy": time.monotonic() - started,
        }

    def restart(self) -> None:
        manager.restart_service(self.settings())
