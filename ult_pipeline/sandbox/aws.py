"""The sandbox's AWS: moto_server on loopback with the ECR repository and ECS service.

moto keeps its state in memory, so `up` (re)creates the repository, cluster, task
definition and service whenever it starts a fresh moto.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import requests

from ult_pipeline import processes
from ult_pipeline.aws.clients import client
from ult_pipeline.sandbox.service_process import ServiceKnobs

REPOSITORY = "user-service"
CLUSTER = "ult-loadtest"
SERVICE = "user-service"
TASK_FAMILY = "user-service"
REGION = "us-east-1"
KNOBS_ANNOTATION = "ult.sandbox/knobs"
# moto needs credentials to be present; they are never checked.
_FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "sandbox", "AWS_SECRET_ACCESS_KEY": "sandbox", "AWS_DEFAULT_REGION": REGION}


class SandboxAwsError(RuntimeError):
    pass


def endpoint(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def credentials_env() -> dict[str, str]:
    return dict(_FAKE_CREDENTIALS)


def ensure_credentials() -> None:
    """boto3 needs credentials to sign requests; moto accepts any. Real ones are left alone."""
    for key, value in _FAKE_CREDENTIALS.items():
        os.environ.setdefault(key, value)


def _clients(port: int):
    ensure_credentials()
    return (client("ecr", region=REGION, endpoint_url=endpoint(port)),
            client("ecs", region=REGION, endpoint_url=endpoint(port)))


def is_up(port: int) -> bool:
    try:
        return requests.get(f"{endpoint(port)}/moto-api/", timeout=1).status_code == 200
    except requests.RequestException:
        return False


def start(port: int, log_path: Path, timeout: float = 15.0) -> int:
    moto = Path(sys.executable).parent / "moto_server"
    # services_stable passes only when moto reports ECS services as running.
    env = {**os.environ, **_FAKE_CREDENTIALS, "MOTO_ECS_SERVICE_RUNNING": "1"}
    with open(log_path, "ab") as log_file:
        proc = subprocess.Popen(
            [str(moto), "-H", "127.0.0.1", "-p", str(port)], stdout=log_file, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, env=env, start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SandboxAwsError(f"moto_server exited with code {proc.returncode}; see {log_path}")
            if is_up(port):
                provision(port)
                return proc.pid
            time.sleep(0.1)
        raise SandboxAwsError(f"moto_server did not answer on port {port} within {timeout:.0f} s; see {log_path}")
    except BaseException:
        # A failed start, or a stop (Ctrl-C, SIGTERM) while waiting: its pid is recorded nowhere yet,
        # so nobody could stop it later and it would hold the port.
        processes.stop_group(proc, grace_s=10.0)
        raise


def provision(port: int) -> None:
    ecr, ecs = _clients(port)
    try:
        ecr.create_repository(repositoryName=REPOSITORY)
    except ecr.exceptions.RepositoryAlreadyExistsException:
        pass
    ecs.create_cluster(clusterName=CLUSTER)
    if not ecs.describe_services(cluster=CLUSTER, services=[SERVICE])["services"]:
        task = ecs.register_task_definition(
            family=TASK_FAMILY, networkMode="bridge",
            containerDefinitions=[{
                "name": "user-service", "image": f"{REPOSITORY}:initial", "memory": 1024, "essential": True,
                "portMappings": [{"containerPort": 8080}],
                "environment": [{"name": "NODE_ENV", "value": "development"}, {"name": "ROUTE_PREFIX", "value": "/user"}],
            }],
        )["taskDefinition"]
        ecs.create_service(cluster=CLUSTER, serviceName=SERVICE, taskDefinition=task["taskDefinitionArn"], desiredCount=1)


def push(port: int, tag: str, knobs: ServiceKnobs) -> dict:
    """Push an image manifest whose annotations carry the service's knobs; returns its digest."""
    ecr, _ = _clients(port)
    # moto derives the digest from the layer digests: a fresh layer gives every push its own.
    layer = "sha256:" + hashlib.sha256(f"{tag}:{secrets.token_hex(8)}".encode()).hexdigest()
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 2,
                   "digest": "sha256:" + hashlib.sha256(b"{}").hexdigest()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "size": 1, "digest": layer}],
        "annotations": {KNOBS_ANNOTATION: json.dumps(knobs.to_json(), sort_keys=True)},
    }
    image = ecr.put_image(repositoryName=REPOSITORY, imageManifest=json.dumps(manifest), imageTag=tag)["image"]
    return {"tag": tag, "digest": image["imageId"]["imageDigest"]}


def knobs_of(ecr, digest: str) -> ServiceKnobs:
    """The knobs an image carries (none for an image without the annotation)."""
    images = ecr.batch_get_image(repositoryName=REPOSITORY, imageIds=[{"imageDigest": digest}])["images"]
    if not images:
        raise SandboxAwsError(f"image {digest} is not in the repository {REPOSITORY}")
    manifest = json.loads(images[0]["imageManifest"])
    return ServiceKnobs.from_json(json.loads((manifest.get("annotations") or {}).get(KNOBS_ANNOTATION, "{}")))
