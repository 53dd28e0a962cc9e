"""A build: one user-service image pushed to ECR, and the one home of its identity.

A build is named by its partition key, `<tag>-<the first 12 hex digits of its digest>`
(`v1.2.3-0123456789ab`), where the tag is the image's most specific tag (`build_tag`: a version
tag before other tags, before moving tags such as `latest`). This module is the only place that formats or parses that key, that
knows the run tags the sensor puts on a build's run (`ult/image_tag`, `ult/image_digest`,
`ult/pushed_at`), and that turns a push time in any of its forms (datetime, ISO text, pandas
Timestamp) into one: a timezone-aware datetime in UTC.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# Run tags of a build's run (set by the ECR sensor, read by the assets).
RUN_TAG_IMAGE = "ult/image_tag"
RUN_TAG_DIGEST = "ult/image_digest"
RUN_TAG_PUSHED_AT = "ult/pushed_at"
RUN_TAGS = (RUN_TAG_IMAGE, RUN_TAG_DIGEST, RUN_TAG_PUSHED_AT)

# Hex digits of the digest in a partition key.
SHORT_DIGEST_LENGTH = 12
_KEY = re.compile(rf"(?P<tag>.+)-(?P<short>[0-9a-f]{{{SHORT_DIGEST_LENGTH}}})")
# `sha256:<hex>` as ECR gives it, or the short digest alone when only the key is known.
_DIGEST = re.compile(rf"(?:[a-z0-9]+(?:[+._-][a-z0-9]+)*:)?[0-9a-f]{{{SHORT_DIGEST_LENGTH},}}")


def pushed_at_utc(value: Any) -> datetime:
    """A push time as a timezone-aware datetime in UTC.

    Accepts a datetime (also a pandas Timestamp), ISO 8601 text (`Z` or an offset; the form run
    tags and metadata carry) or seconds since the epoch. A time without a zone is taken as UTC,
    as `pd.to_datetime(..., utc=True)` takes it. Raises ValueError for text that is not a time
    and for a missing time (None, NaT, NaN).
    """
    if value is None:
        raise ValueError("no push time")
    if isinstance(value, str):
        text = value.strip()
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"push time {text!r} is not an ISO 8601 date/time") from None
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if value != value:  # NaN
            raise ValueError("no push time (NaN)")
        value = datetime.fromtimestamp(value, UTC)
    if not isinstance(value, datetime):
        raise TypeError(f"a push time is a datetime, ISO text or pandas Timestamp, not {type(value).__name__}")
    if value != value:  # pandas NaT is a datetime that is not equal to itself
        raise ValueError("no push time (NaT)")
    if hasattr(value, "to_pydatetime"):  # pandas Timestamp: a plain datetime (microseconds)
        value = value.to_pydatetime()
    if value.tzinfo is None or value.utcoffset() is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def short_digest(digest: str) -> str:
    """The first 12 hex digits of a digest (`sha256:` left out)."""
    return digest.split(":", 1)[-1][:SHORT_DIGEST_LENGTH]


def split_key(key: str) -> tuple[str, str] | None:
    """(tag, short digest) of a partition key; None when `key` is not `<tag>-<12 hex digits>`.

    The tag is everything before the last `-`, so tags with `-` and `.` (`v1.2.3-rc.1`) come
    back whole.
    """
    match = _KEY.fullmatch(key)
    return (match["tag"], match["short"]) if match else None


def tag_of(key: str) -> str:
    """The image tag of a partition key; a name that is not a partition key comes back as it is
    (histories read from CSV may name builds freely)."""
    parts = split_key(key)
    return parts[0] if parts else key


# --- which tag names a build -------------------------------------------------------------------
# Tags that name another image's digest, never a build: cosign stores a signature, attestation and
# SBOM of image `sha256:<hex>` under the tag `sha256-<hex>.sig` / `.att` / `.sbom` (cosign's
# "triangulate" convention); registries without the OCI 1.1 referrers API keep an image's referrers
# in an index tagged `sha256-<hex>` (OCI distribution-spec 1.1, "referrers tag schema").
_SIGNATURE_TAG = re.compile(r"(?:sha256|sha512)-[0-9a-f]{64,128}(?:\.[A-Za-z0-9_-]+)?")
# A version tag: semver-ish, optional `v`, two or three numbers, optional pre-release/variant suffix
# (`v2.3.0`, `2.3.0`, `v2.3`, `2.3.0-rc.1`). Docker tags cannot hold semver's `+build`.
_VERSION_TAG = re.compile(r"[vV]?(?P<numbers>\d+\.\d+(?:\.\d+)?)(?P<suffix>-[0-9A-Za-z][0-9A-Za-z.-]*)?")
# Tags that move from build to build: they say where an image is, not which one it is. A bare major
# version (`v2`, `2`) moves too.
MOVING_TAGS = frozenset({
    "latest", "main", "master", "trunk", "head", "stable", "dev", "develop", "development", "edge", "nightly",
    "next", "canary", "beta", "alpha", "staging", "stage", "production", "prod", "release", "current", "test",
    "qa", "preview", "snapshot",
})
_MAJOR_ONLY = re.compile(r"[vV]?\d+")


def is_signature_tag(tag: str) -> bool:
    """True for a tag that names another image's digest (`sha256-<hex>.sig`, `.att`, `.sbom`, or the
    OCI 1.1 referrers fallback tag `sha256-<hex>`): a signature, attestation, SBOM or referrers
    index, never a build."""
    return bool(_SIGNATURE_TAG.fullmatch(tag))


def is_version_tag(tag: str) -> bool:
    """True for a version tag: `v2.3.0`, `2.3.0`, `v2.3`, `2.3.0-rc.1` (optional `v`, two or three
    numbers, optional suffix after `-`)."""
    return bool(_VERSION_TAG.fullmatch(tag))


def is_moving_tag(tag: str) -> bool:
    """True for a tag that moves from build to build (`MOVING_TAGS`, any case, or a bare major
    version such as `v2`)."""
    return tag.lower() in MOVING_TAGS or bool(_MAJOR_ONLY.fullmatch(tag))


def tag_rank(tag: str) -> tuple:
    """How specific a tag is, smallest first: version tags (more numbers first: `2.3.0` before
    `2.3`), then other tags (`git-3f9c2e1`, `build-42`), then moving tags (`latest`, `main`, `v2`);
    ties by the tag's text, so the rule is deterministic."""
    version = _VERSION_TAG.fullmatch(tag)
    if version:
        return (0, -version["numbers"].count("."), tag)
    return (2 if is_moving_tag(tag) else 1, 0, tag)


