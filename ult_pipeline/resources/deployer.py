"""Deployers: roll the load-test environment to an image, or restart it on its current one.

The sandbox's deployer is `ult_pipeline.sandbox.deployer.SandboxDeployerResource`: production
code never imports the sandbox.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import dagster as dg
from pydantic import Field

from ult_pipeline.aws.images import Image
from ult_pipeline.deploy.ecs import roll_service, wait_healthy
from ult_pipeline.resources.aws import AwsResource


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
