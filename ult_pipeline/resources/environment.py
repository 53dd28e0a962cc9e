"""The resources of one deployment of the pipeline, chosen by environment variables.

`ULT_TARGET_MODE=ecs` (the default: production) targets the real load-test environment on ECS;
`sandbox` the local sandbox, chosen explicitly by `ult demo` (and by whoever runs `dagster dev`
against `ult sandbox up`). Only the sandbox mode imports the sandbox, whose packages come with
the `sandbox` extra. Secrets are bound with EnvVar, so they are read when a run starts and
never shown in the UI.
"""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg

from ult_pipeline.resources.aws import AwsResource
from ult_pipeline.resources.deployer import EcsDeployerResource
from ult_pipeline.resources.k6 import K6RunnerResource
from ult_pipeline.resources.newrelic import NewRelicResource
from ult_pipeline.resources.target import (
    ResultsStoreResource,
    TargetApiResource,
    TargetDatabaseResource,
    TokenSignerResource,
)
from ult_pipeline.resources.telemetry import NewRelicTelemetryResource, SandboxTelemetryResource

ECS, SANDBOX = "ecs", "sandbox"
TARGET_MODES = (ECS, SANDBOX)


def target_mode(env: Mapping[str, str]) -> str:
    """`ULT_TARGET_MODE`: ecs (default, production) or sandbox; ValueError naming the variable otherwise."""
    mode = env.get("ULT_TARGET_MODE") or ECS
    if mode not in TARGET_MODES:
        raise ValueError(f"ULT_TARGET_MODE={mode!r}: use ecs (production, the default) or sandbox (the local sandbox)")
    return mode


def resources_from_env(env: Mapping[str, str]) -> dict:
    aws = AwsResource(endpoint_url=env.get("ULT_AWS_ENDPOINT_URL") or None, region=env.get("AWS_DEFAULT_REGION", "us-east-1"))
    if target_mode(env) == ECS:
        deployer = EcsDeployerResource(
            aws=aws, cluster=dg.EnvVar("ULT_ECS_CLUSTER"), service=dg.EnvVar("ULT_ECS_SERVICE"),
            container=env.get("ULT_ECS_CONTAINER", "user-service"), repository_uri=dg.EnvVar("ULT_ECR_REPOSITORY_URI"),
            health_base_url=dg.EnvVar("ULT_TARGET_BASE_URL"),
        )
    else:
        from ult_pipeline.sandbox.deployer import SandboxDeployerResource  # the sandbox extra

        deployer = SandboxDeployerResource(
            home=env.get("ULT_SANDBOX_HOME", "~/.ult/sandbox"), port=int(env.get("ULT_SANDBOX_PORT", "18080")),
            aws_port=int(env.get("ULT_SANDBOX_AWS_PORT", "18500")),
        )
    if env.get("ULT_TELEMETRY_SOURCE") == "newrelic":
        telemetry = NewRelicTelemetryResource(
            account_id=int(env.get("ULT_NEWRELIC_ACCOUNT_ID", "0")), user_key=dg.EnvVar("ULT_NEWRELIC_USER_KEY"),
            app_name=env.get("ULT_NEWRELIC_APP_NAME", "user-service-loadtest"), region=env.get("ULT_NEWRELIC_REGION", "US"),
        )
    else:
        target = env.get("ULT_TARGET_URL", "http://127.0.0.1:18080/user/")
        telemetry = SandboxTelemetryResource(metrics_url=target.rstrip("/") + "/metrics")
    newrelic = NewRelicResource(region=env.get("ULT_NEWRELIC_REGION", "US"),
                                send_metrics=env.get("ULT_NEWRELIC_METRICS", "0") == "1")
    if env.get("ULT_NEWRELIC_LICENSE_KEY"):
        newrelic = NewRelicResource(
            account_id=int(env.get("ULT_NEWRELIC_ACCOUNT_ID", "0")), license_key=dg.EnvVar("ULT_NEWRELIC_LICENSE_KEY"),
            region=env.get("ULT_NEWRELIC_REGION", "US"), send_metrics=env.get("ULT_NEWRELIC_METRICS", "0") == "1",
            endpoint_base_url=env.get("ULT_NEWRELIC_ENDPOINT") or None,
        )
    return {
        "aws": aws,
        "newrelic": newrelic,
        "target_api": TargetApiResource(url=dg.EnvVar("ULT_TARGET_URL"), api_key=dg.EnvVar("ULT_TARGET_API_KEY")),
        "target_db": TargetDatabaseResource(dsn=dg.EnvVar("ULT_TARGET_DSN"), environment=dg.EnvVar("ULT_TARGET_ENVIRONMENT")),
        "token_signer": TokenSignerResource(),
        "target_deployer": deployer,
        "telemetry_source": telemetry,
        "results_store": ResultsStoreResource(base_dir=env.get("ULT_RESULTS_DIR", "~/.ult/results")),
        "k6_runner": K6RunnerResource(
            otlp_endpoint=env.get("ULT_OTLP_ENDPOINT") or None,
            otlp_headers=dg.EnvVar("ULT_OTLP_HEADERS") if env.get("ULT_OTLP_HEADERS") else "",
        ),
    }
