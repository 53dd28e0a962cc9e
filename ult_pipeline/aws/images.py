"""User-service images in ECR: listing them, which ones are builds, and which are new since a cursor.

An image in ECR is a build (a `Build`, ult_pipeline.build: partition key, run tags, push time)
unless one of these says it is something else, checked in this order:

1. Its tags: only signature tags (`build.is_signature_tag`: cosign's `sha256-<hex>.sig` / `.att` /
   `.sbom`, or the OCI 1.1 referrers fallback tag `sha256-<hex>`) -> a signature, attestation, SBOM
   or referrers index, never a build.
2. Its name: no tag may name it (`build.build_tag`; with ULT_BUILD_TAG_PATTERN only matching tags
   may) -> not a build *yet*: it is looked at again every tick, so a matching tag added later
   (a re-tag) makes it a build then.
3. Its media types (`artifact_reason`): what `describe_images` reports (`imageManifestMediaType`,
   and `artifactMediaType`, the media type of the manifest's config, on real ECR), and where
   those do not tell (an OCI manifest or index without `artifactMediaType`, as moto reports it)
   the manifest itself (`batch_get_image`). Per the OCI image spec 1.1 a manifest with an
   `artifactType` or a `subject` (a referrer: signature, attestation, SBOM attached to another
   image) is an artifact, and so is one whose config is not a runnable image's config
   (`application/vnd.oci.image.config.v1+json`, `application/vnd.docker.container.image.v1+json`),
   e.g. the empty config `application/vnd.oci.empty.v1+json` or cosign's
   `application/vnd.dev.cosign.artifact.sig.v1+json`; cosign's legacy signatures (an image config
   with `application/vnd.dev.cosign.simplesigning.v1+json` layers) are recognised by their layers.
   Docker manifests (`application/vnd.docker.distribution.manifest.*`) are images.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ult_pipeline.build import Build, build_tag, is_signature_tag, pushed_at_utc, short_digest, split_key

# Digests remembered in the cursor: enough to recognise retags and same-second pushes.
SEEN_DIGESTS_KEPT = 2000
# batch_get_image takes at most 100 image ids per call (ECR API reference).
_BATCH_GET_MAX = 100

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_SCHEMA1 = ("application/vnd.docker.distribution.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.v1+prettyjws")
# Configs of runnable images (OCI image spec; Docker image manifest v2, schema 2).
IMAGE_CONFIG_TYPES = frozenset({"application/vnd.oci.image.config.v1+json",
                                "application/vnd.docker.container.image.v1+json"})
# Layers that are signatures or attestations, never a file system: cosign's legacy signature format
# (an image config with these layers), in-toto statements and DSSE envelopes (attestations).
SIGNATURE_LAYER_TYPES = frozenset({"application/vnd.dev.cosign.simplesigning.v1+json",
                                   "application/vnd.in-toto+json", "application/vnd.dsse.envelope.v1+json"})
_INDEXES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
_DOCKER = frozenset({DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, *DOCKER_SCHEMA1})


class OutOfTime(TimeoutError):
    """The caller's deadline (time.monotonic()) passed before the work was done."""


@dataclass(frozen=True, order=True)
class EcrImage:
    """One tagged image as `describe_images` reports it; ordered by push time, then digest.

    `pushed_at` is aware UTC; `manifest_media_type` and `artifact_media_type` are None when ECR
    does not report them (moto never reports `artifactMediaType`).
    """

    pushed_at: datetime
    digest: str
    tags: tuple[str, ...] = field(compare=False)
    manifest_media_type: str | None = field(default=None, compare=False)
    artifact_media_type: str | None = field(default=None, compare=False)

    @classmethod
    def from_detail(cls, detail: Mapping[str, Any]) -> EcrImage:
        return cls(pushed_at_utc(detail["imagePushedAt"]), detail["imageDigest"], tuple(detail.get("imageTags") or ()),
                   detail.get("imageManifestMediaType"), detail.get("artifactMediaType"))

    def build(self, pattern=None) -> Build:
        """The build this image is, named by `build.build_tag`; ValueError when no tag may name it."""
        return Build.from_image({"imageDigest": self.digest, "imageTags": list(self.tags),
                                 "imagePushedAt": self.pushed_at}, pattern)


# An image in ECR is a build; the name stays for the deployers and tests that speak of images.
Image = Build


def _check_deadline(deadline: float | None, doing: str) -> None:
    if deadline is not None and time.monotonic() > deadline:
        raise OutOfTime(f"out of time while {doing}")


