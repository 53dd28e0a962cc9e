"""User-service images in ECR: listing them, and which ones are new since a cursor (pure).

An image is a `Build` (ult_pipeline.build): its partition key, run tags and push time live there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ult_pipeline.build import Build, pushed_at_utc

# Digests remembered in the cursor: enough to recognise retags and same-second pushes.
SEEN_DIGESTS_KEPT = 2000

# An image in ECR is a build; the name stays for the deployers and tests that speak of images.
Image = Build


def list_images(ecr, repository: str) -> list[Image]:
    """Every tagged image of the repository, oldest push first (pages through describe_images).

    Pushes within the same second (moto's resolution) are ordered by digest: their real
    order is not known.
    """
    images = []
    paginator = ecr.get_paginator("describe_images")
    for page in paginator.paginate(repositoryName=repository, filter={"tagStatus": "TAGGED"}):
        for detail in page.get("imageDetails", []):
            if detail.get("imageTags"):
                # An image with several tags is one build, named after its first tag (Build.from_image).
                images.append(Build.from_image(detail))
    return sorted(images)


def find_image(ecr, repository: str, key: str) -> Build | None:
    """The image of the repository whose partition key is `key`; None when there is none."""
    return next((image for image in list_images(ecr, repository) if image.key == key), None)


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
    # Compared as times, not as text: a cursor written with another UTC offset still orders right.
    last_seen = pushed_at_utc(cursor.last_pushed_at) if cursor.last_pushed_at else None
    fresh: list[Image] = []
    for image in sorted(images):
        if image.digest in seen:
            continue
        if last_seen and image.pushed_at < last_seen and len(seen) >= SEEN_DIGESTS_KEPT:
            # Older than anything we track and our memory is full: it was seen long ago.
            continue
        fresh.append(image)
        seen.add(image.digest)
    if not fresh:
        return [], cursor
    ordered = list(cursor.seen) + [i.digest for i in fresh]
    last = max([t for t in (last_seen,) if t] + [i.pushed_at for i in fresh])
    return fresh, Cursor(last.isoformat(), tuple(dict.fromkeys(ordered))[-SEEN_DIGESTS_KEPT:])
