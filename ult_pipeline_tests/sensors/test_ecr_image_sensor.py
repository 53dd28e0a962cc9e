"""The ECR sensor against moto (real boto3 calls, no mocks), for every cursor state."""

from __future__ import annotations

import json
import time
import uuid

import dagster as dg
import pytest

from ult_pipeline.aws.images import Cursor
from ult_pipeline.jobs import load_test_job
from ult_pipeline.resources.aws import AwsResource
from ult_pipeline.sandbox import aws as sandbox_aws
from ult_pipeline.sensors.ecr_image_sensor import evaluate
from ult_pipeline.settings import PipelineSettings


@pytest.fixture()
def repo(sandbox, sandbox_settings):
    """A repository of its own in the session's moto, and a way to push to it."""
    name = f"svc-{uuid.uuid4().hex[:8]}"
    aws = AwsResource(endpoint_url=sandbox_aws.endpoint(sandbox_settings.aws_port))
    sandbox_aws.ensure_credentials()
    ecr = aws.client("ecr")
    ecr.create_repository(repositoryName=name)

    def push(tag: str, manifest: str | None = None) -> str:
        if manifest is None:
            layer = "sha256:" + uuid.uuid4().hex * 2
            manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                                   "config": {"mediaType": "x", "size": 1, "digest": "sha256:" + "0" * 64},
                                   "layers": [{"mediaType": "x", "size": 1, "digest": layer}]})
        return ecr.put_image(repositoryName=name, imageManifest=manifest, imageTag=tag)["image"]["imageId"]["imageDigest"]

    push.ecr = ecr
    return name, aws, push


def tick(instance, aws, repository, cursor=None):
    context = dg.build_sensor_context(instance=instance, cursor=cursor)
    return evaluate(context, aws, PipelineSettings(ecr_repository=repository))


def test_no_images_skips(repo):
    name, aws, _ = repo
    with dg.instance_for_test() as instance:
        assert isinstance(tick(instance, aws, name), dg.SkipReason)


def test_first_tick_adds_every_image_and_runs_the_newest(repo):
    name, aws, push = repo
    push("v1")
    time.sleep(1.1)  # imagePushedAt has 1-second resolution: only later seconds order pushes
    digest = push("v2")
    with dg.instance_for_test() as instance:
        result = tick(instance, aws, name)
    [request] = result.run_requests
    assert request.tags["ult/image_digest"] == digest and request.tags["ult/image_tag"] == "v2"
    assert request.partition_key == f"v2-{digest[7:19]}" and request.run_key == digest
    [added] = result.dynamic_partitions_requests
    assert sorted(added.partition_keys) == sorted(["v1-" + Cursor.parse(result.cursor).seen[0][7:19], request.partition_key])
    assert request.run_config["ops"]["seeded_dataset"]["config"]["profile"] == "standard"


def test_same_cursor_same_images_starts_nothing(repo):
    name, aws, push = repo
    push("v1")
    with dg.instance_for_test() as instance:
        first = tick(instance, aws, name)
        again = tick(instance, aws, name, first.cursor)
    assert isinstance(again, dg.SkipReason)


def test_a_push_in_the_same_second_is_not_lost(repo):
    name, aws, push = repo
    push("v1")
    with dg.instance_for_test() as instance:
        first = tick(instance, aws, name)
        digest = push("v2")  # imagePushedAt has 1-second resolution: very likely the same second
        second = tick(instance, aws, name, first.cursor)
    [request] = second.run_requests
    assert request.tags["ult/image_digest"] == digest


def test_a_retag_of_a_known_digest_starts_nothing_and_a_new_digest_does(repo):
    name, aws, push = repo
    push("v1")
    with dg.instance_for_test() as instance:
        first = tick(instance, aws, name)
        manifest = push.ecr.batch_get_image(repositoryName=name, imageIds=[{"imageTag": "v1"}])["images"][0]["imageManifest"]
        push("release-1", manifest)
        retag = tick(instance, aws, name, first.cursor)
        assert isinstance(retag, dg.SkipReason)
        digest = push("v2")
        fresh = tick(instance, aws, name, first.cursor)
    assert [r.tags["ult/image_digest"] for r in fresh.run_requests] == [digest]


def test_pages_through_more_than_1000_images(repo):
    name, aws, push = repo
    for i in range(1005):
        push(f"b{i:04d}")
    with dg.instance_for_test() as instance:
        result = tick(instance, aws, name)
    assert len(result.dynamic_partitions_requests[0].partition_keys) == 1005
    assert len(Cursor.parse(result.cursor).seen) == 1005


def test_an_ecr_error_skips_with_the_reason_and_keeps_the_cursor(repo):
    _, aws, _ = repo
    with dg.instance_for_test() as instance:
        result = tick(instance, aws, "no-such-repository", cursor=Cursor("2026-01-01T00:00:00+00:00", ("sha256:ab",)).dump())
    assert isinstance(result, dg.SkipReason)
    assert "RepositoryNotFoundException" in result.skip_message


def test_a_newer_image_cancels_in_flight_runs_of_older_builds(repo, monkeypatch):
    for var in ("ULT_TARGET_URL", "ULT_TARGET_API_KEY", "ULT_TARGET_DSN", "ULT_TARGET_ENVIRONMENT"):
        monkeypatch.setenv(var, "unused")
    monkeypatch.setenv("ULT_TARGET_MODE", "sandbox")  # production (ecs) is the default
    name, aws, push = repo
    push("v1")
    with dg.instance_for_test() as instance:
        first = tick(instance, aws, name)
        old_key = first.run_requests[0].partition_key
        instance.add_dynamic_partitions("builds", [old_key])
        from ult_pipeline.definitions import defs

        job = defs().resolve_job_def(load_test_job.name)
        old_run = instance.create_run_for_job(
            job_def=job, run_config=first.run_requests[0].run_config, status=dg.DagsterRunStatus.STARTED,
            tags={"dagster/partition": old_key},
        )
        push("v2")
        second = tick(instance, aws, name, first.cursor)
        assert second.run_requests[0].tags["ult/image_tag"] == "v2"
        # The launcher is asked to terminate it: the run goes to CANCELING (then its worker stops k6).
        assert instance.get_run_by_id(old_run.run_id).status == dg.DagsterRunStatus.CANCELING


def test_invalid_settings_request_no_run_and_keep_the_cursor(repo):
    name, aws, push = repo
    push("v1")
    bad = PipelineSettings(ecr_repository=name, load_rate=2.5, dataset_profile="huge")
    with dg.instance_for_test() as instance:
        result = evaluate(dg.build_sensor_context(instance=instance, cursor=None), aws, bad)
        assert isinstance(result, dg.SkipReason)
        assert "k6_results: rate must be a whole number" in result.skip_message
        assert "seeded_dataset: unknown dataset profile 'huge'" in result.skip_message
        # Fixed settings: the same image is still new.
        assert tick(instance, aws, name).run_requests


def test_a_setting_that_is_not_a_number_names_its_variable(monkeypatch):
    monkeypatch.setenv("ULT_DATASET_SEED", "one")
    with pytest.raises(ValueError, match=r"\$ULT_DATASET_SEED='one' is not a whole number"):
        PipelineSettings.from_env()
