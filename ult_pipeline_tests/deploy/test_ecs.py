"""The ECS deployer against moto (real boto3 calls): the roll, and its timeout paths."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ult_pipeline.deploy.ecs import DeploymentError, roll_service, wait_healthy
from ult_pipeline.resources.aws import AwsResource
from ult_pipeline.sandbox import aws as sandbox_aws
from ult_pipeline_tests.conftest import free_port


def test_roll_registers_a_revision_with_the_image_and_updates_the_service(sandbox, sandbox_settings):
    sandbox_aws.ensure_credentials()
    ecs = AwsResource(endpoint_url=sandbox_aws.endpoint(sandbox_settings.aws_port)).client("ecs")
    rolled = roll_service(ecs, cluster=sandbox_aws.CLUSTER, service=sandbox_aws.SERVICE, container="user-service",
                          image="user-service@sha256:" + "a" * 64, stable_timeout_s=30, poll_s=1)
    assert rolled.task_definition_arn != rolled.previous_task_definition_arn
    service = ecs.describe_services(cluster=sandbox_aws.CLUSTER, services=[sandbox_aws.SERVICE])["services"][0]
    assert service["taskDefinition"] == rolled.task_definition_arn
    task = ecs.describe_task_definition(taskDefinition=rolled.task_definition_arn)["taskDefinition"]
    assert task["containerDefinitions"][0]["image"] == "user-service@sha256:" + "a" * 64
    # Everything else of the task definition is kept.
    assert {"name": "NODE_ENV", "value": "development"} in task["containerDefinitions"][0]["environment"]


def test_an_unknown_container_or_service_is_a_clear_error(sandbox, sandbox_settings):
    sandbox_aws.ensure_credentials()
    ecs = AwsResource(endpoint_url=sandbox_aws.endpoint(sandbox_settings.aws_port)).client("ecs")
    with pytest.raises(DeploymentError, match="no container 'api'"):
        roll_service(ecs, cluster=sandbox_aws.CLUSTER, service=sandbox_aws.SERVICE, container="api", image="x")
    with pytest.raises(DeploymentError, match="service 'nope' not found"):
        roll_service(ecs, cluster=sandbox_aws.CLUSTER, service="nope", container="user-service", image="x")


def test_a_service_that_never_becomes_stable_times_out_with_its_rollout_state(tmp_path):
    # A moto whose ECS services never report running: the stable waiter cannot pass.
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "MOTO_ECS_SERVICE_RUNNING"}
    env.update(sandbox_aws.credentials_env())
    moto = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 15
        while not sandbox_aws.is_up(port) and time.monotonic() < deadline:
            time.sleep(0.1)
        sandbox_aws.provision(port)
        ecs = AwsResource(endpoint_url=sandbox_aws.endpoint(port)).client("ecs")
        started = time.monotonic()
        with pytest.raises(DeploymentError, match="did not become stable within 2 s.*rollout state"):
            roll_service(ecs, cluster=sandbox_aws.CLUSTER, service=sandbox_aws.SERVICE, container="user-service",
                         image="user-service@sha256:" + "b" * 64, stable_timeout_s=2, poll_s=1)
        assert time.monotonic() - started < 15
    finally:
        os.killpg(moto.pid, signal.SIGTERM)
        moto.wait(10)


def test_a_service_that_never_answers_health_fails_clearly():
    with pytest.raises(DeploymentError, match=r"/health did not pass within 1 s"):
        wait_healthy(f"http://127.0.0.1:{free_port()}/user", timeout_s=1, poll_s=0.2)