def name_tags(tags: Iterable[str], pattern: str | re.Pattern | None = None) -> list[str]:
    """The tags that may name a build, most specific first (`tag_rank`): signature tags
    (`is_signature_tag`) never, and with `pattern` (ULT_BUILD_TAG_PATTERN) only tags it matches
    in full (`re.fullmatch`)."""
    if isinstance(pattern, str):
        pattern = re.compile(pattern)
    names = [t for t in dict.fromkeys(tags) if t and not is_signature_tag(t)]
    if pattern is not None:
        names = [t for t in names if pattern.fullmatch(t)]
    return sorted(names, key=tag_rank)


def build_tag(tags: Iterable[str], pattern: str | re.Pattern | None = None) -> str | None:
    """The tag a build is named after: its most specific tag (`name_tags`); None when no tag may
    name it (only signature tags, or none matching `pattern`).

    `["latest", "v2.3.0"]` -> `v2.3.0`; `["main", "git-3f9c2e1"]` -> `git-3f9c2e1`;
    `["latest"]` -> `latest`.
    """
    names = name_tags(tags, pattern)
    return names[0] if names else None


def _check_tag(tag: str) -> None:
    if not isinstance(tag, str) or not tag or any(c.isspace() or not c.isprintable() for c in tag):
        raise ValueError(f"image tag {tag!r}: must be non-empty, without spaces or control characters")


