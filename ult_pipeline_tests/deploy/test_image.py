"""The image (deploy/Dockerfile) without a Docker engine: its commands, from the file itself.

The test performs the Dockerfile's COPY lines into a build folder, runs the RUN lines marked
`# image-test: run` (the install: a fresh venv, `pip install .` from PyPI, the k6 binary) with the
image's ENV, then starts the image's CMD, the code location's gRPC server, with the environment of
the code location's task definition (production mode, ULT_TARGET_MODE=ecs), on a free loopback
port, and loads the code location over gRPC with the production workspace file. The code server
opens the instance in $DAGSTER_HOME at start, so a throwaway PostgreSQL stands in for Dagster's RDS;
AWS points at a closed loopback port: loading the definitions does not contact it.
Image paths (/opt/ult, /opt/dagster/home, /build, ...) are mapped into the test's folder.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from ult_pipeline_tests.conftest import free_port
from ult_pipeline_tests.deploy.production_stack import (
    DEPLOY,
    ROOT,
    container_environment,
    load_task_definition,
    on_loopback,
    placeholders,
    postgres_on_tcp,
    stop_process,
    wait_for,
)

pytestmark = pytest.mark.slow
DOCKERFILE = DEPLOY / "Dockerfile"
MARK = "# image-test: run"
CLOSED = "http://127.0.0.1:9"  # nothing listens on the discard port


def instructions(text: str) -> list[tuple[str, str, bool]]:
    """(instruction, arguments, marked) per Dockerfile instruction, continuation lines joined;
    ``marked`` when the comment line right above it is MARK."""
    out, marked, current = [], False, ""
    for line in text.splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            marked = stripped == MARK if stripped else marked
            continue
        current += " " + stripped.removesuffix("\\").strip() if current else stripped.removesuffix("\\").strip()
        if stripped.endswith("\\"):
            continue
        word, _, args = current.partition(" ")
        out.append((word.upper(), args.strip(), marked))
        current, marked = "", False
    return out


def env_pairs(args: str) -> dict[str, str]:
    return dict(re.findall(r'(\w+)=("[^"]*"|\S+)', args))


class Image:
    """The image's file system mapped into ``base``."""

    def __init__(self, base: Path):
        self.base = base
        self.build = base / "build"
        self.venv = base / "opt" / "ult"
        self.home = base / "opt" / "dagster" / "home"
        self.results = base / "var" / "lib" / "ult" / "results"
        self.workdir = self.build

    def path(self, image_path: str) -> Path:
        for prefix, local in (("/opt/ult", self.venv), ("/opt/dagster/home", self.home), ("/build", self.build),
                              ("/var/lib/ult/results", self.results)):
            if image_path == prefix or image_path.startswith(prefix + "/"):
                return local / image_path[len(prefix):].lstrip("/")
        if image_path.startswith("/"):
            raise AssertionError(f"the test does not map the image path {image_path}")
        return self.workdir / image_path

    def copy(self, args: str) -> None:
        *sources, dest = args.split()
        target = self.path(dest)
        for source in sources:
            src = ROOT / source
            if src.is_dir():
                shutil.copytree(src, target, dirs_exist_ok=True)
            elif dest.endswith("/") or len(sources) > 1:
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, target / src.name)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, target)

    def env(self, image_env: dict[str, str]) -> dict[str, str]:
        mapped = {"VIRTUAL_ENV": str(self.venv), "DAGSTER_HOME": str(self.home), "ULT_RESULTS_DIR": str(self.results),
                  "PATH": f"{self.venv / 'bin'}:{os.environ['PATH']}"}
        return {**{k: v.strip('"') for k, v in image_env.items()}, **mapped}


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    """The image built by hand: (Image, its ENV, its CMD)."""
    img = Image(tmp_path_factory.mktemp("image"))
    image_env: dict[str, str] = {}
    cmd = None
    ran = 0
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("ULT_", "DAGSTER_", "VIRTUAL_ENV", "PIP_"))}
    for word, args, marked in instructions(DOCKERFILE.read_text()):
        if word == "ENV":
            image_env.update(env_pairs(args))
        elif word == "WORKDIR":
            img.workdir = img.path(args) if args.startswith(("/build", "/opt")) else img.base / "workdir"
            img.workdir.mkdir(parents=True, exist_ok=True)
        elif word == "COPY":
            img.copy(args)
        elif word == "RUN" and marked:
            result = subprocess.run(["bash", "-euo", "pipefail", "-c", args], cwd=img.workdir,
                                    env={**clean, **img.env(image_env)}, capture_output=True, text=True, timeout=1500)
            assert result.returncode == 0, f"RUN {args}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            ran += 1
        elif word == "CMD":
            cmd = json.loads(args)
    assert ran >= 1 and cmd, "the Dockerfile has a marked RUN line and a CMD"
    return img, image_env, cmd


