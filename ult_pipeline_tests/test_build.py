"""`Build`: a build's identity (partition key, tag, digest, push time, run tags) in one place."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest

import ult_pipeline
from ult_pipeline.aws.images import SEEN_DIGESTS_KEPT, Cursor, Image, new_images
from ult_pipeline.build import (
    RUN_TAG_DIGEST,
    RUN_TAG_IMAGE,
    RUN_TAG_PUSHED_AT,
    Build,
    pushed_at_utc,
    split_key,
    tag_of,
)

DIGEST = "sha256:" + "0123456789abcdef" * 4
SHORT = "0123456789ab"
PUSHED = datetime(2026, 3, 1, 12, 30, 5, tzinfo=UTC)
ODD_TAGS = ["v1.2.3", "v1.2.3-rc.1", "latest", "feature-x.y-z", "1.0", "release_2026.03-01",
            SHORT, "a-fedcba987654", "v1-" + SHORT, "x"]


def digest(n: int) -> str:
    return f"sha256:{n:064x}"


@pytest.mark.parametrize("tag", ODD_TAGS)
def test_the_key_round_trips_for_every_kind_of_tag(tag):
    build = Build.of(tag, DIGEST, PUSHED)
    assert build.key == f"{tag}-{SHORT}" and build.partition_key == build.key
    assert tag_of(build.key) == tag
    assert split_key(build.key) == (tag, SHORT)
    back = Build.from_partition_key(build.key)
    assert (back.tag, back.digest, back.pushed_at, back.key) == (tag, SHORT, None, build.key)
    assert not back.complete and build.complete


@pytest.mark.parametrize("tag", ODD_TAGS)
def test_run_tags_round_trip(tag):
    build = Build.of(tag, DIGEST, PUSHED)
    tags = build.to_run_tags()
    assert tags == {RUN_TAG_IMAGE: tag, RUN_TAG_DIGEST: DIGEST, RUN_TAG_PUSHED_AT: "2026-03-01T12:30:05+00:00"}
    assert Build.from_run_tags(tags) == build
    # Other tags on the run (Dagster's own) are no matter.
    assert Build.from_run_tags({**tags, "dagster/partition": build.key}) == build
    assert Build.from_run(tags, build.key) == build


def test_run_tags_that_name_no_build_or_another_one():
    assert Build.from_run_tags({}) is None
    assert Build.from_run_tags({"dagster/partition": "v1-" + SHORT}) is None
    with pytest.raises(ValueError, match="only in part: ult/pushed_at missing"):
        Build.from_run_tags({RUN_TAG_IMAGE: "v1", RUN_TAG_DIGEST: DIGEST})
    tags = Build.of("v1", DIGEST, PUSHED).to_run_tags()
    assert Build.from_run(tags, "v2-" + SHORT) is None  # another partition's build: not this run's
    assert Build.from_run({RUN_TAG_IMAGE: "v1"}, "v1-" + SHORT) is None  # set by hand, in part
    assert Build.from_run({**tags, RUN_TAG_PUSHED_AT: "yesterday"}, "v1-" + SHORT) is None
    with pytest.raises(ValueError, match="key alone"):
        Build.from_partition_key("v1-" + SHORT).to_run_tags()


def test_names_that_are_not_keys():
    for name in ("b1", "v1-abc123", "latest", "v1-0123456789AB", "v1-0123456789abc", "-" + SHORT, ""):
        assert tag_of(name) == name
        assert split_key(name) is None
        with pytest.raises(ValueError, match="not a build's partition key"):
            Build.from_partition_key(name)
    # The one parser is the one `ult analyze` and the gate use.
    from ult_pipeline.analysis import gate, regression
    assert regression.tag_of is tag_of and gate.tag_of is tag_of


@pytest.mark.parametrize("value", [
    PUSHED,
    PUSHED.astimezone(timezone(timedelta(hours=-5))),
    PUSHED.replace(tzinfo=None),  # no zone: UTC, as pd.to_datetime(utc=True) reads it
    "2026-03-01T12:30:05+00:00",
    "2026-03-01T12:30:05Z",
    "2026-03-01T14:30:05+02:00",
    " 2026-03-01 12:30:05 ",
    pd.Timestamp("2026-03-01 12:30:05", tz="UTC"),
    pd.Timestamp("2026-03-01 13:30:05", tz="Europe/Paris"),
    pd.Timestamp("2026-03-01 12:30:05"),
    PUSHED.timestamp(),
    int(PUSHED.timestamp()),
])
def test_pushed_at_in_every_form_is_aware_utc(value):
    normal = pushed_at_utc(value)
    assert normal == PUSHED and normal.utcoffset() == timedelta(0) and normal.tzinfo is UTC
    assert type(normal) is datetime  # not a pandas Timestamp
    assert Build.of("v1", DIGEST, value).pushed_at == PUSHED
    assert Build(value if isinstance(value, datetime) else PUSHED, DIGEST, "v1").pushed_at.tzinfo is UTC


def test_pushed_at_keeps_microseconds_and_refuses_what_is_not_a_time():
    assert pushed_at_utc("2026-03-01T12:30:05.123456Z").microsecond == 123456
    for bad, error in [(None, ValueError), (pd.NaT, ValueError), ("yesterday", ValueError), ("", ValueError),
                       (float("nan"), ValueError), (object(), TypeError), ([], TypeError)]:
        with pytest.raises(error):
            pushed_at_utc(bad)


def test_a_build_from_an_ecr_image():
    detail = {"imageDigest": DIGEST, "imageTags": ["v2", "latest", "v1.0.0-rc.1"],
              "imagePushedAt": PUSHED.astimezone(timezone(timedelta(hours=9)))}
    build = Build.from_image(detail)
    # Several tags are one build, named after the most specific: the version tag (v2 is a moving major).
    assert (build.tag, build.digest, build.pushed_at, build.key) == ("v1.0.0-rc.1", DIGEST, PUSHED,
                                                                     "v1.0.0-rc.1-" + SHORT)
    assert Build.from_image(build) == build
    with pytest.raises(ValueError, match="no tag"):
        Build.from_image({"imageDigest": DIGEST, "imageTags": [], "imagePushedAt": PUSHED})
    with pytest.raises(ValueError, match="no tag that names a build"):
        Build.from_image({"imageDigest": DIGEST, "imageTags": [f"sha256-{'ab' * 32}.sig"], "imagePushedAt": PUSHED})
    with pytest.raises(ValueError, match="no tag that names a build"):
        Build.from_image(detail, pattern=r"v\d+\.\d+\.\d+")
    assert Build.from_image(detail, pattern=r"v\d+\.\d+\.\d+(-.+)?").tag == "v1.0.0-rc.1"


# The rule, case by case (pure: no Dagster, no ECR).
NAMES = [
    (["v2.3.0", "latest"], "v2.3.0"),  # issue 14: the release was named latest-<digest>
    (["latest", "2.3.0"], "2.3.0"),
    (["v2.3", "v2.3.0", "v2", "latest"], "v2.3.0"),  # more numbers: more specific
    (["main", "git-3f9c2e1"], "git-3f9c2e1"),  # a specific tag before a moving one
    (["stable", "build-42", "v1.0.0-rc.1"], "v1.0.0-rc.1"),
    (["latest", "main"], "latest"),  # only moving tags: the first by name
    (["Latest", "nightly-2026-11-30"], "nightly-2026-11-30"),
    (["latest"], "latest"),
    ([f"sha256-{'ab' * 32}.sig", "v1.0.0"], "v1.0.0"),
    ([f"sha256-{'ab' * 32}.sig"], None),  # cosign signature
    ([f"sha256-{'ab' * 32}.att"], None),  # cosign attestation
    ([f"sha256-{'ab' * 32}.sbom"], None),  # cosign SBOM
    ([f"sha256-{'ab' * 32}"], None),  # OCI 1.1 referrers tag schema
    ([], None),
]


@pytest.mark.parametrize(("tags", "name"), NAMES)
def test_a_build_is_named_after_its_most_specific_tag(tags, name):
    from ult_pipeline.build import build_tag

    assert build_tag(tags) == name
    assert build_tag(list(reversed(tags))) == name  # whatever order ECR lists them in


def test_the_build_tag_pattern_limits_the_tags_that_name_builds():
    from ult_pipeline.build import build_tag, is_moving_tag, is_signature_tag, is_version_tag

    assert build_tag(["v2.3.0", "latest"], r"latest") == "latest"
    assert build_tag(["v2.3.0", "latest"], r"v\d+") is None  # matched in full, not searched
    assert build_tag(["release-7", "v2.3.0"], re.compile(r"release-\d+")) == "release-7"
    assert build_tag([f"sha256-{'ab' * 32}.sig"], r".*") is None  # a signature never names a build
    assert is_version_tag("2.3.0") and is_version_tag("V1.2") and not is_version_tag("v2") and not is_version_tag("1.2.3.4")
    assert is_moving_tag("v2") and is_moving_tag("MAIN") and not is_moving_tag("git-3f9c2e1")
    assert not is_signature_tag("sha256-abc.sig")  # not a digest


def test_malformed_builds_are_refused():
    for tag in ("", "v 1", "v1\n", "\tv1"):
        with pytest.raises(ValueError, match="image tag"):
            Build.of(tag, DIGEST, PUSHED)
    for bad in ("", "sha256:", "sha256:0123", "sha256:" + "G" * 64, "0123456789AB"):
        with pytest.raises(ValueError, match="image digest"):
            Build.of("v1", bad, PUSHED)


def test_builds_are_frozen_values_ordered_by_push():
    a = Build.of("v2", digest(2), PUSHED)
    b = Build.of("v1", digest(1), PUSHED + timedelta(seconds=1))
    c = Build.of("v0", digest(0), PUSHED)
    assert sorted([b, a, c]) == [c, a, b]  # push time, then digest
    assert a == Build.of("v2", digest(2), PUSHED.isoformat()) and hash(a) == hash(Build.of("v2", digest(2), PUSHED))
    with pytest.raises(AttributeError):
        a.tag = "v3"  # type: ignore[misc]
    assert Image is Build


def test_a_cursor_written_with_another_offset_still_orders_by_time():
    # The cursor's last push was written at +02:00 (12:30:05 UTC); a later image whose UTC text
    # sorts earlier ("10:..." < "14:...") is still new once the cursor's memory is full.
    seen = tuple(digest(n) for n in range(SEEN_DIGESTS_KEPT))
    cursor = Cursor("2026-03-01T14:30:05+02:00", seen)
    later = Build.of("v9", digest(10**6), PUSHED + timedelta(minutes=1))
    older = Build.of("v8", digest(10**6 + 1), PUSHED - timedelta(hours=1))
    fresh, after = new_images([older, later], cursor)
    assert fresh == [later]
    assert after.last_pushed_at == later.pushed_at.isoformat() and after.seen[-1] == later.digest


# --- no module but ult_pipeline/build.py formats or parses a build's identity ------------------------

SOURCE = Path(ult_pipeline.__file__).parent
FORBIDDEN = {
    "a digest sliced to its short form": re.compile(r"""digest\W{0,3}\s*\[\s*-?\d*\s*:\s*-?\d+\s*\]|\]\s*\[\s*:\s*12\s*\]"""),
    "the digest's hex digits sliced by position": re.compile(r"\[\s*7\s*:\s*19\s*\]"),
    "a key made by hand from a tag": re.compile(r"""\{[^{}]*\btag\}-\{"""),
    "a key's short digest matched": re.compile(r"\[0-9a-f\]\{12\}"),
    "a key split at its last '-'": re.compile(r"""rsplit\(\s*["']-["']"""),
    "a run tag's name spelled out": re.compile(r"""["']ult/(image_tag|image_digest|pushed_at)["']"""),
    "a second parser of keys": re.compile(r"^\s*def (tag_of|split_key|short_digest)\b", re.MULTILINE),
}


def test_no_module_outside_build_formats_or_parses_a_key():
    files = sorted(SOURCE.rglob("*.py"))
    assert SOURCE / "build.py" in files and len(files) > 20
    offences = []
    for path in files:
        if path == SOURCE / "build.py":
            continue
        text = path.read_text(encoding="utf-8")
        for what, pattern in FORBIDDEN.items():
            for match in pattern.finditer(text):
                line = text.count("\n", 0, match.start()) + 1
                offences.append(f"{path.relative_to(SOURCE.parent)}:{line}: {what}: {match.group(0)!r}")
    assert not offences, "use ult_pipeline.build (Build.key, tag_of, to_run_tags...):\n" + "\n".join(offences)


def test_the_grep_patterns_catch_what_they_are_for():
    caught = {
        "f\"{build.tag}-{pushed['digest'][7:19]}\"": {"a digest sliced to its short form",
                                                      "the digest's hex digits sliced by position",
                                                      "a key made by hand from a tag"},
        'return self.digest.split(":", 1)[-1][:12]': {"a digest sliced to its short form"},
        'f"{self.tag}-{self.short_digest}"': {"a key made by hand from a tag"},
        'return re.sub(r"-[0-9a-f]{12}$", "", build)': {"a key's short digest matched"},
        'tags.get("ult/image_tag")': {"a run tag's name spelled out"},
        "def tag_of(build):": {"a second parser of keys"},
        'key.rsplit("-", 1)[0]': {"a key split at its last '-'"},
        'f"{image.tag} ({image.digest})"': set(),
    }
    for text, expected in caught.items():
        assert {what for what, p in FORBIDDEN.items() if p.search(text)} == expected, text
