"""Assembles the code location; every piece is defined in its own module."""

import os

import dagster as dg

from ult_pipeline.assets.k6_results import k6_results
from ult_pipeline.assets.seeded_dataset import seeded_dataset
from ult_pipeline.assets.target_deployment import target_deployment
from ult_pipeline.jobs import load_test_job
from ult_pipeline.resources.aws import AwsResource
from ult_pipeline.resources.deployer import SandboxDeployerResource
from ult_pipeline.resources.k6 import K6RunnerResource
from ult_pipeline.resources.target import (
    ResultsStoreResource,
    TargetApiResource,
    TargetDatabaseResource,
    TokenSignerResource,
)
from ult_pipeline.sensors.ecr_image_sensor import build_ecr_image_sensor


@dg.definitions
def defs() -> dg.Definitions:
    # Read when the code location loads, not at import.
    sensor_interval_s = int(os.environ.get("ULT_SENSOR_INTERVAL_S", "30"))
    return dg.Definitions(
        assets=[target_deployment, seeded_dataset, k6_results],
        jobs=[load_test_job],
        sensors=[build_ecr_image_sensor(sensor_interval_s)],
        resources={
            "aws": AwsResource(endpoint_url=os.environ.get("ULT_AWS_ENDPOINT_URL") or None,
                               region=os.environ.get("AWS_DEFAULT_REGION", "us-east-1")),
            "target_api": TargetApiResource(url=dg.EnvVar("ULT_TARGET_URL"), api_key=dg.EnvVar("ULT_TARGET_API_KEY")),
            "target_db": TargetDatabaseResource(dsn=dg.EnvVar("ULT_TARGET_DSN"),
                                                environment=dg.EnvVar("ULT_TARGET_ENVIRONMENT")),
            "token_signer": TokenSignerResource(),
            "target_deployer": SandboxDeployerResource(
                home=os.environ.get("ULT_SANDBOX_HOME", "~/.ult/sandbox"),
                port=int(os.environ.get("ULT_SANDBOX_PORT", "18080")),
                aws_port=int(os.environ.get("ULT_SANDBOX_AWS_PORT", "18500")),
            ),
            "results_store": ResultsStoreResource(base_dir=os.environ.get("ULT_RESULTS_DIR", "~/.ult/results")),
            "k6_runner": K6RunnerResource(),
        },
    )
