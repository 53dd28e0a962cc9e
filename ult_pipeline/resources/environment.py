"""The resources of one deployment of the pipeline, chosen by environment variables.

`ULT_TARGET_MODE=ecs` (the default: production) targets the real load-test environment on ECS;
`sandbox` the local sandbox, chosen explicitly by `ult demo` (and by whoever runs `dagster dev`
against `ult sandbox up`). Only the sandbox mode imports the sandbox, whose packages come with
the `sandbox` extra. Secrets are bound with EnvVar, so they are read when a run starts and
never shown in the UI. In ecs mode with `ULT_IO_BUCKET` set, assets' outputs are kept in that S3
bucket (`s3_io_manager`) instead of on the run worker's disk.
"""

from __future__ import annotations

from collections.abc import Mapping

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
from ult_pipeline.settings import env_var, number, setting

ECS, SANDBOX = "ecs", "sandbox"
TARGET_MODES = (ECS, SANDBOX)


def target_mode(env: Mapping[str, str]) -> str:
    """`ULT_TARGET_MODE`: ecs (default, production) or sandbox; ValueError naming the variable otherwise."""
    mode = setting(env, "ULT_TARGET_MODE")
    if mode not in TARGET_MODES:
        raise ValueError(f"ULT_TARGET_MODE={mode!r}: use ecs (production, the default) or sandbox (the local sandbox)")
    return mode


def resources_from_env(env: Mapping[str, str]) -> dict:
    """The resources for ``env`` (os.environ when the code location loads); every variable read via settings."""
    aws = AwsResource(endpoint_url=setting(env, "ULT_AWS_ENDPOINT_URL"), region=setting(env, "AWS_DEFAULT_REGION"))
    if target_mode(env) == ECS:
        deployer = EcsDeployerResource(
            aws=aws, cluster=env_var("ULT_ECS_CLUSTER"), service=env_var("ULT_ECS_SERVICE"),
            container=setting(env, "ULT_ECS_CONTAINER"), repository_uri=env_var("ULT_ECR_REPOSITORY_URI"),
            health_base_url=env_var("ULT_TARGET_BASE_URL"),
        )
    else:
        from ult_pipeline.sandbox.deployer import SandboxDeployerResource  # the sandbox extra
        from ult_pipeline.sandbox.settings import DEFAULT_AWS_PORT, DEFAULT_PORT

        deployer = SandboxDeployerResource(
            home=setting(env, "ULT_SANDBOX_HOME"), port=number(env, "ULT_SANDBOX_PORT") or DEFAULT_PORT,
            aws_port=number(env, "ULT_SANDBOX_AWS_PORT") or DEFAULT_AWS_PORT,
        )
    region = setting(env, "ULT_NEWRELIC_REGION")
    if setting(env, "ULT_TELEMETRY_SOURCE") == "newrelic":
        telemetry = NewRelicTelemetryResource(
            account_id=number(env, "ULT_NEWRELIC_ACCOUNT_ID"), user_key=env_var("ULT_NEWRELIC_USER_KEY"),
            app_name=setting(env, "ULT_NEWRELIC_APP_NAME"), region=region,
        )
    else:
        target = setting(env, "ULT_TARGET_URL") or "http://127.0.0.1:18080/user/"
        telemetry = SandboxTelemetryResource(metrics_url=target.rstrip("/") + "/metrics")
    send_metrics = setting(env, "ULT_NEWRELIC_METRICS") == "1"
    newrelic = NewRelicResource(region=region, send_metrics=send_metrics)
    if setting(env, "ULT_NEWRELIC_LICENSE_KEY"):
        newrelic = NewRelicResource(
            account_id=number(env, "ULT_NEWRELIC_ACCOUNT_ID"), license_key=env_var("ULT_NEWRELIC_LICENSE_KEY"),
            region=region, send_metrics=send_metrics, endpoint_base_url=setting(env, "ULT_NEWRELIC_ENDPOINT"),
        )
    resources = {
        "aws": aws,
        "newrelic": newrelic,
        "target_api": TargetApiResource(url=env_var("ULT_TARGET_URL"), api_key=env_var("ULT_TARGET_API_KEY")),
        "target_db": TargetDatabaseResource(dsn=env_var("ULT_TARGET_DSN"), environment=env_var("ULT_TARGET_ENVIRONMENT")),
        "token_signer": TokenSignerResource(),
        "target_deployer": deployer,
        "telemetry_source": telemetry,
        "results_store": ResultsStoreResource(base_dir=setting(env, "ULT_RESULTS_DIR"),
                                              base_url=setting(env, "ULT_RESULTS_URL")),
        "k6_runner": K6RunnerResource(
            otlp_endpoint=setting(env, "ULT_OTLP_ENDPOINT"),
            otlp_headers=env_var("ULT_OTLP_HEADERS") if setting(env, "ULT_OTLP_HEADERS") else "",
        ),
    }
    if target_mode(env) == ECS and setting(env, "ULT_IO_BUCKET"):
        resources["io_manager"] = s3_io_manager(env)
    return resources


IO_PREFIX = "dagster/io"


def s3_io_manager(env: Mapping[str, str]):
    """Assets' outputs pickled in `ULT_IO_BUCKET` under dagster/io/ (dagster-aws' S3PickleIOManager), so
    that a run re-executed from a later step, in a new ECS task, reads the outputs of the steps before it.
    It lists the prefix when a run first uses it, then gets and puts one object per output."""
    from dagster_aws.s3 import S3PickleIOManager, S3Resource  # production only

    s3 = S3Resource(region_name=setting(env, "AWS_DEFAULT_REGION"), endpoint_url=setting(env, "ULT_AWS_ENDPOINT_URL"))
    return S3PickleIOManager(s3_resource=s3, s3_bucket=setting(env, "ULT_IO_BUCKET"), s3_prefix=IO_PREFIX)
