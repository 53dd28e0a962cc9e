"""ECR images against moto in-process (`mock_aws`, no server): listing tagged images oldest first,
and the sensor's cursor (new images only, retags and re-reads never new)."""

from __future__ import annotations

import hashlib
import json

import pytest
from moto import mock_aws

from ult_pipeline.aws.clients import client
from ult_pipeline.aws.images import Cursor, list_images, new_images

REPOSITORY = "user-service"


@pytest.fixture
def ecr(monkeypatch):
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_SESSION_TOKEN", "testing"), ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(name, value)
    with mock_aws():
        ecr = client("ecr", region="us-east-1")
        ecr.create_repository(repositoryName=REPOSITORY)
        yield ecr


def manifest(name: str) -> str:
    """An OCI manifest whose digest is its own: moto derives an image's digest from its layers."""
    layer = "sha256:" + hashlib.sha256(name.encode()).hexdigest()
    return json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 2,
                   "digest": "sha256:" + hashlib.sha256(b"{}").hexdigest()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "size": 1, "digest": layer}],
    })


def push(ecr, tag: str, content: str | None = None) -> str:
    """Push an image tagged `tag` (same `content`, same image); returns its digest."""
    image = ecr.put_image(repositoryName=REPOSITORY, imageManifest=manifest(content or tag), imageTag=tag)["image"]
    return image["imageId"]["imageDigest"]


def test_tagged_images_oldest_first_one_build_per_digest(ecr):
    first = push(ecr, "v1.0.0")
    second = push(ecr, "v1.1.0")
    push(ecr, "latest", content="v1.1.0")  # a second tag on the same image
    untagged = push(ecr, "v0.9.0")
    rebuilt = push(ecr, "v0.9.0", content="v0.9.0-rebuilt")  # the tag moves: the old image is untagged

    images = list_images(ecr, REPOSITORY)

    assert len(images) == 3, images
    assert {image.digest for image in images} == {first, second, rebuilt}
    assert untagged not in {image.digest for image in images}
    assert all(image.digest.startswith("sha256:") for image in images)
    # ECR lists in no particular order; ours is by push time (same second: by digest).
    assert images == sorted(images, key=lambda image: (image.pushed_at, image.digest))
    assert all(image.pushed_at.tzinfo is not None for image in images)
    by_digest = {image.digest: image.tag for image in images}
    assert by_digest[first] == "v1.0.0"
    # An image with several tags is one build, named after its most specific tag (a version before `latest`).
    assert by_digest[second] == "v1.1.0"
    assert by_digest[rebuilt] == "v0.9.0"


def test_an_empty_repository_has_no_images(ecr):
    assert list_images(ecr, REPOSITORY) == []


def test_the_cursor_yields_each_image_once(ecr):
    push(ecr, "v1.0.0")
    push(ecr, "v1.1.0")
    fresh, cursor = new_images(list_images(ecr, REPOSITORY), Cursor.parse(None))
    assert [image.tag for image in fresh] == [image.tag for image in list_images(ecr, REPOSITORY)]
    assert len(fresh) == 2

    # The cursor as the sensor stores it: text, read back on its next tick.
    stored = Cursor.parse(cursor.dump())
    assert stored == cursor
    assert set(stored.seen) == {image.digest for image in fresh}
    assert new_images(list_images(ecr, REPOSITORY), stored) == ([], stored)

    # A retag of a known image is not a new build.
    push(ecr, "stable", content="v1.0.0")
    assert new_images(list_images(ecr, REPOSITORY), stored)[0] == []

    # A new push is, alone, and the cursor moves to it.
    digest = push(ecr, "v1.2.0")
    fresh, moved = new_images(list_images(ecr, REPOSITORY), stored)
    assert [(image.tag, image.digest) for image in fresh] == [("v1.2.0", digest)]
    assert digest in moved.seen and set(stored.seen) <= set(moved.seen)
    assert moved.last_pushed_at is not None
    assert new_images(list_images(ecr, REPOSITORY), Cursor.parse(moved.dump()))[0] == []


def test_an_empty_cursor_parses_as_nothing_seen():
    for text in (None, ""):
        cursor = Cursor.parse(text)
        assert cursor.last_pushed_at is None and cursor.seen == ()
    assert Cursor.parse(Cursor(None, ()).dump()) == Cursor(None, ())


# --- which images are builds -------------------------------------------------------------------------
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
IMAGE_CONFIG = {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 2, "digest": "sha256:" + "1" * 64}
LAYER = {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "size": 1, "digest": "sha256:" + "2" * 64}


def ecr_image(tags=("v1.0.0",), manifest_media_type=OCI_MANIFEST, artifact_media_type=None):
    from datetime import UTC, datetime

    from ult_pipeline.aws.images import EcrImage

    return EcrImage(datetime(2026, 11, 1, tzinfo=UTC), "sha256:" + "ab" * 32, tuple(tags), manifest_media_type,
                    artifact_media_type)


