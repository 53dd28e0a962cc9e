"""Resources' configuration: what each accepts and refuses, and what it builds from it (no server)."""

from __future__ import annotations

import dagster as dg
import pytest
from moto import mock_aws

from ult_pipeline.resources.aws import AwsResource
from ult_pipeline.resources.k6 import K6RunnerResource
from ult_pipeline.resources.target import ResultsStoreResource, TargetApiResource, TokenSignerResource


def test_aws_client_carries_the_configured_endpoint_timeouts_and_retries():
    resource = AwsResource(region="eu-west-2", endpoint_url="http://127.0.0.1:5999", connect_timeout_s=1.5,
                           read_timeout_s=7.0, max_attempts=2)
    ecr = resource.client("ecr")
    assert ecr.meta.region_name == "eu-west-2"
    assert ecr.meta.endpoint_url == "http://127.0.0.1:5999"
    assert ecr.meta.config.connect_timeout == 1.5 and ecr.meta.config.read_timeout == 7.0
    # botocore counts the first attempt too: max_attempts retries are max_attempts + 1 attempts.
    assert ecr.meta.config.retries == {"mode": "standard", "total_max_attempts": 3}


def test_aws_without_an_endpoint_talks_to_aws(monkeypatch):
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_ECS"):
        monkeypatch.delenv(name, raising=False)
    assert AwsResource().client("ecs").meta.endpoint_url == "https://ecs.us-east-1.amazonaws.com"


def test_aws_resource_reaches_moto_in_process(monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    with mock_aws():
        ecr = AwsResource().client("ecr")
        ecr.create_repository(repositoryName="user-service")
        names = [r["repositoryName"] for r in ecr.describe_repositories()["repositories"]]
    assert names == ["user-service"]


@pytest.mark.parametrize("config", [
    {"max_attempts": "five"},
    {"connect_timeout_s": "soon"},
    {"endpoint_url": 5999},
])
def test_aws_refuses_config_of_the_wrong_type(config):
    with pytest.raises(Exception, match="validation error"):
        AwsResource(**config)


@pytest.mark.parametrize("lifetime_s", [0, -60])
def test_tokens_must_live_a_positive_time(lifetime_s):
    with pytest.raises(Exception, match="greater than 0"):
        TokenSignerResource(lifetime_s=lifetime_s)


def test_token_signer_defaults_to_the_services_development_issuer():
    resource = TokenSignerResource(lifetime_s=60)
    assert resource.algorithm == "HS256" and resource.lifetime_s == 60
    assert resource.signer() is not None


def test_target_api_needs_its_url_and_key():
    with pytest.raises(Exception, match="validation error"):
        TargetApiResource(url="http://127.0.0.1:1/user/")
    resource = TargetApiResource(url="http://127.0.0.1:1/user/", api_key="k")
    assert resource.retries == 4 and resource.concurrency == 4


def test_a_resource_binds_from_the_environment(monkeypatch):
    monkeypatch.setenv("ULT_TEST_API_KEY", "from-env")
    resource = TargetApiResource(url="http://127.0.0.1:1/user/", api_key=dg.EnvVar("ULT_TEST_API_KEY"))
    with dg.build_resources({"target_api": resource}) as built:
        assert built.target_api.api_key == "from-env"


def test_results_folder_names_are_safe(tmp_path):
    store = ResultsStoreResource(base_dir=str(tmp_path))
    folder = store.partition_dir("../v1.2.3-0123456789ab/x y")
    assert folder.parent == tmp_path and folder.is_dir()
    assert folder.name == ".._v1.2.3-0123456789ab_x_y"


def test_k6_runner_defaults():
    resource = K6RunnerResource()
    assert resource.script is None and resource.progress_interval_s == 10.0 and resource.otlp_endpoint is None
