"""The pipeline as it runs in production, against moto on loopback, with every AWS call recorded.

`record_production()` starts moto on 127.0.0.1 and provisions what deploy/README.md has an operator
create (`production_stack`: the pipeline's cluster, bucket, the deploy/ecs task definitions, the
daemon's own task; here also the user-service repository with an image and the load-test target's
service). Every boto3 client of the process goes to moto through `AWS_ENDPOINT_URL` (with fake
credentials), so nothing can reach AWS. The environment is the run worker's task definition's
(`ULT_TARGET_MODE=ecs`, `ULT_AWS_ENDPOINT_URL` unset as on AWS), and the Dagster instance has the
production dagster.yaml's `run_launcher` and `compute_logs`, verbatim. Inside
`aws_calls.recording()` it runs:

1. the code location's definitions, loaded in production mode;
2. the ECR sensor's evaluation with their resources (an OCI image without `artifactMediaType`, so
   its manifest is read too);
3. `target_deployment` materialized with those resources, once as the sensor tags its runs and
   once without tags (the image found in ECR by partition key, as the A/B re-deploy of a baseline
   does), and the deployer's `restart` (what the dataset's wipe calls): the ECS roll and its waits;
4. the `EcsRunLauncher` launching a run of the code location from inside the daemon's task (the
   ECS task metadata endpoint on loopback), run monitoring's health checks, termination, and the
   log read run monitoring makes for a worker that failed;
5. the `S3ComputeLogManager` capturing, uploading, reading (and linking) and deleting a step's logs
   (the materializations in 3 upload theirs too);
6. the definitions' S3 IO manager (`ULT_IO_BUCKET`, resources/environment.py): two per-build assets
   materialized with it (listing its prefix, putting each output, getting the first as the second's
   input), then the second alone, as a re-execution from a later step in a new task does.

The AWS state is made by the tests' own clients before recording: those calls are not counted.
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import botocore.waiter
import pytest
import yaml

from ult_pipeline_tests.deploy import production_stack as stack
from ult_pipeline_tests.deploy.aws_calls import Recorder, recording

REGION, ACCOUNT = stack.REGION, stack.ACCOUNT
REPOSITORY = "user-service"
LOG_BUCKET = "ult-pipeline-logs"
PRODUCTION_INSTANCE = stack.DEPLOY / "production" / "dagster.yaml"
# The load-test target as deploy/README.md has it created (its roles are the target's own).
TARGET_TASK_ROLE = f"arn:aws:iam::{ACCOUNT}:role/user-service-loadtest-task"
TARGET_EXECUTION_ROLE = f"arn:aws:iam::{ACCOUNT}:role/user-service-loadtest-execution"


class _Serve(BaseHTTPRequestHandler):
    routes: dict[str, dict] = {}

    def do_GET(self):  # noqa: N802 - http.server's name
        body = self.routes.get(self.path)
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps(body or {}).encode())

    def log_message(self, *args):
        pass


@contextmanager
def json_server(routes: dict[str, dict]) -> Iterator[str]:
    """A loopback HTTP server answering GET <path> with routes[path] as JSON; yields its base URL."""
    handler = type("Handler", (_Serve,), {"routes": routes})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _manifest() -> str:
    # An OCI image manifest: describe_images does not say whether it is runnable (moto reports no
    # artifactMediaType), so the sensor reads it with batch_get_image.
    return json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 2,
                                  "digest": "sha256:" + "0" * 64},
                       "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "size": 1,
                                   "digest": "sha256:" + uuid.uuid4().hex * 2}]})


def _provision(endpoint: str) -> stack.Stack:
    """What deploy/README.md has an operator create (production_stack.provision: network, the pipeline's
    cluster, bucket, deploy/ecs task definitions, the daemon's task), plus the user-service repository
    with an image and the load-test target's service, made by the tests' own clients (not counted)."""
    made = stack.provision(stack.Stack(endpoint=endpoint, pg_port=0, home=Path("/nonexistent"),
                                       values=stack.placeholders(0, LOG_BUCKET)))
    env = stack.container_environment(stack.load_task_definition(stack.DEPLOY / "ecs" / "run-worker.json",
                                                                 made.values), {})
    ecr, ecs = made.client("ecr"), made.client("ecs")
    ecr.create_repository(repositoryName=env["ULT_ECR_REPOSITORY"])
    ecr.put_image(repositoryName=env["ULT_ECR_REPOSITORY"], imageManifest=_manifest(), imageTag="v9.0.0")
    ecs.create_cluster(clusterName=env["ULT_ECS_CLUSTER"])
    target = ecs.register_task_definition(
        family=env["ULT_ECS_SERVICE"], networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="512",
        memory="1024", taskRoleArn=TARGET_TASK_ROLE, executionRoleArn=TARGET_EXECUTION_ROLE,
        containerDefinitions=[{"name": env["ULT_ECS_CONTAINER"], "image": f"{REPOSITORY}:initial", "essential": True,
                               "memory": 1024}])
    ecs.create_service(cluster=env["ULT_ECS_CLUSTER"], serviceName=env["ULT_ECS_SERVICE"], desiredCount=1,
                       taskDefinition=target["taskDefinition"]["taskDefinitionArn"])
    return made


def production_env(made: stack.Stack, health_url: str, results_dir: str) -> dict[str, str]:
    """The run worker's environment from its task definition (deploy/ecs/run-worker.json; the code
    location's and daemon's carry the same pipeline variables), with the target's health on loopback.
    ULT_AWS_ENDPOINT_URL is not set, as on AWS: the clients reach moto through AWS_ENDPOINT_URL."""
    env = made.environment("run-worker", ULT_TARGET_BASE_URL=health_url, ULT_TARGET_URL=health_url + "/user/",
                           ULT_RESULTS_DIR=results_dir)
    env.pop("ULT_AWS_ENDPOINT_URL", None)
    env.pop("AWS_SESSION_TOKEN", None)
    return env


def instance_overrides(local_dir: str) -> dict:
    """The production instance's run launcher and compute logs, verbatim (their `env:` values resolved by
    Dagster from the environment); compute logs' local copies in a directory of the test's."""
    config = yaml.safe_load(PRODUCTION_INSTANCE.read_text())
    logs = copy.deepcopy(config["compute_logs"])
    logs["config"]["local_dir"] = local_dir
    return {"run_launcher": config["run_launcher"], "compute_logs": logs}


def _deploy(defs, instance) -> dict:
    """target_deployment as the sensor's run does it (run tags), and by partition key (no tags: ECR)."""
    import dagster as dg

    from ult_pipeline.assets.target_deployment import target_deployment
    from ult_pipeline.aws.images import list_images
    from ult_pipeline.sensors.ecr_image_sensor import evaluate
    from ult_pipeline.settings import PipelineSettings

    resources = defs.resources
    result = evaluate(dg.build_sensor_context(instance=instance), resources["aws"], PipelineSettings.from_env())
    [request] = result.run_requests
    image = next(i for i in list_images(resources["aws"].client("ecr"), REPOSITORY)
                 if i.partition_key == request.partition_key)
    instance.add_dynamic_partitions("builds", [request.partition_key])
    outcomes = {}
    for how, tags in (("tagged", request.tags), ("by key", {})):
        materialized = dg.materialize([target_deployment], partition_key=request.partition_key, instance=instance,
                                      resources={"aws": resources["aws"], "target_deployer": resources["target_deployer"]},
                                      tags=tags, raise_on_error=False)
        outcomes[how] = [str(e.event_specific_data) for e in materialized.get_step_failure_events()]
    # What the dataset's wipe calls between seeding rounds; EnvVar fields resolved as in a run.
    with resources["target_deployer"].process_config_and_initialize_cm() as deployer:
        deployer.restart()
    return {"partition": request.partition_key, "digest": image.digest, "failures": outcomes}


