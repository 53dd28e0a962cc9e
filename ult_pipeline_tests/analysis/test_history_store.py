"""The history store: one build's rows and summary per pair of files, read back as the gate reads a history."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from ult_pipeline.analysis.gate import NOT_COMPARABLE, decide, judge, not_comparable_operations
from ult_pipeline.analysis.history import rows_from_operations
from ult_pipeline.analysis.history_store import (
    BUILD_COLUMNS,
    HISTORY_COLUMNS,
    HistoryStore,
    HistoryStoreWarning,
    comparable,
    restrict,
)
from ult_pipeline.analysis.regression import MIN_HISTORY
from ult_pipeline_tests.analysis.history_fixtures import history as synthetic_history

T0 = datetime(2026, 11, 1, tzinfo=UTC)
FINGERPRINT = {"k6_version": "k6 v1.0.0", "scripts_hash": "sha256:" + "a" * 64, "dataset_hash": "sha256:" + "b" * 64,
               "target_version": "1.0", "image": "v1", "load_profile": {"rate": 22, "duration": "10m"}}
OPS = [{"operation": "me", "p50": 5.0, "p95": 9.0, "p99": 12.0, "error_rate": 0.0, "rate": 10.0},
       {"operation": "__all__", "p50": 6.0, "p95": 10.0, "p99": 14.0, "error_rate": 0.01, "rate": 80.0}]


def summary(build: str, hours: int, **extra) -> dict:
    return {"build": build, "pushed_at": T0 + timedelta(hours=hours), "requests": 100, "p95_ms": 10.0,
            "error_rate": 0.01, "students": 40, "interrupted": False, **FINGERPRINT, **extra}


def rows(build: str, hours: int = 0) -> pd.DataFrame:
    return pd.DataFrame(rows_from_operations(build, T0 + timedelta(hours=hours), OPS, f"/r/{build}/requests.parquet"))


def test_records_read_back_in_the_shape_the_analysis_reads(tmp_path):
    store = HistoryStore(tmp_path / "history")
    # Recorded out of push order: read back in push order.
    store.record(summary("v2-000000000002", 2), rows("v2-000000000002"))
    store.record(summary("v1-000000000001", 1), rows("v1-000000000001"))
    history, builds = store.load()
    assert list(history.columns) == HISTORY_COLUMNS and list(builds.columns) == BUILD_COLUMNS
    assert set(history["tags"]) == {""}  # no image tags recorded
    assert list(builds["build"]) == ["v1-000000000001", "v2-000000000002"]
    assert history["build"].drop_duplicates().tolist() == ["v1-000000000001", "v2-000000000002"]
    assert str(history["pushed_at"].dt.tz) == "UTC" and len(history) == 2 * 2 * 5
    # The rows' push time is the summary's.
    assert history.groupby("build")["pushed_at"].first().tolist() == [pd.Timestamp(T0 + timedelta(hours=h))
                                                                        for h in (1, 2)]
    first = builds.iloc[0]
    assert first["pushed_at"] == T0 + timedelta(hours=1) and first["students"] == 40
    assert first["dataset_hash"] == FINGERPRINT["dataset_hash"][:19]
    assert history.iloc[0]["samples_path"] == "/r/v1-000000000001/requests.parquet"


def test_a_rerun_of_a_build_replaces_it_and_leaves_no_temporary_files(tmp_path):
    store = HistoryStore(tmp_path)
    store.record(summary("v1-000000000001", 1, requests=100), rows("v1-000000000001"))
    store.record(summary("v1-000000000001", 1, requests=200), rows("v1-000000000001"))
    history, builds = store.load()
    assert builds["requests"].tolist() == [200] and len(history) == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v1-000000000001.json", "v1-000000000001.parquet"]


def test_interrupted_builds_are_left_out_of_the_history(tmp_path):
    store = HistoryStore(tmp_path)
    store.record(summary("v1-000000000001", 1), rows("v1-000000000001"))
    store.record(summary("v2-000000000002", 2, interrupted=True), rows("v2-000000000002"))
    assert store.load()[1]["build"].tolist() == ["v1-000000000001"]
    assert store.summary("v2-000000000002")["interrupted"] is True
    assert [s["build"] for s in store.summaries(complete_only=False)] == ["v1-000000000001", "v2-000000000002"]


def test_an_empty_or_missing_store_is_an_empty_history(tmp_path):
    history, builds = HistoryStore(tmp_path / "nothing-yet").load()
    assert history.empty and builds.empty and list(history.columns) == HISTORY_COLUMNS
    assert HistoryStore(tmp_path).summary("v1-000000000001") is None


def test_truncated_or_corrupt_files_are_skipped_with_a_warning_naming_them(tmp_path):
    store = HistoryStore(tmp_path)
    for i in (1, 2, 3):
        store.record(summary(f"v{i}-00000000000{i}", i), rows(f"v{i}-00000000000{i}"))
    parquet = tmp_path / "v2-000000000002.parquet"
    parquet.write_bytes(parquet.read_bytes()[:40])  # truncated
    (tmp_path / "v3-000000000003.json").write_text('{"build": "v3-0000')  # truncated JSON
    (tmp_path / "stray.json").write_text("[1, 2]")  # not a summary
    with pytest.warns(HistoryStoreWarning) as caught:
        history, builds = store.load()
    assert builds["build"].tolist() == ["v1-000000000001"]
    messages = " ".join(str(w.message) for w in caught)
    assert "v2-000000000002.parquet" in messages and "v3-000000000003.json" in messages and "stray.json" in messages


def test_the_stored_history_is_judged_like_any_history(tmp_path):
    store = HistoryStore(tmp_path)
    frame = synthetic_history(6, slow_op="userNode", slow_from=5, factor=1.5)
    for i, (build, group) in enumerate(frame.groupby("build", sort=False)):
        store.record(summary(build, i), group)
    history, _ = store.load()
    judgement = judge(history, history["build"].iloc[-1])
    assert judgement.verdict.startswith("regressed")


def test_builds_measured_differently_are_not_comparable():
    summaries = [summary(f"v{i}-00000000000{i}", i) for i in range(3)]
    summaries.append(summary("v3-000000000003", 3, scripts_hash="sha256:" + "c" * 64))
    result = comparable(summaries, "v3-000000000003")
    assert result.comparable == () and result.fields == ("scripts_hash",)
    reason = result.reason(MIN_HISTORY)
    assert reason.startswith("scripts_hash changed")
    decision = decide(not_comparable_operations(["me", "userNode"], reason))
    assert decision.verdict == NOT_COMPARABLE and not decision.fails and not decision.warns
    assert decision.summary.startswith("not comparable: scripts_hash changed")


def test_a_changed_build_with_enough_comparable_builds_is_judged_against_those_only():
    summaries = [summary(f"v{i}-00000000000{i}", i, load_profile={"rate": 10}) for i in range(2)]
    summaries += [summary(f"v{i}-00000000000{i}", i) for i in range(2, 5)]
    result = comparable(summaries, "v4-000000000004")
    assert result.comparable == ("v2-000000000002", "v3-000000000003") and result.reason(MIN_HISTORY) is None
    history = pd.concat([rows(s["build"], i) for i, s in enumerate(summaries)])
    assert sorted(set(restrict(history, result)["build"])) == [f"v{i}-00000000000{i}" for i in range(2, 5)]


def test_the_first_build_and_equal_fingerprints_are_never_not_comparable():
    assert comparable([summary("v0-000000000000", 0)], "v0-000000000000").reason(MIN_HISTORY) is None
    same = [summary(f"v{i}-00000000000{i}", i) for i in range(2)]
    # One earlier build of the same fingerprint: insufficient history, not "not comparable".
    assert comparable(same, "v1-000000000001").reason(MIN_HISTORY) is None


def test_the_summary_file_is_strict_json(tmp_path):
    store = HistoryStore(tmp_path)
    path = store.record(summary("v1-000000000001", 1, p95_ms=float("nan")), rows("v1-000000000001"))
    stored = json.loads(path.read_text())
    assert stored["p95_ms"] is None and stored["pushed_at"] == (T0 + timedelta(hours=1)).isoformat()
    assert stored["load_profile"] == FINGERPRINT["load_profile"]


def test_a_push_time_out_of_range_is_a_skipped_file_not_a_crash(tmp_path):
    store = HistoryStore(tmp_path)
    for i in (1, 2):
        store.record(summary(f"v{i}-00000000000{i}", i), rows(f"v{i}-00000000000{i}"))
    path = tmp_path / "v2-000000000002.json"
    path.write_text(path.read_text().replace(json.loads(path.read_text())["pushed_at"], "x", 1)
                    .replace('"x"', "1e300"))
    with pytest.warns(HistoryStoreWarning, match="v2-000000000002.json"):
        _, builds = store.load()
    assert builds["build"].tolist() == ["v1-000000000001"]