@dataclass(frozen=True, order=True)
class Build:
    """One image: when it was pushed, its digest and the tag it is named after.

    Ordered by push time (then digest, then tag), as ECR lists images. `pushed_at` is always
    aware UTC; it is None only for a build known from its partition key alone
    (`from_partition_key`), whose `digest` is then the 12 hex digits of the key.
    """

    pushed_at: datetime | None
    digest: str
    tag: str

    def __post_init__(self) -> None:
        _check_tag(self.tag)
        if not isinstance(self.digest, str) or not _DIGEST.fullmatch(self.digest):
            raise ValueError(f"image digest {self.digest!r}: expected sha256:<hex digits> "
                             f"(at least {SHORT_DIGEST_LENGTH} lowercase hex digits)")
        if self.pushed_at is not None:
            object.__setattr__(self, "pushed_at", pushed_at_utc(self.pushed_at))

    # --- conversions ------------------------------------------------------------------------
    @classmethod
    def of(cls, tag: str, digest: str, pushed_at: Any = None) -> Build:
        """A build from its parts (`pushed_at` in any form `pushed_at_utc` accepts, or None)."""
        return cls(None if pushed_at is None else pushed_at_utc(pushed_at), digest, tag)

    @classmethod
    def from_image(cls, image: Mapping[str, Any] | Any, pattern: str | re.Pattern | None = None) -> Build:
        """A build from an ECR image: a `describe_images` imageDetails entry (an image with several
        tags is one build, named after its most specific tag, `build_tag`), or anything with `tag`,
        `digest` and `pushed_at` attributes. Raises ValueError for an image without a tag that may
        name a build (untagged, signature tags only, or none matching `pattern`)."""
        if isinstance(image, Mapping):
            tags = image.get("imageTags") or []
            tag = build_tag(tags, pattern)
            if tag is None:
                why = "has no tag" if not tags else f"has no tag that names a build ({', '.join(sorted(tags))})"
                raise ValueError(f"image {image.get('imageDigest')!r} {why}: it is not a build")
            return cls.of(tag, image["imageDigest"], image["imagePushedAt"])
        return cls.of(image.tag, image.digest, image.pushed_at)

    @classmethod
    def from_partition_key(cls, key: str) -> Build:
        """The build a partition key names, as far as the key tells: tag and short digest, no push
        time. Raises ValueError when `key` is not `<tag>-<12 hex digits>`."""
        parts = split_key(key)
        if parts is None:
            raise ValueError(f"{key!r} is not a build's partition key (<tag>-<{SHORT_DIGEST_LENGTH} hex digits "
                             "of the digest>)")
        return cls(None, parts[1], parts[0])

    @classmethod
    def from_run_tags(cls, tags: Mapping[str, str]) -> Build | None:
        """The build a run's tags name (see `to_run_tags`); None when they name none (a run
        started by hand). Raises ValueError when they name one only in part or malformed."""
        present = [name for name in RUN_TAGS if tags.get(name)]
        if not present:
            return None
        missing = [name for name in RUN_TAGS if name not in present]
        if missing:
            raise ValueError(f"run tags name a build only in part: {', '.join(missing)} missing")
        return cls.of(tags[RUN_TAG_IMAGE], tags[RUN_TAG_DIGEST], tags[RUN_TAG_PUSHED_AT])

    @classmethod
    def from_run(cls, tags: Mapping[str, str], key: str) -> Build | None:
        """The build a run of partition `key` is tagged with; None when its tags name no build,
        name one only in part or malformed (set by hand), or name another partition's build."""
        try:
            build = cls.from_run_tags(tags)
        except (ValueError, TypeError):
            return None
        return build if build is not None and build.key == key else None

    @classmethod
    def image_tag_of_run(cls, tags: Mapping[str, str], key: str) -> str:
        """The image tag of a run of partition `key`: as its tags name the build (set by the sensor), else
        as far as the key tells (`tag_of`)."""
        build = cls.from_run(tags, key)
        return build.tag if build is not None else tag_of(key)

    def to_run_tags(self) -> dict[str, str]:
        """The run tags that name this build on its run."""
        if self.pushed_at is None:
            raise ValueError(f"build {self.key!r} is known by its key alone: no digest and push time to tag a run with")
        return {RUN_TAG_IMAGE: self.tag, RUN_TAG_DIGEST: self.digest, RUN_TAG_PUSHED_AT: self.pushed_at.isoformat()}

    # --- identity ---------------------------------------------------------------------------
    @property
    def short_digest(self) -> str:
        return short_digest(self.digest)

    @property
    def key(self) -> str:
        """The partition key: `<tag>-<the first 12 hex digits of the digest>`."""
        return f"{self.tag}-{self.short_digest}"

    @property
    def partition_key(self) -> str:
        """Same as `key`."""
        return self.key

    @property
    def complete(self) -> bool:
        """Known in full (digest and push time), not from a partition key alone."""
        return self.pushed_at is not None
