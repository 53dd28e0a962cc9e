"""Deployers: roll the load-test environment to an image, or restart it on its current one."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod

import dagster as dg
from pydantic import Field

from ult_pipeline.aws.images import Image
from ult_pipeline.deploy.ecs import roll_service, wait_healthy
from ult_pipeline.resources.aws import AwsResource
from ult_pipeline.sandbox import aws as sandbox_aws
from ult_pipeline.sandbox import manager
from ult_pipeline.sandbox.settings import DEFAULT_AWS_PORT, DEFAULT_PORT, SandboxSettings


class TargetDeployerResource(dg.ConfigurableResource, ABC):
    @abstractmethod
    def deploy(self, image: Image) -> dict:
        """Roll the target to ``image`` and wait until it is healthy; returns what to record."""

    @abstractmethod
    def restart(self) -> None:
        """Restart the service on its current image and wait until `/user/health` passes."""


class EcsDeployerResource(TargetDeployerResource):
    """The real load-test environment: an ECS service running the user-service image."""

    aws: AwsResource
    cluster: str
    service: str
    container: str = "user-service"
    repository_uri: str = Field(description="e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com/user-service")
    health_base_url: str = Field(description="the service's base URL, e.g. https://loadtest.example/user")
    stable_timeout_s: float = 900
    health_timeout_s: float = 300

    def deploy(self, image: Image) -> dict:
        ecs = self.aws.client("ecs")
        rolled = roll_service(
            ecs, cluster=self.cluster, service=self.service, container=self.container,
            image=f"{self.repository_uri}@{image.digest}", stable_timeout_s=self.stable_timeout_s,
        )
        healthy = wait_healthy(self.health_base_url, self.health_timeout_s)
        return {
            "task_definition": rolled.task_definition_arn, "previous_task_definition": rolled.previous_task_definition_arn,
            "rollout_state": rolled.rollout_state, "seconds_to_stable": rolled.seconds_to_stable,
            "seconds_to_healthy": rolled.seconds_to_stable + healthy,
        }

    def restart(self) -> None:
        ecs = self.aws.client("ecs")
        ecs.update_service(cluster=self.cluster, service=self.service, forceNewDeployment=True)
        ecs.get_waiter("services_stable").wait(cluster=self.cluster, services=[self.service])
        wait_healthy(self.health_base_url, self.health_timeout_s)


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