def _launch_and_terminate(defs, instance) -> dict:
    """A run of the code location launched by the EcsRunLauncher, its health checked, terminated."""
    from dagster._core.test_utils import in_process_test_workspace
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

    from ult_pipeline.jobs import load_test_job

    job = defs.resolve_job_def(load_test_job.name)
    origin = LoadableTargetOrigin(module_name="ult_pipeline.definitions", working_directory=os.getcwd())
    image = stack.placeholders(0, LOG_BUCKET)["PIPELINE_IMAGE"]
    with in_process_test_workspace(instance, origin, container_image=image) as workspace:
        location = workspace.get_code_location(workspace.code_location_names[0])
        [repository] = location.get_repositories().values()
        remote = repository.get_full_job(job.name)
        run = instance.create_run_for_job(job_def=job, remote_job_origin=remote.get_remote_origin(),
                                          job_code_origin=remote.get_python_origin())
        instance.launch_run(run.run_id, workspace)
    run = instance.get_run_by_id(run.run_id)
    launcher = instance.run_launcher
    health = launcher.check_run_worker_health(run)
    terminated = launcher.terminate(run.run_id)
    stopped_health = launcher.check_run_worker_health(instance.get_run_by_id(run.run_id))
    # For a worker whose container exited non-zero, run monitoring reads its last log lines (moto's
    # stopped containers exit 0, so this is the call check_run_worker_health makes then).
    from dagster_aws.ecs.utils import get_task_logs

    tags = instance.get_run_by_id(run.run_id).tags
    try:
        logs = get_task_logs(launcher.ecs, logs_client=launcher.logs, cluster=tags["ecs/cluster"],
                             task_arn=tags["ecs/task_arn"], container_name=launcher.container_name)
    except Exception as err:  # noqa: BLE001 - as the launcher does: no log stream in moto
        logs = [f"{type(err).__name__}"]
    return {"run_id": run.run_id, "tags": dict(run.tags), "health": str(health.status),
            "terminated": terminated, "stopped_health": str(stopped_health.status), "worker_logs": logs}


