"""The ECR sensor against moto in-process (`mock_aws`: real boto3 calls, no mocks of our code), for
every cursor state; signatures and artifacts, tag names, re-tags and the time budget."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from datetime import timedelta

import dagster as dg
import pytest
from moto import mock_aws

from ult_pipeline.analysis.history import rows_from_operations
from ult_pipeline.analysis.history_store import HistoryStore
from ult_pipeline.analysis.regression import BaselinePolicy, build_tags
from ult_pipeline.aws.images import SEEN_DIGESTS_KEPT, Cursor
from ult_pipeline.build import RUN_TAG_PUSHED_AT, Build
from ult_pipeline.jobs import load_test_job
from ult_pipeline.resources.aws import AwsResource
from ult_pipeline.sensors.ecr_image_sensor import evaluate
from ult_pipeline.settings import PipelineSettings

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def image_manifest(layer: str | None = None) -> str:
    """A runnable OCI image's manifest; moto derives the digest from the layers: a fresh layer, a fresh digest."""
    layer = layer or "sha256:" + uuid.uuid4().hex * 2
    return json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                       "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 2,
                                  "digest": "sha256:" + hashlib.sha256(b"{}").hexdigest()},
                       "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "size": 1,
                                   "digest": layer}]})


@pytest.fixture()
def repo(monkeypatch):
    """A repository in moto in-process, and a way to push to it."""
    for key, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                       ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(key, value)
    name = f"svc-{uuid.uuid4().hex[:8]}"
    with mock_aws():
        aws = AwsResource()
        ecr = aws.client("ecr")
        ecr.create_repository(repositoryName=name)

        def push(tag: str, manifest: str | None = None) -> str:
            image = ecr.put_image(repositoryName=name, imageManifest=manifest or image_manifest(), imageTag=tag)
            return image["image"]["imageId"]["imageDigest"]

        def manifest_of(tag: str) -> str:
            return ecr.batch_get_image(repositoryName=name, imageIds=[{"imageTag": tag}])["images"][0]["imageManifest"]

        push.ecr, push.manifest_of = ecr, manifest_of
        yield name, aws, push


def tick(instance, aws, repository, cursor=None, history=None, **settings):
    context = dg.build_sensor_context(instance=instance, cursor=cursor)
    return evaluate(context, aws, PipelineSettings(ecr_repository=repository, **settings), history)


def skip_message(result) -> str | None:
    """The skip message of a tick that requested nothing (a SkipReason, or a SensorResult that
    only moves the cursor); None when it requested a run."""
    if isinstance(result, dg.SkipReason):
        return result.skip_message
    assert isinstance(result, dg.SensorResult)
    if result.run_requests:
        return None
    assert not result.dynamic_partitions_requests
    return result.skip_reason.skip_message


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
        push("release-1", push.manifest_of("v1"))
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


# --- which images are builds, and their names -------------------------------------------------------
def started_run(instance, partition: str, tags: dict | None = None) -> str:
    """A run of the load-test job (by its name, a stand-in job) in flight for `partition` (with `tags`)."""

    @dg.op
    def noop():
        return None

    @dg.job(name=load_test_job.name)
    def stand_in():
        noop()

    return instance.create_run_for_job(job_def=stand_in, status=dg.DagsterRunStatus.STARTED,
                                       tags={**(tags or {}), "dagster/partition": partition}).run_id


def cosign_signature(subject_digest: str) -> str:
    """A cosign signature's manifest (legacy format: an image config, a simplesigning layer)."""
    return json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                       "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 233,
                                  "digest": "sha256:" + uuid.uuid4().hex * 2},
                       "layers": [{"mediaType": "application/vnd.dev.cosign.simplesigning.v1+json", "size": 250,
                                   "digest": "sha256:" + uuid.uuid4().hex * 2,
                                   "annotations": {"dev.cosignproject.cosign/signature": "MEUCIQ..."}}],
                       "annotations": {"subject-of": subject_digest}})


def oci_referrer(subject_digest: str, artifact_type: str = "application/vnd.dev.cosign.artifact.sig.v1+json") -> str:
    """An OCI 1.1 artifact: artifactType, the empty config and a subject (how cosign 2.x and notation attach)."""
    return json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
                       "config": {"mediaType": "application/vnd.oci.empty.v1+json", "size": 2,
                                  "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},
                       "layers": [{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json", "size": 9,
                                   "digest": "sha256:" + uuid.uuid4().hex * 2}],
                       "subject": {"mediaType": OCI_MANIFEST, "size": 500, "digest": subject_digest}})


