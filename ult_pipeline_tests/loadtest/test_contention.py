"""contention.py and the write-run parts of ingest, on synthetic k6 CSV files: no k6, no service."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from ult_pipeline.loadtest import contention
from ult_pipeline.loadtest.contention import (
    ClassContention,
    ContentionResult,
    acknowledged_adds,
    check_contention,
    compare,
    read_rosters,
    write_errors,
)
from ult_pipeline.loadtest.ingest import ingest
from ult_pipeline_tests.loadtest.write_csv import WriteRun

A, B, C = "c0000000-0000-0000-0000-00000000000a", "c0000000-0000-0000-0000-00000000000b", "c0000000-0000-0000-0000-00000000000c"
S = [f"50000000-0000-0000-0000-{i:012d}" for i in range(10)]


def _contention_run() -> WriteRun:
    """Two rounds: class A, 4 writers, all acknowledged; class B, 4 writers, 1 refused with ERROR_SAVING;
    a third round whose class C got only refusals (ERR_DUPLICATE_CHILD_ENTITY)."""
    run = WriteRun()
    for cls, students, refused in ((A, S[0:4], {}), (B, S[4:8], {S[6]: "ERROR_SAVING"}),
                                   (C, S[8:10], {S[8]: "ERR_DUPLICATE_CHILD_ENTITY", S[9]: "ERR_DUPLICATE_CHILD_ENTITY"})):
        run.request("createClasses", 4.0, rows=1)
        run.request("addClassesToSchools", 3.0, rows=1)
        batch = f"1.b{cls[-1]}"
        for writer, student in enumerate(students):
            code = refused.get(student)
            run.request("addStudentsToClasses", 6.0 + writer, graphql_error=code, rows=1, writer=writer, request_id=batch)
            run.acknowledged(cls, student, code)
        run.iteration()
    return run


class FakeClient:
    """Answers classRoster like the API: pages of `page` students; classes not in `rosters` are null."""

    def __init__(self, rosters: dict[str, list[str]], page: int = 50):
        self.rosters, self.page, self.calls = rosters, page, []

    def execute(self, query: str, variables: dict, operation: str) -> dict:
        assert operation == "classRoster" and "query classRoster" in query
        self.calls.append(variables)
        class_id, start = variables["classId"], int(variables.get("cursor") or 0)
        if class_id not in self.rosters:
            return {"classNode": None}
        students = self.rosters[class_id]
        chunk = students[start:start + self.page]
        more = start + self.page < len(students)
        return {"classNode": {"id": class_id, "studentsConnection": {
            "totalCount": len(students), "pageInfo": {"hasNextPage": more, "endCursor": str(start + self.page) if more else None},
            "edges": [{"node": {"id": s}} for s in chunk]}}}


def test_acknowledged_adds_per_class_and_refusals_left_out(tmp_path):
    samples = _contention_run().write(tmp_path / "samples.csv.gz")
    assert acknowledged_adds(samples) == {A: frozenset(S[0:4]), B: frozenset({S[4], S[5], S[7]})}
    assert acknowledged_adds(tmp_path) == acknowledged_adds(samples)  # the run folder works too


def test_write_errors_by_operation_and_code(tmp_path):
    run = _contention_run()
    run.request("updateUsers", 5.0, status=500)
    run.request("updateUsers", 0.0, status=0)
    samples = run.write(tmp_path / "samples.csv.gz")
    assert write_errors(samples) == {
        "addStudentsToClasses": {"ERROR_SAVING": 1, "ERR_DUPLICATE_CHILD_ENTITY": 2},
        "updateUsers": {"HTTP_500": 1, "K6_1212": 1},
    }


def test_a_truncated_samples_file_is_read_to_its_last_complete_row(tmp_path):
    samples = _contention_run().write(tmp_path / "samples.csv.gz")
    data = samples.read_bytes()
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(data[: len(data) * 2 // 3])
    report: dict = {}
    partial = acknowledged_adds(cut, report=report)
    assert report["truncated"] and "ends early" in report["truncated"]
    whole = acknowledged_adds(samples)
    assert all(partial[c] <= whole[c] for c in partial)


def test_compare_names_the_lost_students_per_class():
    result = compare({A: frozenset(S[0:4]), B: frozenset(S[4:6])}, {A: frozenset(S[0:2]), B: frozenset(S[4:6]), C: None},
                     {"addStudentsToClasses": {"ERROR_SAVING": 2}})
    by_class = {c.class_id: c for c in result.classes}
    assert by_class[A] == ClassContention(A, acknowledged=4, present=2, lost=(S[2], S[3]))
    assert by_class[B].lost == () and by_class[C].missing_class
    assert (result.acknowledged, result.lost, result.refused, result.ok) == (6, 2, 2, False)
    assert result.line() == f"lost writes: 2 of 6 acknowledged (class {A}: 2 of 4)"
    assert ContentionResult.from_json(json.loads(json.dumps(result.to_json()))) == result


def test_nothing_lost_is_ok():
    result = compare({A: frozenset(S[0:3])}, {A: frozenset(S[0:3])})
    assert result.ok and result.lost == 0
    assert result.line() == "lost writes: 0 of 3 acknowledged over 1 classes"


def test_check_contention_reads_rosters_through_the_api_and_writes_contention_json(tmp_path):
    _contention_run().write(tmp_path / "samples.csv.gz")
    # A kept everything (read in pages of 3), B lost S[5], C (all refused) is empty.
    client = FakeClient({A: S[0:4], B: [S[4], S[7]], C: []}, page=3)
    result = check_contention(tmp_path, client)
    assert [c.class_id for c in result.classes] == [A, B, C]
    assert (result.acknowledged, result.lost) == (7, 1)
    assert result.lost_classes == (ClassContention(B, acknowledged=3, present=2, lost=(S[5],)),)
    assert result.write_errors["addStudentsToClasses"] == {"ERROR_SAVING": 1, "ERR_DUPLICATE_CHILD_ENTITY": 2}
    assert len([c for c in client.calls if c["classId"] == A]) == 2  # 4 students, pages of 3
    stored = json.loads((tmp_path / contention.CONTENTION_FILE).read_text())
    assert stored["lost"] == 1 and stored["ok"] is False and stored["classes"][1]["lost"] == [S[5]]
    assert contention.load_contention(tmp_path) == result


def test_read_rosters_gives_none_for_a_class_the_api_does_not_return():
    assert read_rosters(FakeClient({A: S[:2]}), [A, B]) == {A: frozenset(S[:2]), B: None}


def test_ingest_counts_graphql_errors_as_failures_never_as_latencies(tmp_path):
    run = WriteRun(scenario="admin_writes")
    ok = [run.request("updateClasses", d, rows=1) for d in (2.0, 3.0, 4.0)]
    run.request("updateClasses", 100.0, graphql_error="ERR_DUPLICATE_CHILD_ENTITY")  # fast path: same block
    # A batch: writers share the request metadata; only writer 1 failed, its error written much later.
    batch = "7.1"
    for writer, duration in enumerate((5.0, 200.0, 6.0)):
        run.request("addStudentsToClasses", duration, rows=1, writer=writer, request_id=batch)
    for _ in range(3000):  # push the late error into another CSV block
        run.iteration()
    run.late_graphql_error("addStudentsToClasses", batch, "ERROR_SAVING", writer=1)
    samples = run.write(tmp_path / "samples.csv.gz")
    result = ingest(samples, tmp_path / "out", block_size=1 << 16)
    ops = result.operations.set_index("operation")
    assert ops.loc["updateClasses", "count"] == 4
    assert ops.loc["updateClasses", "error_rate"] == pytest.approx(0.25)
    assert ops.loc["updateClasses", "max"] == 4.0 and ops.loc["updateClasses", "failed_p50"] == 100.0
    assert ops.loc["addStudentsToClasses", "error_rate"] == pytest.approx(1 / 3)
    assert ops.loc["addStudentsToClasses", "max"] == 6.0  # the failed writer's 200 ms is no latency
    assert result.errors == {"updateClasses": {"ERR_DUPLICATE_CHILD_ENTITY": 1},
                             "addStudentsToClasses": {"ERROR_SAVING": 1}}
    # rows_written counts what the suite counted: only successful writes carry it. (The late-failed writer
    # had counted a row before its error was known here: the synthetic file says so; k6 never does.)
    assert result.rows_written == {"updateClasses": 3, "addStudentsToClasses": 3}
    import pandas as pd
    requests = pd.read_parquet(result.requests_path)
    assert int(requests["failed"].sum()) == 2 and len(ok) == 3
    timeseries_p99 = result.timeseries.set_index("operation").loc["addStudentsToClasses", "p99"]
    assert not math.isnan(float(np.max(timeseries_p99))) and float(np.max(timeseries_p99)) <= 6.0


def test_load_test_result_reports_the_writes_per_mutation(tmp_path):
    from ult_pipeline.loadtest.profiles import LoadProfile
    from ult_pipeline.loadtest.run import LoadTestResult, json_safe
    from ult_pipeline.loadtest.runner import K6RunResult

    run = WriteRun(scenario="admin_writes")
    run.request("createClasses", 3.0, rows=2)
    run.request("createClasses", 3.0, rows=2)
    run.request("deleteClasses", 3.0, graphql_error="ERR_NON_EXISTENT_ENTITY")
    run.request("myUser", 1.0)
    samples = run.write(tmp_path / "samples.csv.gz")
    k6 = K6RunResult(exit_code=0, interrupted=False, thresholds_crossed=False, seconds=1.0, samples_path=samples,
                     summary_path=tmp_path / "summary.json", summary={})
    result = LoadTestResult(k6, ingest(samples, tmp_path / "out"), LoadProfile(scenario="admin_writes", rate=1,
                                                                               duration="1s"), {})
    assert result.rows_written == {"createClasses": 4}
    assert result.writes == {"createClasses": {"requests": 2, "acknowledged": 2, "rows": 4},
                             "deleteClasses": {"requests": 1, "acknowledged": 0, "rows": 0}}
    stored = json.loads(json.dumps(json_safe(result.to_json()), allow_nan=False))
    assert stored["writes"]["createClasses"]["rows"] == 4 and stored["rows_written"] == {"createClasses": 4}
    assert stored["errors"] == {"deleteClasses": {"ERR_NON_EXISTENT_ENTITY": 1}} and stored["contention"] is None
