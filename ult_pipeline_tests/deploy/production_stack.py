"""A production deployment in miniature, on loopback: moto for AWS, PostgreSQL on TCP, the ECS task
definitions of deploy/ecs/ registered, and the environment each Dagster process gets from its task
definition (placeholders filled in, endpoints pointed at the local servers).

Used by the production instance and run launcher tests. Nothing here contacts AWS: every boto3
client of these processes goes to moto through AWS_ENDPOINT_URL, with fake credentials.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import string
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import requests

from ult_pipeline_tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
TASK_DEFINITIONS = sorted((DEPLOY / "ecs").glob("*.json"))
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's account
CLUSTER = "ult-pipeline"
IMAGE_HOME = "/opt/dagster/home"  # $DAGSTER_HOME in the image (deploy/Dockerfile)
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}

# moto 5.2.5 fails `run_task` for every awsvpc task (Fargate's only network mode): its ENI has no
# private_dns_name. The server below gets that one attribute; everything else is moto's own.
_MOTO_SERVER = """
import sys
from moto.ec2.models.elastic_network_interfaces import NetworkInterface
if not hasattr(NetworkInterface, "private_dns_name"):
    NetworkInterface.private_dns_name = property(
        lambda self: "ip-" + str(self.private_ip_address).replace(".", "-") + ".ec2.internal")
