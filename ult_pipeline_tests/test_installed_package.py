"""Production as a container build installs it: `pip install .` (not editable), without the sandbox.

A fresh virtual environment gets the package from a copy of this checkout, with no `sandbox`
extra. In it: none of the sandbox's packages is importable; the definitions load in production
mode (ULT_TARGET_MODE=ecs) and the ECR sensor finds an image in moto (the session sandbox's, an
outside process here, as AWS is in production) without importing the sandbox; and `ult run`
against the session's service seeds through the API and runs k6 from the installed suite.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from ult_pipeline.resources.aws import AwsResource
from ult_pipeline.sandbox import aws as sandbox_aws

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow
_IGNORE = shutil.ignore_patterns(".venv", ".git", "__pycache__", "build", "*.egg-info", ".pytest_cache", ".ruff_cache")


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The python of a fresh venv with `pip install <copy of the checkout>` (no extras)."""
    base = tmp_path_factory.mktemp("installed")
    source = base / "src"
    shutil.copytree(ROOT, source, ignore=_IGNORE)
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    result = subprocess.run([str(python), "-m", "pip", "install", "-q", str(source)],
                            capture_output=True, text=True, timeout=1500)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    shutil.rmtree(source)  # nothing may come from the copy any more: only the installed package
    return python


def run_in(python: Path, code: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("ULT_", "DAGSTER_"))}
    return subprocess.run([str(python), "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env={**clean, **env}, cwd=python.parents[2], timeout=timeout)


def test_no_sandbox_package_is_installed(installed):
    result = run_in(installed, """
        import importlib.util
        # (uvicorn and starlette come with dagster-webserver in production too)
        print([m for m in ("pgserver", "moto", "ariadne") if importlib.util.find_spec(m)])
    """, {})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_definitions_load_in_production_mode_and_the_sensor_reads_ecr_in_moto(installed, sandbox, sandbox_settings):
    sandbox_aws.ensure_credentials()
    endpoint = sandbox_aws.endpoint(sandbox_settings.aws_port)
    repository = f"prod-{uuid.uuid4().hex[:8]}"
    ecr = AwsResource(endpoint_url=endpoint, region=sandbox_aws.REGION).client("ecr")
    ecr.create_repository(repositoryName=repository)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           # A runnable image's config: any other config type is an OCI artifact, not a build.
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 1,
                                      "digest": "sha256:" + "0" * 64},
                           "layers": [{"mediaType": "x", "size": 1, "digest": "sha256:" + uuid.uuid4().hex * 2}]})
    ecr.put_image(repositoryName=repository, imageManifest=manifest, imageTag="v4.5.0")
    result = run_in(installed, """
        import sys
        import dagster as dg
        from ult_pipeline.definitions import defs
        from ult_pipeline.sensors.ecr_image_sensor import evaluate
        from ult_pipeline.settings import PipelineSettings

        d = defs()
        keys = {k.to_user_string() for k in d.resolve_asset_graph().get_all_asset_keys()}
        assert {"target_deployment", "seeded_dataset", "k6_results", "ab_confirmation"} <= keys, keys
        resources = d.resources
        print("deployer", type(resources["target_deployer"]).__name__)
        with dg.instance_for_test() as instance:
            result = evaluate(dg.build_sensor_context(instance=instance), resources["aws"], PipelineSettings.from_env())
        print("requests", [r.partition_key for r in result.run_requests])
        print("sandbox modules", sorted(m for m in sys.modules if m.startswith("ult_pipeline.sandbox")))
    """, {"ULT_TARGET_MODE": "ecs", "ULT_AWS_ENDPOINT_URL": endpoint, "ULT_ECR_REPOSITORY": repository,
          "AWS_DEFAULT_REGION": sandbox_aws.REGION, **sandbox_aws.credentials_env()})
    assert result.returncode == 0, result.stdout + result.stderr[-4000:]
    assert "deployer EcsDeployerResource" in result.stdout
    assert "requests ['v4.5.0-" in result.stdout
    assert "sandbox modules []" in result.stdout


def test_ult_run_runs_k6_from_the_installed_suite(installed, sandbox, tmp_path):
    ult = installed.parent / "ult"
    result = subprocess.run(
        [str(ult), "run", "--target", sandbox.url, "--no-wipe", "--profile", "tiny", "--duration", "3s", "--rate", "2"],
        capture_output=True, text=True, timeout=600,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("ULT_")},
             "ULT_TARGET_API_KEY": sandbox.api_key, "ULT_RESULTS_DIR": str(tmp_path)},
    )
    assert result.returncode in (0, 99), result.stdout[-3000:] + result.stderr[-3000:]
    [result_json] = list(tmp_path.glob("runs/*/k6/result.json"))
    run = json.loads(result_json.read_text())
    assert run["totals"]["requests"] > 0 and not run["interrupted"]
    # The scripts k6 ran are the installed copy, hashed like the checkout's.
    from ult_pipeline.loadtest.run import scripts_hash

    assert run["fingerprint"]["scripts_hash"] == scripts_hash()
