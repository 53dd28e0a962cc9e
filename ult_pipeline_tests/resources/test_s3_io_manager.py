"""Production keeps assets' outputs in S3 (ULT_IO_BUCKET), so a run re-executed from a later step, in a new
ECS task, reads what the steps before it wrote. Against moto in-process: nothing leaves the process."""

from __future__ import annotations

import pickle

import dagster as dg
import pytest

from ult_pipeline.resources.environment import IO_PREFIX, resources_from_env

BUCKET = "ult-pipeline-test"
# What production mode binds without a default (EnvVar: only read when a run starts).
ECS_ENV = {"ULT_TARGET_MODE": "ecs", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture
def fake_aws(monkeypatch):
    from moto import mock_aws

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        import boto3

        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        yield s3


@dg.asset
def numbers() -> list[int]:
    return [1, 2, 3]


@dg.asset
def total(numbers: list[int]) -> int:
    return sum(numbers)


def test_without_a_bucket_the_default_io_manager_stays():
    assert "io_manager" not in resources_from_env(ECS_ENV)
    assert "io_manager" not in resources_from_env({**ECS_ENV, "ULT_IO_BUCKET": ""})
    # The sandbox keeps its outputs on local disk, bucket or not.
    assert "io_manager" not in resources_from_env({"ULT_TARGET_MODE": "sandbox", "ULT_IO_BUCKET": BUCKET})


def test_production_with_a_bucket_uses_the_s3_io_manager():
    from dagster_aws.s3 import S3PickleIOManager

    io = resources_from_env({**ECS_ENV, "ULT_IO_BUCKET": BUCKET, "ULT_AWS_ENDPOINT_URL": "http://127.0.0.1:9"})["io_manager"]
    assert isinstance(io, S3PickleIOManager)
    assert (io.s3_bucket, io.s3_prefix) == (BUCKET, "dagster/io")
    assert (io.s3_resource.region_name, io.s3_resource.endpoint_url) == ("us-east-1", "http://127.0.0.1:9")
    plain = resources_from_env({**ECS_ENV, "ULT_IO_BUCKET": BUCKET})["io_manager"]
    assert plain.s3_resource.endpoint_url is None  # AWS's own endpoint


def test_outputs_go_to_the_bucket_and_a_later_step_reads_them_back(fake_aws):
    io = resources_from_env({**ECS_ENV, "ULT_IO_BUCKET": BUCKET})["io_manager"]
    with dg.instance_for_test() as instance:
        first = dg.materialize([numbers, total], resources={"io_manager": io}, instance=instance)
        assert first.success and first.output_for_node("total") == 6
        keys = {o["Key"] for o in fake_aws.list_objects_v2(Bucket=BUCKET)["Contents"]}
        assert keys == {f"{IO_PREFIX}/numbers", f"{IO_PREFIX}/total"}, keys
        stored = fake_aws.get_object(Bucket=BUCKET, Key=f"{IO_PREFIX}/numbers")["Body"].read()
        assert pickle.loads(stored) == [1, 2, 3]

        # A re-execution from `total` alone (a new task, nothing on its disk) loads `numbers` from S3.
        fake_aws.put_object(Bucket=BUCKET, Key=f"{IO_PREFIX}/numbers", Body=pickle.dumps([10, 20]))
        again = dg.materialize([numbers, total], selection=[total], resources={"io_manager": io}, instance=instance)
        assert again.success and again.output_for_node("total") == 30
        assert [e.step_key for e in again.get_step_success_events()] == ["total"]
