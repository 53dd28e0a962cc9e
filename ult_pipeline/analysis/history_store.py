"""The performance history across builds, as files: the one store the pipeline writes and reads.

`k6_results` records each complete build (`HistoryStore.record`): its history rows (the long
table of `history.rows_from_operations`) and a summary (totals, data volume and the run's
reproducibility fingerprint). `regression_comparison`, `trend_report` and `ult demo` read it
back (`load`, `summaries`, `summary`). Dagster's asset metadata is for display only: nothing
reads it back.

One build is two files named by its safe key: `<key>.parquet` (rows) and `<key>.json` (summary,
written last: it makes the build visible). Each is written to a temporary file and moved into
place (`os.replace`), so a reader never sees half a file and a re-run of a build replaces its
files instead of adding to them. A file that cannot be read is skipped with a warning naming it.

The ECR sensor records the tags each image has now (`record_image_tags`, one file
`image-tags/tags.json`, digest -> tags): a build tested as `latest-<digest>` and re-tagged `v2.3.0`
later counts as a release for the `release` baseline. `load` gives them in the rows' `tags` column.

`comparable` restricts a build's baseline to the earlier builds measured the same way: the same
data set, k6 scripts, k6 version and load profile (the fingerprint's fields that change what is
measured; the image and the target's version are what is being measured).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from ult_pipeline.analysis.history import KEY_COLUMNS
from ult_pipeline.build import pushed_at_utc, short_digest, split_key

ROW_COLUMNS = ["build", "pushed_at", "operation", "metric", "value", "samples_path"]
# The rows `load` returns: the stored ones, and the tags the build's image has now in ECR
# (space-separated, as the sensor last recorded them; empty when none are recorded).
HISTORY_COLUMNS = [*ROW_COLUMNS, "tags"]
# Where the sensor records images' current tags (a folder: `summaries` reads the store's top-level JSON files).
IMAGE_TAGS_FILE = Path("image-tags") / "tags.json"
# The table of builds `load` returns (the trend report shows it as it is).
BUILD_COLUMNS = ["build", "pushed_at", "requests", "p95_ms", "error_rate", "students", "dataset_hash"]
FINGERPRINT_FIELDS = ("dataset_hash", "scripts_hash", "k6_version", "load_profile")
SUMMARY_FIELDS = ("build", "pushed_at", "requests", "p95_ms", "error_rate", "students", "interrupted",
                  "k6_version", "scripts_hash", "dataset_hash", "target_version", "image", "load_profile")
# Characters of the dataset hash shown in the table of builds (`sha256:` and 12 hex digits).
_SHOWN_HASH = 19


class HistoryStoreWarning(UserWarning):
    """A stored file was skipped: it could not be read (truncated, corrupt or not the store's)."""


def safe_key(build: str) -> str:
    """The file name stem of a build: letters, digits, `-`, `_` and `.` kept, anything else `_`
    (the results store's partition folders use it too)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in build)


def _json_value(value: Any) -> Any:
    """`value` as strict JSON can hold it: numpy scalars as Python numbers, NaN/inf as None, times as ISO."""
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, datetime):
        return pushed_at_utc(value).isoformat()
    if isinstance(value, Mapping):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    return value


def _write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """`write(temporary path)` beside `path`, then the temporary file moved onto `path`."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@dataclass
class HistoryStore:
    """A folder of builds' history rows and summaries (see the module's documentation)."""

    folder: Path

    def __post_init__(self) -> None:
        self.folder = Path(self.folder).expanduser()

    # --- writing ----------------------------------------------------------------------------
    def record(self, build_summary: Mapping[str, Any], rows: pd.DataFrame) -> Path:
        """Stores one build (replacing what was stored for it); returns the summary's path.

        `build_summary` needs `build` and `pushed_at` (any form `build.pushed_at_utc` takes);
        the other `SUMMARY_FIELDS` are stored when given, and anything else too. `rows` has
        `ROW_COLUMNS` (`samples_path` optional); its build and push time are the summary's.
        """
        summary = dict(build_summary)
        build = str(summary.get("build") or "")
        if not build:
            raise ValueError("a build summary needs the build's name ('build')")
        pushed_at = pushed_at_utc(summary.get("pushed_at"))
        missing = [c for c in ROW_COLUMNS if c not in rows.columns and c != "samples_path"]
        if missing:
            raise ValueError(f"history rows of {build!r}: missing column(s) {', '.join(missing)}")
        frame = rows.reindex(columns=ROW_COLUMNS).assign(build=build, pushed_at=pd.Timestamp(pushed_at))
        frame = frame.astype({"operation": str, "metric": str, "value": float})
        frame["samples_path"] = frame["samples_path"].map(lambda p: None if p is None or pd.isna(p) else str(p))
        summary.update(build=build, pushed_at=pushed_at, interrupted=bool(summary.get("interrupted", False)))
        self.folder.mkdir(parents=True, exist_ok=True)
        stem = safe_key(build)
        _write_atomically(self.folder / f"{stem}.parquet", lambda p: frame.to_parquet(p, index=False))
        text = json.dumps({**_json_value(summary), "rows": f"{stem}.parquet"}, indent=2, allow_nan=False)
        summary_path = self.folder / f"{stem}.json"
        _write_atomically(summary_path, lambda p: p.write_text(text))
        return summary_path

    def record_image_tags(self, tags_by_digest: Mapping[str, Iterable[str]]) -> dict[str, tuple[str, ...]]:
        """Records the tags each image (by digest, `sha256:<hex>`) has now; digests not given keep
        what was recorded for them (an image deleted from ECR stays a release). Writes only when
        something changed; returns digest -> tags of the images whose tags changed."""
        current = self.image_tags()
        changed = {}
        for digest, tags in tags_by_digest.items():
            tags = tuple(sorted(set(tags)))
            if current.get(digest) != tags:
                changed[digest] = tags
        if changed:
            path = self.folder / IMAGE_TAGS_FILE
            path.parent.mkdir(parents=True, exist_ok=True)
            text = json.dumps({d: list(t) for d, t in sorted({**current, **changed}.items())}, indent=1)
            _write_atomically(path, lambda p: p.write_text(text))
        return changed

    def image_tags(self) -> dict[str, tuple[str, ...]]:
        """digest -> the image's tags as last recorded (`record_image_tags`); {} when none are, or
        the file cannot be read (with a `HistoryStoreWarning` naming it)."""
        path = self.folder / IMAGE_TAGS_FILE
        if not path.is_file():
            return {}
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, ValueError) as err:
            self._skip(path, f"not readable JSON ({err})")
            return {}
        if not isinstance(data, dict):
            self._skip(path, "not a map of digests to tags")
            return {}
        return {str(d): tuple(str(t) for t in tags) for d, tags in data.items() if isinstance(tags, list)}

    def _tags_by_build(self, builds: Iterable[str]) -> dict[str, str]:
        """build -> its image's current tags, space-separated (builds named by a partition key only)."""
        by_short: dict[str, set[str]] = {}
        for digest, tags in self.image_tags().items():
            by_short.setdefault(short_digest(digest), set()).update(tags)
        found = {}
        for build in builds:
            parts = split_key(build)
            if parts and parts[1] in by_short:
                found[build] = " ".join(sorted(by_short[parts[1]]))
        return found

    # --- reading ----------------------------------------------------------------------------
    def _skip(self, path: Path, reason: str) -> None:
        warnings.warn(f"history store: skipped {path}: {reason}", HistoryStoreWarning, stacklevel=3)

    def _read_summary(self, path: Path) -> dict | None:
        try:
            summary = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, ValueError) as err:
            self._skip(path, f"not readable JSON ({err})")
            return None
        if not isinstance(summary, dict) or not summary.get("build"):
            self._skip(path, "not a build summary (no 'build')")
            return None
        try:
            summary["pushed_at"] = pushed_at_utc(summary.get("pushed_at"))
        except (ValueError, TypeError, OverflowError) as err:
            self._skip(path, f"no usable pushed_at ({err})")
            return None
        return summary

    def _ordered(self, summaries: Iterable[dict]) -> list[dict]:
        return sorted(summaries, key=lambda s: (s["pushed_at"], str(s["build"])))

    def summary(self, build: str) -> dict | None:
        """The stored summary of `build` (interrupted or not), or None when none is stored or readable."""
        path = self.folder / f"{safe_key(build)}.json"
        return self._read_summary(path) if path.is_file() else None

    def summaries(self, *, complete_only: bool = True) -> list[dict]:
        """Every readable build summary in push order (then by build); interrupted ones left out
        unless `complete_only` is False. `pushed_at` is an aware UTC datetime."""
        if not self.folder.is_dir():
            return []
        found = (self._read_summary(p) for p in sorted(self.folder.glob("*.json")) if not p.name.startswith("."))
        return self._ordered(s for s in found if s is not None and not (complete_only and s.get("interrupted")))

    def _read_rows(self, summary: dict) -> pd.DataFrame | None:
        path = self.folder / Path(str(summary.get("rows") or f"{safe_key(summary['build'])}.parquet")).name
        try:
            frame = pd.read_parquet(path)
        except Exception as err:  # noqa: BLE001 -- pyarrow raises many kinds on a truncated or foreign file
            self._skip(path, f"not readable Parquet ({type(err).__name__}: {err})")
            return None
        missing = [c for c in ROW_COLUMNS if c not in frame.columns]
        if missing:
            self._skip(path, f"missing column(s) {', '.join(missing)}")
            return None
        return frame[ROW_COLUMNS].assign(build=str(summary["build"]), pushed_at=pd.Timestamp(summary["pushed_at"]))

    def load(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(history rows, one row per build) of the complete builds, in push order (then by build).

        The rows have `HISTORY_COLUMNS` (`pushed_at` aware UTC; `tags` the image's current tags,
        space-separated, '' when not recorded), the builds `BUILD_COLUMNS` (the
        dataset hash shortened for display). A build whose files cannot be read is left out with
        a `HistoryStoreWarning` naming the file.
        """
        frames, builds = [], []
        for summary in self.summaries():
            rows = self._read_rows(summary)
            if rows is None:
                continue
            frames.append(rows)
            builds.append({**{c: summary.get(c) for c in BUILD_COLUMNS},
                           "dataset_hash": str(summary.get("dataset_hash") or "")[:_SHOWN_HASH]})
        frames = [f for f in frames if len(f)]
        history = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=ROW_COLUMNS)
        if len(history):
            history["pushed_at"] = pd.to_datetime(history["pushed_at"], utc=True)
            history = history.astype({c: str for c in KEY_COLUMNS})
        tags = self._tags_by_build(history["build"].unique()) if len(history) else {}
        history["tags"] = [tags.get(b, "") for b in history["build"]] if len(history) else pd.Series(dtype=str)
        return history, pd.DataFrame(builds, columns=BUILD_COLUMNS)


# --- comparability ----------------------------------------------------------------------------
def _canonical(value: Any) -> str:
    return json.dumps(_json_value(value), sort_keys=True)


@dataclass(frozen=True)
class Comparability:
    """A candidate build's earlier builds split by whether they were measured the same way."""

    candidate: str
    comparable: tuple[str, ...]  # earlier builds with the candidate's fingerprint, in push order
    differing: dict[str, tuple[str, ...]] = field(default_factory=dict)  # earlier build -> fields that differ

    @property
    def fields(self) -> tuple[str, ...]:
        """Fingerprint fields in which some earlier build differs from the candidate."""
        seen = {f for fields in self.differing.values() for f in fields}
        return tuple(f for f in FINGERPRINT_FIELDS if f in seen)

    def reason(self, min_history: int) -> str | None:
        """`scripts_hash changed (vs 3 earlier builds)` when the builds measured like the candidate
        are fewer than `min_history` because others were measured differently; None when the
        candidate can be judged (enough comparable builds, or no earlier build at all)."""
        if not self.differing or len(self.comparable) >= min_history:
            return None
        changed = ", ".join(self.fields)
        return (f"{changed} changed (vs {len(self.differing)} earlier build{'s' * (len(self.differing) != 1)}; "
                f"{len(self.comparable)} comparable, {min_history} needed)")


def comparable(summaries: list[Mapping[str, Any]], candidate: str) -> Comparability:
    """The candidate's earlier builds (push order of `summaries`, as `HistoryStore.summaries` gives
    them) split by their `FINGERPRINT_FIELDS`; a field missing from both counts as equal.
    Raises KeyError when the candidate has no summary."""
    names = [str(s["build"]) for s in summaries]
    if candidate not in names:
        raise KeyError(f"build {candidate!r} has no summary in the history store")
    position = names.index(candidate)
    mine = summaries[position]
    kept, differing = [], {}
    for summary in summaries[:position]:
        fields = tuple(f for f in FINGERPRINT_FIELDS if _canonical(summary.get(f)) != _canonical(mine.get(f)))
        if fields:
            differing[str(summary["build"])] = fields
        else:
            kept.append(str(summary["build"]))
    return Comparability(candidate, tuple(kept), differing)


def restrict(history: pd.DataFrame, comparability: Comparability) -> pd.DataFrame:
    """The history without the builds measured differently from the candidate (later builds kept:
    the gate never compares with them)."""
    return history[~history["build"].isin(comparability.differing)].reset_index(drop=True)