def _compute_logs(instance) -> dict:
    """A step's output captured, uploaded to S3, read back (as the UI does) and deleted (run deletion)."""
    manager = instance.compute_log_manager
    key = ["run-1", "compute_logs", "target_deployment"]
    with manager.capture_logs(key):
        print("hello from a step")  # noqa: T201 - the captured output
    data = manager.get_log_data(key)
    url = manager.download_url_for_type(key, _stdout())
    manager.delete_logs(log_key=key)
    manager.delete_logs(prefix=["run-1"])
    return {"stdout": (data.stdout or b"").decode(), "url": url}


def _io_manager(defs, instance, partition: str) -> dict:
    """Two dependent per-build assets through the definitions' IO manager (S3 in production): a whole run,
    then the later asset alone, whose input is read back from the bucket as a re-executed run reads it."""
    import dagster as dg

    from ult_pipeline.partitions import builds_partitions

    @dg.asset(partitions_def=builds_partitions)
    def first_output() -> dict:
        return {"build": partition}

    @dg.asset(partitions_def=builds_partitions)
    def second_output(first_output: dict) -> str:
        return first_output["build"]

    io = {"io_manager": defs.resources["io_manager"]}
    whole = dg.materialize([first_output, second_output], partition_key=partition, instance=instance, resources=io)
    later = dg.materialize([first_output, second_output], selection=[second_output], partition_key=partition,
                           instance=instance, resources=io)
    return {"io_manager": type(defs.resources["io_manager"]).__name__,
            "loaded": later.output_for_node("second_output"),
            "steps": [[e.step_key for e in r.get_step_success_events()] for r in (whole, later)]}


def _stdout():
    from dagster._core.storage.compute_log_manager import ComputeIOType

    return ComputeIOType.STDOUT


def record_production() -> tuple[Recorder, dict]:
    """The calls of everything the module's docstring lists, and what each step returned."""
    import dagster as dg

    patch = pytest.MonkeyPatch()
    try:
        for name in [n for n in os.environ if n.startswith(("ULT_", "AWS_", "ECS_", "DAGSTER_"))]:
            patch.delenv(name)
        patch.setenv("MOTO_ECS_SERVICE_RUNNING", "1")  # moto's services reach their desired count
        # botocore's waiters sleep between polls (15 s for services_stable): the same calls, less idling.
        patch.setattr(botocore.waiter, "time", SimpleNamespace(sleep=lambda _s: time.sleep(0.05)))
        with tempfile.TemporaryDirectory(prefix="ult-iam-") as tmp, stack.moto_server(Path(tmp)) as endpoint, \
                json_server({"/health": {"status": "pass"}}) as health_url:
            made = _provision(endpoint)
            with stack.task_metadata_endpoint(made.cluster_arn, made.daemon_task_arn) as metadata:
                env = {**production_env(made, health_url, str(Path(tmp) / "results")),
                       "ECS_CONTAINER_METADATA_URI_V4": metadata}
                for name, value in env.items():
                    patch.setenv(name, value)
                with recording() as recorder, dg.instance_for_test(
                        overrides=instance_overrides(str(Path(tmp) / "compute-logs"))) as instance:
                    from ult_pipeline.definitions import defs

                    loaded = defs()
                    steps = {"deployer": type(loaded.resources["target_deployer"]).__name__,
                             "deploy": _deploy(loaded, instance), "launch": _launch_and_terminate(loaded, instance),
                             "compute_logs": _compute_logs(instance)}
                    steps["io"] = _io_manager(loaded, instance, steps["deploy"]["partition"])
        return recorder, steps
    finally:
        patch.undo()
