"""Roll an ECS service to a new image: new task-definition revision, update, wait stable."""

from __future__ import annotations

import time
from dataclasses import dataclass

import requests
from botocore.exceptions import ClientError, WaiterError

# Fields describe_task_definition returns that register_task_definition does not accept.
_READ_ONLY = {
    "taskDefinitionArn", "revision", "status", "requiresAttributes", "compatibilities", "registeredAt",
    "registeredBy", "deregisteredAt",
}


class DeploymentError(RuntimeError):
    pass


@dataclass(frozen=True)
class EcsDeployment:
    task_definition_arn: str
    previous_task_definition_arn: str
    rollout_state: str
    seconds_to_stable: float


def roll_service(
    ecs, *, cluster: str, service: str, container: str, image: str, stable_timeout_s: float = 600,
    poll_s: float = 5,
) -> EcsDeployment:
    """Register a revision of the service's task definition with ``image`` and roll the service to it."""
    started = time.monotonic()
    try:
        described = ecs.describe_services(cluster=cluster, services=[service])["services"]
        if not described:
            raise DeploymentError(f"ECS service {service!r} not found in cluster {cluster!r}")
        current_arn = described[0]["taskDefinition"]
        task = ecs.describe_task_definition(taskDefinition=current_arn)["taskDefinition"]
        definitions = task["containerDefinitions"]
        if not any(c["name"] == container for c in definitions):
            names = ", ".join(c["name"] for c in definitions)
            raise DeploymentError(f"task definition {current_arn} has no container {container!r} (it has: {names})")
        revision = {k: v for k, v in task.items() if k not in _READ_ONLY}
        revision["containerDefinitions"] = [{**c, "image": image} if c["name"] == container else c for c in definitions]
        new_arn = ecs.register_task_definition(**revision)["taskDefinition"]["taskDefinitionArn"]
        ecs.update_service(cluster=cluster, service=service, taskDefinition=new_arn, forceNewDeployment=True)
        waiter = ecs.get_waiter("services_stable")
        waiter.wait(cluster=cluster, services=[service],
                    WaiterConfig={"Delay": poll_s, "MaxAttempts": max(1, int(stable_timeout_s // poll_s))})
        final = ecs.describe_services(cluster=cluster, services=[service])["services"][0]
    except WaiterError as err:
        raise DeploymentError(
            f"ECS service {service!r} did not become stable within {stable_timeout_s:.0f} s "
            f"(rollout state: {_rollout_state(ecs, cluster, service)}): {err}"
        ) from None
    except ClientError as err:
        raise DeploymentError(f"ECS refused the deployment of {image}: {err}") from None
    return EcsDeployment(new_arn, current_arn, _rollout_state_of(final), time.monotonic() - started)


def _rollout_state_of(service: dict) -> str:
    primary = next((d for d in service.get("deployments", []) if d.get("status") == "PRIMARY"), {})
    return primary.get("rolloutState", "UNKNOWN")


def _rollout_state(ecs, cluster: str, service: str) -> str:
    try:
        return _rollout_state_of(ecs.describe_services(cluster=cluster, services=[service])["services"][0])
    except (ClientError, IndexError, KeyError):
        return "UNKNOWN"


def wait_healthy(base_url: str, timeout_s: float = 300, poll_s: float = 1.0) -> float:
    """Seconds until `GET <base>/health` answers pass; a DeploymentError when it never does."""
    started = time.monotonic()
    last = "no answer"
    while time.monotonic() - started < timeout_s:
        try:
            response = requests.get(f"{base_url.rstrip('/')}/health", timeout=5)
            if response.status_code == 200 and response.json().get("status") == "pass":
                return time.monotonic() - started
            last = f"HTTP {response.status_code}"
        except (requests.RequestException, ValueError) as err:
            last = type(err).__name__
        time.sleep(poll_s)
    raise DeploymentError(f"{base_url}/health did not pass within {timeout_s:.0f} s (last: {last})")