def list_ecr_images(ecr, repository: str, *, deadline: float | None = None) -> list[EcrImage]:
    """Every tagged image of the repository, oldest push first (pages through describe_images).

    Pushes within the same second (moto's resolution) are ordered by digest: their real order is
    not known. Raises `OutOfTime` when `deadline` (time.monotonic()) passes between pages, and
    botocore's ClientError / BotoCoreError as the client raises them.
    """
    images = []
    paginator = ecr.get_paginator("describe_images")
    for page in paginator.paginate(repositoryName=repository, filter={"tagStatus": "TAGGED"}):
        images.extend(EcrImage.from_detail(d) for d in page.get("imageDetails", []) if d.get("imageTags"))
        _check_deadline(deadline, f"listing the images of {repository}")
    return sorted(images)


def artifact_reason(image: EcrImage, manifest: Mapping[str, Any] | None = None) -> str | None:
    """Why `image` is not a runnable image (a signature, attestation, SBOM or other OCI artifact),
    or None when it is one. See the module's documentation for the rule and its sources.

    Without `manifest`, only what `describe_images` reports is used (`needs_manifest` says when
    that is not enough); with it (the parsed `batch_get_image` manifest), the manifest's
    `artifactType`, `subject`, config and layer media types too.
    """
    signatures = [t for t in image.tags if is_signature_tag(t)]
    if signatures and len(signatures) == len(image.tags):
        return f"a signature, attestation or SBOM of another image (tag {signatures[0]}: cosign's tag convention)"
    media = image.manifest_media_type
    if media and media not in _INDEXES and media != OCI_MANIFEST and media not in _DOCKER:
        return f"an OCI artifact (manifest media type {media})"
    if image.artifact_media_type and media not in _INDEXES and image.artifact_media_type not in IMAGE_CONFIG_TYPES:
        return f"an OCI artifact (artifact media type {image.artifact_media_type})"
    if manifest is None:
        return None
    if manifest.get("artifactType"):
        return f"an OCI artifact (artifactType {manifest['artifactType']})"
    subject = manifest.get("subject")
    if isinstance(subject, Mapping):
        return f"an OCI 1.1 referrer of {subject.get('digest', 'another image')} (signature, attestation or SBOM)"
    if manifest.get("manifests") is not None:  # an index of images (multi-platform): runnable
        return None
    config = manifest.get("config")
    config_type = config.get("mediaType") if isinstance(config, Mapping) else None
    if config_type is not None and config_type not in IMAGE_CONFIG_TYPES:
        return f"an OCI artifact (config media type {config_type}, not a runnable image's)"
    layer_types = {layer.get("mediaType") for layer in manifest.get("layers") or () if isinstance(layer, Mapping)}
    signature_layers = sorted(t for t in layer_types & SIGNATURE_LAYER_TYPES if t)
    if signature_layers:
        return f"a signature or attestation (layer media type {signature_layers[0]})"
    return None


def needs_manifest(image: EcrImage) -> bool:
    """True when `describe_images` does not tell whether the image is runnable: an OCI manifest or
    index (or no media type) without `artifactMediaType`, and no verdict from its tags."""
    if artifact_reason(image) is not None or image.manifest_media_type in _DOCKER:
        return False
    return image.artifact_media_type is None or image.manifest_media_type in _INDEXES


def manifests(ecr, repository: str, digests: Iterable[str], *,
              deadline: float | None = None) -> dict[str, Mapping[str, Any] | None]:
    """digest -> the parsed manifest (batch_get_image, 100 per call); None for a manifest ECR did not
    return or that is not JSON. Raises `OutOfTime` when `deadline` passes between calls."""
    wanted = list(dict.fromkeys(digests))
    found: dict[str, Mapping[str, Any] | None] = dict.fromkeys(wanted)
    accepted = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, *DOCKER_SCHEMA1]
    for start in range(0, len(wanted), _BATCH_GET_MAX):
        _check_deadline(deadline, f"reading the manifests of {repository}")
        chunk = wanted[start:start + _BATCH_GET_MAX]
        response = ecr.batch_get_image(repositoryName=repository, imageIds=[{"imageDigest": d} for d in chunk],
                                       acceptedMediaTypes=accepted)
        for item in response.get("images", []):
            try:
                parsed = json.loads(item.get("imageManifest") or "")
            except ValueError:
                parsed = None
            found[item["imageId"]["imageDigest"]] = parsed if isinstance(parsed, Mapping) else None
    return found


@dataclass(frozen=True)
class Sorted:
    """Images sorted into builds and the rest, with the reason for each of the rest."""

    builds: list[Build]  # oldest first
    not_builds: dict[str, str]  # digest -> why it is not a build (never one: signatures, artifacts)
    unnamed: dict[str, str]  # digest -> why no tag names it (yet): looked at again next tick