from moto.server import main
main(["-H", "127.0.0.1", "-p", sys.argv[1]])
"""


def placeholders(pg_port: int, bucket: str) -> dict[str, str]:
    """Values for the ${...} placeholders of deploy/ecs/*.json (deploy/README.md lists them)."""
    return {
        "AWS_REGION": REGION, "AWS_ACCOUNT_ID": ACCOUNT,
        "PIPELINE_IMAGE": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/ult-pipeline:test",
        "PIPELINE_BUCKET": bucket, "DAGSTER_PG_HOST": "127.0.0.1",
        # nothing listens there: loading definitions must not contact the target
        "TARGET_BASE_URL": "http://127.0.0.1:9",
        "NEWRELIC_ACCOUNT_ID": "1", "RESULTS_EFS_ID": "fs-12345678", "RESULTS_EFS_ACCESS_POINT_ID": "fsap-12345678",
    }


def load_task_definition(path: Path, values: dict[str, str]) -> dict:
    """A task definition file with its ${...} placeholders filled in (a missing value is a KeyError)."""
    return json.loads(string.Template(path.read_text()).substitute(values))


def container_environment(task_definition: dict, secret_values: dict[str, str]) -> dict[str, str]:
    """What ECS puts in the container's environment: `environment`, and `secrets` resolved."""
    [container] = task_definition["containerDefinitions"]
    env = {e["name"]: e["value"] for e in container.get("environment", [])}
    for secret in container.get("secrets", []):
        env[secret["name"]] = secret_values.get(secret["name"], f"secret-of-{secret['name']}")
    return env


def stop_process(proc: subprocess.Popen, timeout: float = 15) -> None:
    """SIGTERM the process group, SIGKILL it if it outlives ``timeout``."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    except ProcessLookupError:
        pass


def wait_for(check, timeout: float, what: str, proc: subprocess.Popen | None = None, log: Path | None = None,
             interval: float = 0.5):
    """Poll ``check()`` until it returns something truthy, or fail with ``what`` and the log's tail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(interval)
    tail = log.read_text(errors="replace")[-4000:] if log and log.exists() else ""
    raise AssertionError(f"{what}: not within {timeout:.0f} s (exit code {proc.poll() if proc else None})\n{tail}")


@contextmanager
def moto_server(log_dir: Path) -> Iterator[str]:
    """moto_server on a free loopback port; yields its endpoint."""
    port = free_port()
    log = log_dir / "moto.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-c", _MOTO_SERVER, str(port)], stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True,
                                env={**os.environ, **FAKE_CREDENTIALS, "AWS_DEFAULT_REGION": REGION})
    endpoint = f"http://127.0.0.1:{port}"
    try:
        def up():
            try:
                return requests.get(f"{endpoint}/moto-api/", timeout=1).status_code == 200
            except requests.RequestException:
                return False
        wait_for(up, 30, "moto_server answers", proc, log)
        yield endpoint
    finally:
        stop_process(proc)


@contextmanager
def postgres_on_tcp() -> Iterator[int]:
    """A throwaway PostgreSQL (pgserver's binaries) listening on 127.0.0.1, trust auth; yields its port.

    dagster-postgres builds a URL from host and port, so a Unix socket (pgserver's default) will not do.
    """
    import pgserver
    from pgserver._commands import pg_ctl

    pgdata = Path(tempfile.mkdtemp(prefix="ult-pg-")) / "data"
    server = pgserver.get_server(pgdata, cleanup_mode=None)  # initdb (as the pgserver user when root), socket only
    user = server.system_user
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user, timeout=60)
    port = free_port()
    pg_ctl(["-w", "-o", "-h 127.0.0.1", "-o", f"-p {port}", "-o", f"-k {pgdata}", "-l", str(pgdata / "tcp.log"),
            "start"], pgdata=pgdata, user=user, timeout=60)
    try:
        import psycopg

        # The database the deployment's RDS instance is created with (deploy/README.md).
        with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE dagster")
        yield port
    finally:
        try:
            pg_ctl(["-w", "-m", "immediate", "stop"], pgdata=pgdata, user=user, timeout=60)
        finally:
            shutil.rmtree(pgdata.parent, ignore_errors=True)


class _TaskMetadata(BaseHTTPRequestHandler):
    """ECS's task metadata endpoint (v4) as the launching task sees it: /task names the task and cluster."""

    task: dict = {}

    def do_GET(self):  # noqa: N802 (http.server's name)
        body = json.dumps(self.task if self.path.rstrip("/").endswith("/task") else {"Name": "daemon"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@contextmanager
def task_metadata_endpoint(cluster_arn: str, task_arn: str) -> Iterator[str]:
    """ECS_CONTAINER_METADATA_URI_V4 for a process that plays the task ``task_arn``."""
    handler = type("Metadata", (_TaskMetadata,), {"task": {"Cluster": cluster_arn, "TaskARN": task_arn}})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v4/daemon"
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Stack:
    """The AWS side of a production deployment in moto, and where the instance's database listens."""

    endpoint: str
    pg_port: int
    home: Path  # $DAGSTER_HOME: the production dagster.yaml and workspace.yaml
    values: dict[str, str]
    subnet: str = ""
    security_group: str = ""
    cluster_arn: str = ""
    daemon_task_arn: str = ""
    task_definitions: dict[str, dict] = field(default_factory=dict)  # file stem -> registered definition

    def client(self, service: str):
        return boto3.client(service, endpoint_url=self.endpoint, region_name=REGION, **{
            k.lower(): v for k, v in FAKE_CREDENTIALS.items()})

    def environment(self, name: str, **overrides: str) -> dict[str, str]:
        """The environment of the process task definition ``name`` (deploy/ecs/NAME.json) describes, run here:
        its variables and secrets, the database and code location on loopback, AWS in moto."""
        env = container_environment(load_task_definition(DEPLOY / "ecs" / f"{name}.json", self.values), {})
        env.update(DAGSTER_PG_HOST="127.0.0.1", DAGSTER_PG_PORT=str(self.pg_port), DAGSTER_PG_USERNAME="postgres",
                   DAGSTER_HOME=str(self.home), AWS_ENDPOINT_URL=self.endpoint, ULT_AWS_ENDPOINT_URL=self.endpoint,
                   AWS_DEFAULT_REGION=REGION, AWS_REGION=REGION, AWS_EC2_METADATA_DISABLED="true", **FAKE_CREDENTIALS)
        env.update(overrides)
        return env


def provision(stack: Stack) -> Stack:
    """What deploy/README.md has an operator create, in moto: network, cluster, bucket, task definitions,
    and the daemon's own task (the EcsRunLauncher copies its cluster and network)."""
    ec2, ecs = stack.client("ec2"), stack.client("ecs")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    stack.subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    stack.security_group = ec2.create_security_group(GroupName="ult-pipeline", Description="ult-pipeline",
                                                     VpcId=vpc)["GroupId"]
    stack.cluster_arn = ecs.create_cluster(clusterName=CLUSTER)["cluster"]["clusterArn"]
    stack.client("s3").create_bucket(Bucket=stack.values["PIPELINE_BUCKET"])
    for path in TASK_DEFINITIONS:
        definition = load_task_definition(path, stack.values)
        stack.task_definitions[path.stem] = ecs.register_task_definition(**definition)["taskDefinition"]
    daemon = ecs.run_task(
        cluster=CLUSTER, taskDefinition=stack.task_definitions["daemon"]["taskDefinitionArn"], launchType="FARGATE",
        networkConfiguration={"awsvpcConfiguration": {"subnets": [stack.subnet], "securityGroups": [stack.security_group],
                                                      "assignPublicIp": "DISABLED"}},
    )["tasks"][0]
    stack.daemon_task_arn = daemon["taskArn"]
    return stack


def dagster_home(base: Path) -> Path:
    """$DAGSTER_HOME as the image has it: the production instance and workspace, verbatim."""
    home = base / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    for name in ("dagster.yaml", "workspace.yaml"):
        shutil.copy(DEPLOY / "production" / name, home / name)
    return home


@contextmanager
def running_stack(base: Path) -> Iterator[Stack]:
    """moto and PostgreSQL started, the AWS side provisioned, $DAGSTER_HOME under ``base``."""
    with moto_server(base) as endpoint, postgres_on_tcp() as pg_port:
        values = placeholders(pg_port, "ult-pipeline-logs")
        yield provision(Stack(endpoint=endpoint, pg_port=pg_port, home=dagster_home(base), values=values))


def dockerfile_cmd(dockerfile: Path | None = None) -> list[str]:
    """The image's CMD (exec form), as the image runs it."""
    text = (dockerfile or DEPLOY / "Dockerfile").read_text()
    [cmd] = [line[len("CMD"):].strip() for line in text.splitlines() if line.startswith("CMD ")]
    return json.loads(cmd)


def on_loopback(cmd: list[str], port: int) -> list[str]:
    """``cmd`` (a code server's) listening on 127.0.0.1:``port`` instead of 0.0.0.0:4000."""
    out = list(cmd)
    out[out.index("-h") + 1] = "127.0.0.1"
    out[out.index("-p") + 1] = str(port)
    return out
