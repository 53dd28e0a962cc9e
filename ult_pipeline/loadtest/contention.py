"""The integrity check of `roster_contention`: did the service keep every roster write it acknowledged?

k6's `roster_contention` scenario (k6/scenarios/roster_contention.js) sends, per round, parallel
one-student `addStudentsToClasses` calls to one new class and records each call in the counter
`roster_adds_acknowledged` (tags class_id, student_id; value 1 when acknowledged, 0 with `error_code`
when refused). After the run each class's roster is read back through the API (API key): an
acknowledged student missing from it is a LOST write (the service said yes and did not keep it). A
refused call is not lost: the caller knows it failed; it is counted in `write_errors`.

Pure functions over the run's CSV (`samples.csv.gz`, read like ingest.py reads it, a truncated file up to
its last complete row) and a GraphQL client; no Dagster. `check_contention` does it all and writes
`contention.json` beside the samples.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from ult_pipeline.loadtest.ingest import GRAPHQL_ERRORS, _tag, metric_rows, operations_of

OPERATION = "addStudentsToClasses"  # the contended write
ACKNOWLEDGED_METRIC = "roster_adds_acknowledged"
SAMPLES_FILE = "samples.csv.gz"
CONTENTION_FILE = "contention.json"
ROSTER_DOCUMENT = Path(__file__).with_name("graphql") / "classRoster.graphql"
ROSTER_PAGE_LIMIT = 100  # pages of 50 per class: a round's class holds at most 50 students


def samples_of(run_dir_or_csv: Path) -> Path:
    """The samples file: `run_dir_or_csv` itself, or `samples.csv.gz` in that folder (k6's out_dir)."""
    path = Path(run_dir_or_csv)
    return path / SAMPLES_FILE if path.is_dir() else path


def _adds(samples_csv: Path, report: dict | None = None) -> tuple[dict[str, frozenset[str]], list[str]]:
    """One pass over the `roster_adds_acknowledged` samples: (class_id -> the student ids whose add the
    service acknowledged, every class an add was sent to in first-seen order)."""
    found: dict[str, set[str]] = {}
    seen: dict[str, None] = {}
    for rows in metric_rows(samples_of(samples_csv), (ACKNOWLEDGED_METRIC,), report=report):
        classes = _tag(rows.column("extra_tags"), r"(?:^|&)class_id=(?P<v>[^&]*)").to_pylist()
        students = _tag(rows.column("extra_tags"), r"(?:^|&)student_id=(?P<v>[^&]*)").to_pylist()
        for class_id, student_id, value in zip(classes, students, rows.column("metric_value").to_pylist(),
                                               strict=True):
            if class_id:
                seen.setdefault(class_id, None)
                if student_id and value > 0:
                    found.setdefault(class_id, set()).add(student_id)
    return {c: frozenset(s) for c, s in found.items()}, list(seen)


def acknowledged_adds(samples_csv: Path, *, report: dict | None = None) -> dict[str, frozenset[str]]:
    """class_id -> the student ids whose add the service acknowledged (from `roster_adds_acknowledged`).
    `report["truncated"]` says why when the file was cut (its complete rows are read)."""
    return _adds(samples_csv, report)[0]


def attempted_classes(samples_csv: Path) -> list[str]:
    """Every class a roster add was sent to (acknowledged or refused), in first-seen order."""
    return _adds(samples_csv)[1]


def write_errors(samples_csv: Path) -> dict[str, dict[str, int]]:
    """operation -> error code -> failed requests of the run: GraphQL errors by their `error_code` (e.g.
    ERR_DUPLICATE_CHILD_ENTITY, ERROR_SAVING), HTTP failures as `HTTP_<status>` (`K6_<code>` when no
    answer came). Every operation of the run, not only writes (a read run gives {} when all went well)."""
    errors: dict[str, dict[str, int]] = {}

    def add(operations: Iterable[str], codes: Iterable[str]) -> None:
        for op, code in zip(operations, codes, strict=True):
            inner = errors.setdefault(op, {})
            inner[code or "UNKNOWN"] = inner.get(code or "UNKNOWN", 0) + 1

    for rows in metric_rows(samples_of(samples_csv), ("http_req_duration", GRAPHQL_ERRORS)):
        names = rows.column("metric_name").cast(pa.string())
        bad = rows.filter(pc.and_(pc.equal(names, GRAPHQL_ERRORS), pc.greater(rows.column("metric_value"), 0)))
        add(operations_of(bad).to_pylist(), bad.column("error_code").to_pylist())
        failed = rows.filter(pc.and_(pc.equal(names, "http_req_duration"),
                                     pc.not_equal(rows.column("expected_response"), "true")))
        codes = [f"K6_{k6}" if (status in ("", "0") and k6) else f"HTTP_{status or 0}"
                 for status, k6 in zip(failed.column("status").to_pylist(), failed.column("error_code").to_pylist(),
                                       strict=True)]
        add(operations_of(failed).to_pylist(), codes)
    return errors


def read_rosters(graphql_client, class_ids: Iterable[str]) -> dict[str, frozenset[str] | None]:
    """class_id -> the student ids on its roster, read through the API (`graphql_client`: a
    target_api GraphQLClient with the API key); None for a class the API does not return."""
    document = ROSTER_DOCUMENT.read_text(encoding="utf-8")
    rosters: dict[str, frozenset[str] | None] = {}
    for class_id in class_ids:
        students: set[str] = set()
        cursor = None
        for _page in range(ROSTER_PAGE_LIMIT):
            data = graphql_client.execute(document, {"classId": class_id, "cursor": cursor}, "classRoster")
            node = data.get("classNode")
            if node is None:
                students = None
                break
            connection = node.get("studentsConnection") or {}
            students.update(e["node"]["id"] for e in connection.get("edges") or [] if e and e.get("node"))
            page = connection.get("pageInfo") or {}
            if not page.get("hasNextPage") or not page.get("endCursor"):
                break
            cursor = page["endCursor"]
        rosters[class_id] = frozenset(students) if students is not None else None
    return rosters


@dataclass(frozen=True)
class ClassContention:
    """One round's class: the adds the service acknowledged, the students read back, those lost."""

    class_id: str
    acknowledged: int  # adds the service acknowledged
    present: int  # students on the roster read back (0 when the class could not be read)
    lost: tuple[str, ...] = ()  # acknowledged students missing from the roster, sorted
    missing_class: bool = False  # the API did not return the class at all

    def to_json(self) -> dict:
        return {"class_id": self.class_id, "acknowledged": self.acknowledged, "present": self.present,
                "lost": list(self.lost), "missing_class": self.missing_class}

    @classmethod
    def from_json(cls, data: Mapping) -> ClassContention:
        return cls(class_id=str(data["class_id"]), acknowledged=int(data["acknowledged"]),
                   present=int(data["present"]), lost=tuple(data.get("lost") or ()),
                   missing_class=bool(data.get("missing_class", False)))


@dataclass(frozen=True)
class ContentionResult:
    """The check's outcome: per class, and totals. `ok` when no acknowledged write was lost."""

    classes: tuple[ClassContention, ...]
    write_errors: dict[str, dict[str, int]] = field(default_factory=dict)  # operation -> code -> count
    samples: str | None = None  # the samples file read
    truncated: str | None = None  # why the samples file was cut (its complete rows were read); None: whole

    @property
    def acknowledged(self) -> int:
        return sum(c.acknowledged for c in self.classes)

    @property
    def lost(self) -> int:
        return sum(len(c.lost) for c in self.classes)

    @property
    def lost_classes(self) -> tuple[ClassContention, ...]:
        return tuple(c for c in self.classes if c.lost)

    @property
    def refused(self) -> int:
        """Refused calls of the contended operation (write errors of addStudentsToClasses)."""
        return sum(self.write_errors.get(OPERATION, {}).values())

    @property
    def ok(self) -> bool:
        return self.lost == 0

    def lossy_classes_text(self, id_chars: int | None = None) -> str:
        """`class <id>: n of m, ..., and K more classes` for the first five classes that lost writes ("" when
        none did); `id_chars` cuts each id to its first characters (a class is still told apart)."""
        named = ", ".join(f"class {c.class_id[:id_chars]}: {len(c.lost)} of {c.acknowledged}"
                          for c in self.lost_classes[:5])
        return named + (f", and {len(self.lost_classes) - 5} more classes" if len(self.lost_classes) > 5 else "")

    def line(self) -> str:
        """`lost writes: N of M acknowledged (class <id>: n of m, ...)`: one line for a person."""
        named = self.lossy_classes_text()
        where = f" ({named})" if named else f" over {len(self.classes)} classes"
        return f"lost writes: {self.lost} of {self.acknowledged} acknowledged{where}"

    def to_json(self) -> dict:
        return {
            "ok": self.ok, "acknowledged": self.acknowledged, "lost": self.lost, "refused": self.refused,
            "classes": [c.to_json() for c in self.classes],
            "write_errors": {op: dict(codes) for op, codes in self.write_errors.items()},
            "samples": self.samples, "truncated": self.truncated,
        }

    @classmethod
    def from_json(cls, data: Mapping) -> ContentionResult:
        return cls(
            classes=tuple(ClassContention.from_json(c) for c in data.get("classes") or ()),
            write_errors={str(op): {str(k): int(v) for k, v in codes.items()}
                          for op, codes in (data.get("write_errors") or {}).items()},
            samples=data.get("samples"), truncated=data.get("truncated"),
        )


def compare(acknowledged: Mapping[str, frozenset[str]], rosters: Mapping[str, frozenset[str] | None],
            errors: Mapping[str, Mapping[str, int]] | None = None, *, samples: str | None = None) -> ContentionResult:
    """The result from what was acknowledged (class -> students) and what the rosters hold; classes in
    `rosters` with nothing acknowledged are listed too (every add to them was refused)."""
    classes = []
    for class_id in list(acknowledged) + [c for c in rosters if c not in acknowledged]:
        wanted = acknowledged.get(class_id, frozenset())
        roster = rosters.get(class_id)
        lost = tuple(sorted(wanted - (roster or frozenset())))
        classes.append(ClassContention(class_id=class_id, acknowledged=len(wanted), present=len(roster or ()),
                                       lost=lost, missing_class=roster is None))
    return ContentionResult(classes=tuple(classes), write_errors={k: dict(v) for k, v in (errors or {}).items()},
                            samples=samples)


def check_contention(run_dir_or_csv: Path, client, *, errors: Mapping[str, Mapping[str, int]] | None = None,
                     out: Path | None = None) -> ContentionResult:
    """Reads the run's acknowledged adds (and, unless `errors` gives them, as ingest already counted
    them: `IngestResult.errors`, its write errors) from its samples, the rosters through `client` (API
    key), compares them, and writes the result as `contention.json` beside the samples (or to `out`)."""
    samples = samples_of(run_dir_or_csv)
    report: dict = {}
    acknowledged, attempted = _adds(samples, report)
    classes = list(acknowledged) + [c for c in attempted if c not in acknowledged]
    errors = write_errors(samples) if errors is None else errors
    result = compare(acknowledged, read_rosters(client, classes), errors, samples=str(samples))
    if report.get("truncated"):
        result = replace(result, truncated=report["truncated"])
    target = out or samples.parent / CONTENTION_FILE
    target.write_text(json.dumps(result.to_json(), indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return result


def load_contention(path: Path) -> ContentionResult:
    """A `contention.json` (or the folder holding it) read back."""
    path = Path(path)
    return ContentionResult.from_json(json.loads((path / CONTENTION_FILE if path.is_dir() else path).read_text()))