def sort_images(ecr, repository: str, images: Iterable[EcrImage], *, pattern=None,
                deadline: float | None = None) -> Sorted:
    """`images` sorted into builds (named by `build.build_tag` with `pattern`), images that are
    never builds, and images no tag may name yet; manifests are read (`manifests`) only for the
    images whose tags and `describe_images` media types do not tell."""
    builds, not_builds, unnamed, candidates = [], {}, {}, []
    for image in sorted(images):
        reason = artifact_reason(image)
        if reason:
            not_builds[image.digest] = reason
        elif build_tag(image.tags, pattern) is None:
            unnamed[image.digest] = (f"no tag matches ULT_BUILD_TAG_PATTERN={getattr(pattern, 'pattern', pattern)} "
                                     f"(tags: {', '.join(sorted(image.tags))})")
        else:
            candidates.append(image)
    fetched = manifests(ecr, repository, [i.digest for i in candidates if needs_manifest(i)], deadline=deadline)
    for image in candidates:
        reason = artifact_reason(image, fetched.get(image.digest))
        if reason:
            not_builds[image.digest] = reason
        else:
            builds.append(image.build(pattern))
    return Sorted(builds, not_builds, unnamed)


def list_images(ecr, repository: str, *, pattern=None) -> list[Build]:
    """Every build of the repository (`sort_images`: signatures, artifacts and images no tag may name
    left out), oldest push first."""
    return sort_images(ecr, repository, list_ecr_images(ecr, repository), pattern=pattern).builds


def find_image(ecr, repository: str, key: str) -> Build | None:
    """The image of the repository whose partition key is `key`, whatever rule named it: the image
    whose digest starts with the key's 12 hex digits (the one that still carries the key's tag
    first: a moving tag may have left it); None when there is none (or `key` is not a partition
    key). The build returned is named by `key`."""
    parts = split_key(key)
    if parts is None:
        return None
    tag, short = parts
    matches = [i for i in list_ecr_images(ecr, repository) if short_digest(i.digest) == short]
    matches.sort(key=lambda i: tag not in i.tags)
    return Build.of(tag, matches[0].digest, matches[0].pushed_at) if matches else None


@dataclass(frozen=True)
class Cursor:
    """The newest push time seen, and the digests seen (bounded), as the sensor keeps them.

    A digest is seen once it was sorted (a build, or never one); an image no tag may name yet
    is not, so that a tag added later makes it a build.
    """

    last_pushed_at: str | None
    seen: tuple[str, ...]

    @classmethod
    def parse(cls, text: str | None) -> Cursor:
        if not text:
            return cls(None, ())
        data = json.loads(text)
        return cls(data.get("last_pushed_at"), tuple(data.get("seen", ())))

    def dump(self) -> str:
        return json.dumps({"last_pushed_at": self.last_pushed_at, "seen": list(self.seen)})

    def remember(self, images: Iterable[EcrImage | Build]) -> Cursor:
        """This cursor with `images` seen too (the oldest digests forgotten beyond SEEN_DIGESTS_KEPT)."""
        images = list(images)
        if not images:
            return self
        last_seen = pushed_at_utc(self.last_pushed_at) if self.last_pushed_at else None
        last = max([t for t in (last_seen,) if t] + [i.pushed_at for i in images])
        ordered = dict.fromkeys([*self.seen, *(i.digest for i in images)])
        return Cursor(last.isoformat(), tuple(ordered)[-SEEN_DIGESTS_KEPT:])


def new_images(images: list, cursor: Cursor) -> tuple[list, Cursor]:
    """Images (`EcrImage` or `Build`) not seen before, oldest first, and the cursor that remembers
    them all.

    A retag of a known digest is not new. Pushes in the same second as the last one seen
    are compared by digest, not by time, so none is lost or repeated.
    """
    seen = set(cursor.seen)
    # Compared as times, not as text: a cursor written with another UTC offset still orders right.
    last_seen = pushed_at_utc(cursor.last_pushed_at) if cursor.last_pushed_at else None
    fresh: list = []
    for image in sorted(images, key=lambda i: (i.pushed_at, i.digest)):
        if image.digest in seen:
            continue
        if last_seen and image.pushed_at < last_seen and len(seen) >= SEEN_DIGESTS_KEPT:
            # Older than anything we track and our memory is full: it was seen long ago.
            continue
        fresh.append(image)
        seen.add(image.digest)
    if not fresh:
        return [], cursor
    return fresh, cursor.remember(fresh)
