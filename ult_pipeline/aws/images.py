"""User-service images in ECR: listing them, and which ones are new since a cursor (pure)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

# Digests remembered in the cursor: enough to recognise retags and same-second pushes.
SEEN_DIGESTS_KEPT = 2000


@dataclass(frozen=True, order=True)
class Image:
    pushed_at: datetime
    digest: str
    tag: str

    @property
    def short_digest(self) -> str:
        return self.digest.split(":", 1)[-1][:12]

    @property
    def partition_key(self) -> str:
        return f"{self.tag}-{self.short_digest}"


def list_images(ecr, repository: str) -> list[Image]:
    """Every tagged image of the repository, oldest push first (pages through describe_images).

    Pushes within the same second (moto's resolution) are ordered by digest: their real
    order is not known.
    """
    images = []
    paginator = ecr.get_paginator("describe_images")
    for page in paginator.paginate(repositoryName=repository, filter={"tagStatus": "TAGGED"}):
        for detail in page.get("imageDetails", []):
            tags = sorted(detail.get("imageTags") or [])
            if tags:
                # An image with several tags is one build: name it after its first tag.
                images.append(Image(detail["imagePushedAt"], detail["imageDigest"], tags[0]))
    return sorted(images)


@dataclass(frozen=True)
class Cursor:
    """The newest push time seen, and the digests seen (bounded), as the sensor keeps them."""

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


def new_images(images: list[Image], cursor: Cursor) -> tuple[list[Image], Cursor]:
    """Images not seen before, oldest first, and the cursor that remembers them.

    A retag of a known digest is not new. Pushes in the same second as the last one seen
    are compared by digest, not by time, so none is lost or repeated.
    """
    seen = set(cursor.seen)
    fresh: list[Image] = []
    for image in sorted(images):
        if image.digest in seen:
            continue
        if cursor.last_pushed_at and image.pushed_at.isoformat() < cursor.last_pushed_at and len(seen) >= SEEN_DIGESTS_KEPT:
            # Older than anything we track and our memory is full: it was seen long ago.
            continue
        fresh.append(image)
        seen.add(image.digest)
    if not fresh:
        return [], cursor
    ordered = list(cursor.seen) + [i.digest for i in fresh]
    last = max([cursor.last_pushed_at or ""] + [i.pushed_at.isoformat() for i in fresh])
    return fresh, Cursor(last, tuple(dict.fromkeys(ordered))[-SEEN_DIGESTS_KEPT:])