def test_the_dockerfile_installs_non_editable_without_the_sandbox_and_runs_as_a_user():
    steps = instructions(DOCKERFILE.read_text())
    assert steps[0] == ("FROM", "python:3.11-slim", False)
    installs = [args for word, args, marked in steps if word == "RUN" and marked]
    assert any("pip\" install ." in args or "pip install ." in args for args in installs)
    assert not any(re.search(r"sandbox|\[dev\]|-e |--editable", args) for args in installs)
    users = [args for word, args, _ in steps if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    words = [word for word, _, _ in steps]
    assert words.index("USER") < words.index("CMD")


def test_the_image_has_the_pipeline_and_k6_but_no_sandbox(image):
    img, _, _ = image
    python = img.venv / "bin" / "python"
    result = subprocess.run([str(python), "-c", (
        "import importlib.util, sys, ult_pipeline.loadtest.runner as r\n"
        "print(r.k6_binary())\n"
        "print([m for m in ('pgserver', 'moto', 'ariadne') if importlib.util.find_spec(m)])\n"
        "import ult_pipeline, pathlib; print(pathlib.Path(ult_pipeline.__file__).is_relative_to(sys.prefix))")],
        capture_output=True, text=True, timeout=120, cwd=img.base)
    assert result.returncode == 0, result.stderr[-3000:]
    k6, sandbox, installed = result.stdout.split("\n")[:3]
    assert Path(k6) == img.venv / "bin" / "k6"
    assert sandbox == "[]"
    assert installed == "True"  # not editable: the package lives in the venv
    version = subprocess.run([k6, "version"], capture_output=True, text=True, timeout=60)
    assert version.stdout.startswith("k6 v1.1.0")
    # The instance and workspace the image's processes read.
    assert (img.home / "dagster.yaml").read_text() == (DEPLOY / "production" / "dagster.yaml").read_text()
    assert (img.home / "workspace.yaml").exists()


def test_the_image_serves_the_code_location_over_grpc_in_production_mode(image, tmp_path):
    with postgres_on_tcp() as pg_port:
        serve_and_load(image, tmp_path, pg_port)


def serve_and_load(image, tmp_path: Path, pg_port: int) -> None:
    img, image_env, cmd = image
    port = free_port()
    values = {**placeholders(9, "ult-pipeline-logs"), "TARGET_BASE_URL": CLOSED}
    task_env = container_environment(load_task_definition(DEPLOY / "ecs" / "code-location.json", values), {})
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("ULT_", "DAGSTER_", "AWS_", "VIRTUAL_ENV"))}
    env = {**clean, **img.env(image_env), **task_env,
           "DAGSTER_HOME": str(img.home), "ULT_RESULTS_DIR": str(img.results), "DAGSTER_PG_PORT": str(pg_port), "DAGSTER_PG_USERNAME": "postgres",
           "AWS_ENDPOINT_URL": CLOSED, "ULT_AWS_ENDPOINT_URL": CLOSED, "AWS_EC2_METADATA_DISABLED": "true",
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    assert env["ULT_TARGET_MODE"] == "ecs"
    log = tmp_path / "code-server.log"
    workdir = img.base / "workdir"
    workdir.mkdir(exist_ok=True)
    with open(log, "ab") as out:
        server = subprocess.Popen(on_loopback(cmd, port), env=env, cwd=workdir, stdout=out, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, start_new_session=True)
    dagster = str(img.venv / "bin" / "dagster")
    # A client: the production workspace file, pointed at this server; its own ephemeral instance.
    client_env = {**clean, "DAGSTER_CODE_LOCATION_HOST": "127.0.0.1", "DAGSTER_CODE_LOCATION_PORT": str(port)}
    try:
        def healthy():
            return subprocess.run([dagster, "api", "grpc-health-check", "-p", str(port)], env=client_env,
                                  capture_output=True, text=True, timeout=60).returncode == 0

        wait_for(healthy, 180, "the code server answers its health check", server, log, 1.0)
        workspace = str(img.home / "workspace.yaml")
        validate = subprocess.run([dagster, "definitions", "validate", "-w", workspace], env=client_env, cwd=tmp_path,
                                  capture_output=True, text=True, timeout=180)
        assert validate.returncode == 0, validate.stdout[-3000:] + validate.stderr[-3000:]
        jobs = subprocess.run([dagster, "job", "list", "-w", workspace], env=client_env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=180)
        assert jobs.returncode == 0, jobs.stderr[-3000:]
        assert "load_test_job" in jobs.stdout and "trend_report_job" in jobs.stdout
    finally:
        stop_process(server)
    text = log.read_text(errors="replace")
    assert "Traceback" not in text, text[-4000:]
