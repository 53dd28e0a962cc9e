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
    # An image with several tags is one build, named after its first tag in sorted order.
    assert by_digest[second] == "latest"
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