def test_what_describe_images_tells_without_the_manifest():
    from ult_pipeline.aws.images import artifact_reason, needs_manifest

    docker = ecr_image(manifest_media_type="application/vnd.docker.distribution.manifest.v2+json")
    assert artifact_reason(docker) is None and not needs_manifest(docker)
    # Real ECR reports the config's media type as artifactMediaType.
    runnable = ecr_image(artifact_media_type="application/vnd.oci.image.config.v1+json")
    assert artifact_reason(runnable) is None and not needs_manifest(runnable)
    signature = ecr_image(artifact_media_type="application/vnd.dev.cosign.artifact.sig.v1+json")
    assert artifact_reason(signature) == "an OCI artifact (artifact media type application/vnd.dev.cosign.artifact.sig.v1+json)"
    withdrawn = ecr_image(manifest_media_type="application/vnd.oci.artifact.manifest.v1+json")
    assert "manifest media type application/vnd.oci.artifact.manifest.v1+json" in artifact_reason(withdrawn)
    cosign = ecr_image(tags=(f"sha256-{'cd' * 32}.sig",), manifest_media_type="application/vnd.docker.distribution.manifest.v2+json")
    assert "cosign" in artifact_reason(cosign) and not needs_manifest(cosign)
    # moto reports no artifactMediaType: an OCI manifest or index needs its manifest read.
    assert needs_manifest(ecr_image()) and needs_manifest(ecr_image(manifest_media_type=None))
    index = ecr_image(manifest_media_type="application/vnd.oci.image.index.v1+json",
                      artifact_media_type="application/vnd.oci.image.config.v1+json")
    assert needs_manifest(index)  # an index may carry artifactType and subject itself


@pytest.mark.parametrize(("manifest", "reason"), [
    ({"config": IMAGE_CONFIG, "layers": [LAYER]}, None),
    ({"manifests": [{"mediaType": OCI_MANIFEST, "digest": "sha256:" + "3" * 64, "size": 1}]}, None),  # multi-platform
    ({"artifactType": "application/spdx+json", "config": {"mediaType": "application/vnd.oci.empty.v1+json"},
      "layers": [LAYER]}, "an OCI artifact (artifactType application/spdx+json)"),
    ({"config": IMAGE_CONFIG, "layers": [LAYER], "subject": {"digest": "sha256:" + "4" * 64}},
     "an OCI 1.1 referrer of sha256:" + "4" * 64 + " (signature, attestation or SBOM)"),
    ({"config": {"mediaType": "application/vnd.oci.empty.v1+json"}, "layers": [LAYER]},
     "an OCI artifact (config media type application/vnd.oci.empty.v1+json, not a runnable image's)"),
    ({"config": IMAGE_CONFIG, "layers": [{"mediaType": "application/vnd.dev.cosign.simplesigning.v1+json"}]},
     "a signature or attestation (layer media type application/vnd.dev.cosign.simplesigning.v1+json)"),
    ({"manifests": [], "artifactType": "application/vnd.example+type"}, "an OCI artifact (artifactType application/vnd.example+type)"),
])
def test_what_the_manifest_tells(manifest, reason):
    from ult_pipeline.aws.images import artifact_reason

    assert artifact_reason(ecr_image(), {"schemaVersion": 2, "mediaType": OCI_MANIFEST, **manifest}) == reason


def test_sorting_reads_only_the_manifests_it_needs_and_names_builds(ecr):
    from ult_pipeline.aws.images import list_ecr_images, sort_images

    build = push(ecr, "latest")
    ecr.put_image(repositoryName=REPOSITORY, imageManifest=manifest("latest"), imageTag="v3.0.0")
    empty = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/vnd.example",
                        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "size": 2,
                                   "digest": "sha256:" + "5" * 64},
                        "layers": [{"mediaType": "application/octet-stream", "size": 1, "digest": "sha256:" + "6" * 64}]})
    artifact = ecr.put_image(repositoryName=REPOSITORY, imageManifest=empty, imageTag="v3.0.1")["image"]["imageId"]["imageDigest"]
    unnamed = push(ecr, "main")
    calls = []
    ecr.meta.events.register("provide-client-params.ecr.BatchGetImage", lambda **kw: calls.append(kw["params"]["imageIds"]))
    found = sort_images(ecr, REPOSITORY, list_ecr_images(ecr, REPOSITORY), pattern=r"v\d+\.\d+\.\d+")
    assert [b.key for b in found.builds] == [f"v3.0.0-{build[7:19]}"]
    assert list(found.not_builds) == [artifact] and list(found.unnamed) == [unnamed]
    # The image no tag names was not read: only the candidates, in one call.
    assert len(calls) == 1 and {i["imageDigest"] for i in calls[0]} == {build, artifact}
    # list_images: the builds alone, by the default rule.
    assert [b.tag for b in list_images(ecr, REPOSITORY)] == ["v3.0.0", "main"]


def test_find_image_finds_a_build_by_its_key_whatever_rule_named_it(ecr):
    from ult_pipeline.aws.images import find_image

    digest = push(ecr, "latest")
    ecr.put_image(repositoryName=REPOSITORY, imageManifest=manifest("latest"), imageTag="git-3f9c2e1")
    for tag in ("git-3f9c2e1", "latest"):
        found = find_image(ecr, REPOSITORY, f"{tag}-{digest[7:19]}")
        assert found is not None and (found.tag, found.digest) == (tag, digest)
    # `latest` moved on to another image: the build is still found by its digest.
    moved = find_image(ecr, REPOSITORY, f"main-{digest[7:19]}")
    assert moved is not None and (moved.tag, moved.digest) == ("main", digest)
    assert find_image(ecr, REPOSITORY, "v9.9.9-ffffffffffff") is None
    assert find_image(ecr, REPOSITORY, "not-a-key") is None


def test_listing_stops_when_the_deadline_has_passed(ecr):
    import time

    from ult_pipeline.aws.images import OutOfTime, list_ecr_images

    push(ecr, "v1.0.0")
    with pytest.raises(OutOfTime, match="listing the images"):
        list_ecr_images(ecr, REPOSITORY, deadline=time.monotonic() - 1)