def test_a_cosign_signature_never_becomes_a_partition_and_never_cancels_the_running_build(repo):
    name, aws, push = repo
    digest = push("v1.0.0")
    with dg.instance_for_test() as instance:
        first = tick(instance, aws, name)
        key = first.run_requests[0].partition_key
        run_id = started_run(instance, key)
        # cosign sign: the signature goes into the same repository, tagged after the image's digest.
        sig_tag = f"sha256-{digest.split(':')[1]}.sig"
        sig = push(sig_tag, cosign_signature(digest))
        att = push(f"sha256-{digest.split(':')[1]}.att", oci_referrer(digest, "application/vnd.dsse.envelope.v1+json"))
        second = tick(instance, aws, name, first.cursor)
        assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.STARTED
    message = skip_message(second)
    assert message is not None and f"{sig[7:19]} ({sig_tag})" in message and "cosign" in message
    assert att[7:19] in message
    # Seen for good: the next tick does not look at them again.
    assert {sig, att} <= set(Cursor.parse(second.cursor).seen)


def test_oci_artifacts_are_not_builds_whatever_their_tag(repo):
    name, aws, push = repo
    digest = push("v1.0.0")
    with dg.instance_for_test() as instance:
        first = tick(instance, aws, name)
        run_id = started_run(instance, first.run_requests[0].partition_key)
        # Tags that look like builds; the manifests say what they are.
        referrer = push("v1.0.1", oci_referrer(digest))
        sbom_config = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                                  "config": {"mediaType": "application/vnd.dev.cosign.artifact.sig.v1+json",
                                             "size": 2, "digest": "sha256:" + "1" * 64},
                                  "layers": [{"mediaType": "text/spdx+json", "size": 3,
                                              "digest": "sha256:" + uuid.uuid4().hex * 2}]})
        sbom = push("sbom-latest", sbom_config)
        helm = push("chart-1.2.0", json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.cncf.helm.config.v1+json", "size": 2, "digest": "sha256:" + "2" * 64},
            "layers": [{"mediaType": "application/vnd.cncf.helm.chart.content.v1.tar+gzip", "size": 3,
                        "digest": "sha256:" + uuid.uuid4().hex * 2}]}))
        second = tick(instance, aws, name, first.cursor)
        assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.STARTED
    message = skip_message(second)
    assert message is not None
    assert f"{referrer[7:19]} (v1.0.1): an OCI artifact (artifactType application/vnd.dev.cosign.artifact.sig.v1+json)" \
        in message
    assert f"{sbom[7:19]} (sbom-latest): an OCI artifact (config media type " \
        "application/vnd.dev.cosign.artifact.sig.v1+json, not a runnable image's)" in message
    assert f"{helm[7:19]} (chart-1.2.0)" in message
    assert {referrer, sbom, helm} <= set(Cursor.parse(second.cursor).seen)


def test_a_signature_in_the_same_tick_as_a_build_leaves_the_build_newest(repo):
    name, aws, push = repo
    digest = push("v1.0.0")
    time.sleep(1.1)  # the signature is pushed a second later: newer than the build
    push(f"sha256-{digest.split(':')[1]}.sig", cosign_signature(digest))
    with dg.instance_for_test() as instance:
        result = tick(instance, aws, name)
    [request] = result.run_requests
    assert request.partition_key == f"v1.0.0-{digest[7:19]}"
    assert result.dynamic_partitions_requests[0].partition_keys == [request.partition_key]


def test_a_release_tagged_v2_3_0_and_latest_is_named_after_v2_3_0(repo):
    name, aws, push = repo
    digest = push("latest")
    push("v2.3.0", push.manifest_of("latest"))  # one image, two tags (as `docker push` of both tags gives)
    push("main", push.manifest_of("latest"))
    with dg.instance_for_test() as instance:
        result = tick(instance, aws, name)
    [request] = result.run_requests
    assert request.partition_key == f"v2.3.0-{digest[7:19]}" and request.tags["ult/image_tag"] == "v2.3.0"


def history_with(store: HistoryStore, builds: list[str]) -> None:
    ops = [{"operation": "me", "p50": 5.0, "p95": 9.0, "p99": 12.0, "error_rate": 0.0, "rate": 10.0}]
    for hour, build in enumerate(builds):
        pushed = f"2026-11-01T{hour:02d}:00:00+00:00"
        store.record({"build": build, "pushed_at": pushed}, pd_rows(build, pushed, ops))


def pd_rows(build, pushed, ops):
    import pandas as pd

    return pd.DataFrame(rows_from_operations(build, pushed, ops))


def test_a_retag_with_a_version_starts_no_run_and_makes_the_build_a_release(repo, tmp_path):
    name, aws, push = repo
    history = HistoryStore(tmp_path / "history")
    digest = push("latest")
    with dg.instance_for_test() as instance:
        first = tick(instance, aws, name, history=history)
        tested = first.run_requests[0].partition_key
        assert tested == f"latest-{digest[7:19]}"
        history_with(history, ["main-aaaaaaaaaaaa", tested, "main-bbbbbbbbbbbb", "main-cccccccccccc"])
        rows, _ = history.load()
        release = BaselinePolicy.parse("release")
        assert release.earlier_builds(list(rows["build"].unique()), "main-cccccccccccc", build_tags(rows)) == []
        # The release is tagged after the test: the same digest, a version tag.
        push("v2.3.0", push.manifest_of("latest"))
        retag = tick(instance, aws, name, first.cursor, history=history)
    assert isinstance(retag, dg.SkipReason)  # no new run for a digest already tested
    assert history.image_tags()[digest] == ("latest", "v2.3.0")
    rows, _ = history.load()
    order = list(rows["build"].unique())
    assert release.earlier_builds(order, "main-cccccccccccc", build_tags(rows)) == ["main-aaaaaaaaaaaa", tested]
    assert BaselinePolicy.parse(r"release:^v2\.").earlier_builds(order, "main-cccccccccccc", build_tags(rows))[-1] == tested


