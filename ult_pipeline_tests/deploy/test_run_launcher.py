"""A push becomes an ECS task, through the production instance and its EcsRunLauncher, against moto.

The production deployment in miniature: the code location (the image's CMD) and the daemon (the
daemon task definition's command), each with the environment of its task definition, the instance
in PostgreSQL, AWS in moto. An image pushed to ECR is seen by the sensor in the code location, its
run is queued, and the daemon's EcsRunLauncher starts the run worker task definition on the
daemon's own cluster and network, with the run's `dagster api execute_run` command and tags.
Nothing executes the ECS task (moto runs no containers): the run worker's side is the image test's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import dagster as dg
import pytest

from ult_pipeline_tests.conftest import free_port
from ult_pipeline_tests.deploy.production_stack import (
    CLUSTER,
    DEPLOY,
    IMAGE_HOME,
    dockerfile_cmd,
    load_task_definition,
    on_loopback,
    running_stack,
    stop_process,
    task_metadata_endpoint,
    wait_for,
)

pytestmark = pytest.mark.slow
TAG = "v9.9.9"


def push(stack, repository: str) -> str:
    ecr = stack.client("ecr")
    ecr.create_repository(repositoryName=repository)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 1,
                                      "digest": "sha256:" + "0" * 64},
                           "layers": [{"mediaType": "x", "size": 1, "digest": "sha256:" + uuid.uuid4().hex * 2}]})
    return ecr.put_image(repositoryName=repository, imageManifest=manifest, imageTag=TAG)["image"]["imageId"]["imageDigest"]


def start(cmd: list[str], env: dict[str, str], log: Path, cwd: Path) -> subprocess.Popen:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("ULT_", "DAGSTER_", "AWS_"))}
    with open(log, "ab") as out:
        return subprocess.Popen(cmd, env={**clean, **env}, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)


def venv_bin(cmd: list[str]) -> list[str]:
    """``cmd`` with its program from this interpreter's environment (the image has it on PATH)."""
    return [str(Path(sys.executable).parent / cmd[0]), *cmd[1:]]


def test_a_pushed_image_becomes_an_ecs_run_worker_task_with_the_runs_command_and_tags(tmp_path, monkeypatch):
    with running_stack(tmp_path) as stack:
        repository = {e["name"]: e["value"] for e in load_task_definition(
            DEPLOY / "ecs" / "code-location.json", stack.values)["containerDefinitions"][0]["environment"]}[
            "ULT_ECR_REPOSITORY"]
        digest = push(stack, repository)
        port = free_port()
        results = tmp_path / "results"
        code_location = start(venv_bin(on_loopback(dockerfile_cmd(), port)),
                              stack.environment("code-location", ULT_RESULTS_DIR=str(results)),
                              tmp_path / "code-location.log", tmp_path)
        daemon = None
        try:
            daemon_definition = load_task_definition(DEPLOY / "ecs" / "daemon.json", stack.values)
            command = [word.replace(IMAGE_HOME, str(stack.home)) for word in
                       daemon_definition["containerDefinitions"][0]["command"]]
            with task_metadata_endpoint(stack.cluster_arn, stack.daemon_task_arn) as metadata:
                daemon = start(venv_bin(command), stack.environment(
                    "daemon", DAGSTER_CODE_LOCATION_HOST="127.0.0.1", DAGSTER_CODE_LOCATION_PORT=str(port),
                    ECS_CONTAINER_METADATA_URI_V4=metadata), tmp_path / "daemon.log", tmp_path)
                for key, value in stack.environment("daemon").items():
                    monkeypatch.setenv(key, value)
                with dg.DagsterInstance.from_config(str(stack.home)) as instance:
                    def launched():
                        runs = instance.get_runs()
                        return next((r for r in runs if "ecs/task_arn" in r.tags), None)

                    run = wait_for(launched, 240, "a run launched into ECS", daemon, tmp_path / "daemon.log", 1.0)
        finally:
            if daemon is not None:
                stop_process(daemon)
            stop_process(code_location)

        # The run is the sensor's, for the pushed image.
        assert run.job_name == "load_test_job"
        assert run.tags["ult/image_tag"] == TAG and run.tags["ult/image_digest"] == digest
        assert run.tags["ecs/cluster"] == stack.cluster_arn

        ecs = stack.client("ecs")
        [task] = ecs.describe_tasks(cluster=CLUSTER, tasks=[run.tags["ecs/task_arn"]], include=["TAGS"])["tasks"]
        # The registered run worker task definition, on the daemon's cluster and network.
        assert task["taskDefinitionArn"] == stack.task_definitions["run-worker"]["taskDefinitionArn"]
        assert task["launchType"] == "FARGATE"
        details = {d["name"]: d["value"] for a in task["attachments"] for d in a["details"]}
        assert details["subnetId"] == stack.subnet
        # The run's command in the `run` container.
        [override] = task["overrides"]["containerOverrides"]
        assert override["name"] == "run"
        assert override["command"][:3] == ["dagster", "api", "execute_run"]
        args = json.loads(override["command"][3])
        assert run.run_id in json.dumps(args)
        # The run's tags on the task.
        tags = {t["key"]: t["value"] for t in task["tags"]}
        assert tags["dagster/run_id"] == run.run_id
        assert tags["dagster/job_name"] == "load_test_job"
        assert tags["ult/image_tag"] == TAG and tags["ult/image_digest"] == digest
        assert tags["dagster/partition"] == run.tags["dagster/partition"]
        assert tags["ult/component"] == "run-worker"
        # The daemon's logs say nothing went wrong on the way.
        log = (tmp_path / "daemon.log").read_text(errors="replace")
        assert "Traceback" not in log, log[-4000:]
