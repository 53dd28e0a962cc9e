"""Deployers: put an image on the target and restart it (the ECS one comes with the builds)."""


from abc import ABC, abstractmethod

import dagster as dg

from ult_pipeline.sandbox import manager
from ult_pipeline.sandbox.settings import DEFAULT_PORT, SandboxSettings


class TargetDeployerResource(dg.ConfigurableResource, ABC):
    @abstractmethod
    def restart(self) -> None:
        """Restart the service on its current image and wait until `/user/health` passes."""


class SandboxDeployerResource(TargetDeployerResource):
    """The sandbox service, (re)started as a local process."""

    home: str = "~/.ult/sandbox"
    port: int = DEFAULT_PORT

    def settings(self) -> SandboxSettings:
        return SandboxSettings.from_env(home=self.home, port=self.port)

    def restart(self) -> None:
        manager.restart_service(self.settings())