def test_a_tag_outside_the_build_tag_pattern_is_skipped_with_its_reason_until_a_tag_matches(repo):
    name, aws, push = repo
    pattern = r"v\d+\.\d+\.\d+"
    digest = push("latest")
    with dg.instance_for_test() as instance:
        first = tick(instance, aws, name, build_tag_pattern=pattern)
        assert isinstance(first, dg.SkipReason)
        assert (f"{digest[7:19]} (latest): no tag matches ULT_BUILD_TAG_PATTERN={pattern} (tags: latest)"
                in first.skip_message)
        # Not remembered: when a matching tag is added to the same image, it becomes a build.
        push("v1.4.0", push.manifest_of("latest"))
        second = tick(instance, aws, name, None, build_tag_pattern=pattern)
    [request] = second.run_requests
    assert request.partition_key == f"v1.4.0-{digest[7:19]}"
    assert digest in Cursor.parse(second.cursor).seen


def test_an_older_image_named_later_never_cancels_a_newer_builds_test(repo):
    name, aws, push = repo
    pattern = r"v\d+\.\d+\.\d+"
    older = push("git-aaaaaaa")
    push("v1.0.0")
    with dg.instance_for_test() as instance:
        first = tick(instance, aws, name, build_tag_pattern=pattern)
        [request] = first.run_requests
        # moto stamps pushes to the second: the running build is made an hour newer, as it would be.
        pushed = Build.from_run_tags(request.tags).pushed_at + timedelta(hours=1)
        run_id = started_run(instance, request.partition_key, {**request.tags, RUN_TAG_PUSHED_AT: pushed.isoformat()})
        # The older image gets a version tag only now: it is a build, but not a newer one.
        push("v0.9.0", push.manifest_of("git-aaaaaaa"))
        second = tick(instance, aws, name, first.cursor, build_tag_pattern=pattern)
        assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.STARTED
    assert [r.partition_key for r in second.run_requests] == [f"v0.9.0-{older[7:19]}"]


def test_the_pattern_picks_among_the_tags_of_one_image(repo):
    name, aws, push = repo
    digest = push("v2.3.0")
    push("git-3f9c2e1", push.manifest_of("v2.3.0"))
    with dg.instance_for_test() as instance:
        result = tick(instance, aws, name, build_tag_pattern=r"git-[0-9a-f]{7}")
    assert result.run_requests[0].partition_key == f"git-3f9c2e1-{digest[7:19]}"


# --- cursor states -------------------------------------------------------------------------------
def test_a_cursor_at_its_memory_limit_ignores_older_unknown_images_and_takes_newer_ones(repo):
    name, aws, push = repo
    old = push("v1.0.0")
    time.sleep(1.1)
    with dg.instance_for_test() as instance:
        first = tick(instance, aws, name)
        latest = Cursor.parse(first.cursor).last_pushed_at
        # A full memory that has forgotten `old` (pushed before the newest seen time).
        full = Cursor(latest, tuple(f"sha256:{i:064x}" for i in range(SEEN_DIGESTS_KEPT)))
        assert old not in full.seen
        assert isinstance(tick(instance, aws, name, Cursor("2099-01-01T00:00:00+00:00", full.seen).dump()),
                          dg.SkipReason)
        new = push("v1.1.0")
        result = tick(instance, aws, name, Cursor("2000-01-01T00:00:00+00:00", full.seen).dump())
    keys = result.dynamic_partitions_requests[0].partition_keys
    assert result.run_requests[0].tags["ult/image_digest"] == new and f"v1.0.0-{old[7:19]}" in keys
    assert len(Cursor.parse(result.cursor).seen) == SEEN_DIGESTS_KEPT


def test_a_cursor_written_with_another_utc_offset_orders_by_time(repo):
    name, aws, push = repo
    digest = push("v1.0.0")
    with dg.instance_for_test() as instance:
        first = tick(instance, aws, name)
        stored = Cursor.parse(first.cursor)
        from datetime import datetime, timedelta, timezone

        shifted = datetime.fromisoformat(stored.last_pushed_at).astimezone(timezone(timedelta(hours=-5)))
        again = tick(instance, aws, name, Cursor(shifted.isoformat(), stored.seen).dump())
    assert isinstance(again, dg.SkipReason) and digest in stored.seen


def test_an_empty_cursor_text_is_a_first_tick(repo):
    name, aws, push = repo
    push("v1.0.0")
    with dg.instance_for_test() as instance:
        assert tick(instance, aws, name, "").run_requests
