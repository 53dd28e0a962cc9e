"""`history.validate` and `history.read_csv`: what a history may hold, and how a bad row is named."""

from __future__ import annotations

import pandas as pd
import pytest

from ult_pipeline.analysis.history import REQUIRED_COLUMNS, HistoryError, build_order, read_csv, validate
from ult_pipeline_tests.analysis.history_fixtures import history

T0 = pd.Timestamp("2026-11-01T00:00:00Z")


def rows(*specs):
    """A history frame from (build, minutes after T0, operation, metric, value, samples_path) tuples."""
    return pd.DataFrame([{"build": b, "pushed_at": T0 + pd.Timedelta(minutes=m), "operation": o, "metric": k,
                          "value": v, "samples_path": s} for b, m, o, k, v, s in specs])


def _write(tmp_path, frame):
    path = tmp_path / "history.csv"
    frame.to_csv(path, index=False)
    return path


def test_rerun_rows_are_combined_by_median_earliest_push_and_first_samples():
    frame = rows(("a", 0, "me", "p95", 10.0, ""), ("a", 0, "me", "p50", 5.0, ""),
                 ("a", 20, "me", "p95", 30.0, "/runs/a2"), ("a", 10, "me", "p95", 12.0, "/runs/a3"),
                 ("a", 30, "me", "p50", 7.0, ""), ("b", 40, "me", "p95", 11.0, "/runs/b"))
    combined = validate(frame)
    assert list(zip(combined["build"], combined["metric"], strict=True)) == [("a", "p95"), ("a", "p50"), ("b", "p95")]
    assert list(combined["value"]) == [12.0, 6.0, 11.0]  # two re-runs: their mean
    assert list(combined["pushed_at"]) == [T0, T0, T0 + pd.Timedelta(minutes=40)]
    assert combined["samples_path"].iloc[0] == "/runs/a2" and pd.isna(combined["samples_path"].iloc[1])
    assert combined["samples_path"].iloc[2] == "/runs/b"


def test_an_exact_repeat_changes_nothing_and_a_history_without_repeats_is_kept_as_is():
    frame = history(4)
    once = validate(frame)
    assert once.index.equals(frame.index) and len(once) == len(frame)
    twice = validate(pd.concat([frame, frame[frame["build"] == frame["build"].iloc[-1]]]))
    columns = list(REQUIRED_COLUMNS)
    pd.testing.assert_frame_equal(twice[columns].reset_index(drop=True), once[columns].reset_index(drop=True))


def test_a_bad_value_in_a_frame_is_named_by_its_row_label():
    frame = history(3)
    frame.index = frame.index + 100
    bad = frame.copy()
    bad.loc[107, "value"] = -3.0
    with pytest.raises(HistoryError, match=r"history row 107 \(build 'v000-000000000000', operation 'myUser', "
                                           r"metric 'p99'\): value -3.0 is out of range; a p99 must be"):
        validate(bad)
    with pytest.raises(HistoryError, match="value 2.0 is out of range; a error_rate must be .* within 0..1"):
        validate(frame.assign(value=frame["value"].where(frame["metric"] != "error_rate", 2.0)))
    rates = frame["metric"].isin(["error_rate", "throughput"])
    assert validate(frame.assign(value=frame["value"].where(~rates, 0.0))).loc[rates, "value"].eq(0).all()
    # No request takes no time: a latency of 0 would read as a -100 % "improvement".
    with pytest.raises(HistoryError, match="a p50 must be a finite number of ms > 0"):
        validate(frame.assign(value=0.0))


def test_empty_names_repeated_headers_and_number_like_build_names(tmp_path):
    frame = history(3)
    with pytest.raises(HistoryError, match="history row 4: operation is empty"):
        validate(frame.assign(operation=frame["operation"].where(frame.index != 4, " ")))
    path = tmp_path / "appended.csv"
    frame.to_csv(path, index=False)
    frame.to_csv(path, index=False, mode="a")
    with pytest.raises(HistoryError, match=rf"line {len(frame) + 2}: the header line again"):
        read_csv(path)
    numbered = read_csv(_write(tmp_path, frame.assign(build=frame["build"].str[1:4].astype(int))))
    assert build_order(numbered) == ["0", "1", "2"]


def test_csv_lines_are_counted_across_blank_lines_and_a_byte_order_mark(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_text("\ufeffbuild,pushed_at,operation,metric,value\n"
                    "a,2026-11-01T00:00:00Z,me,p95,10\n"
                    "\n"
                    "a,2026-11-01T00:00:00Z,me,p50,nan\n", encoding="utf-8")
    with pytest.raises(HistoryError, match=r"excel.csv line 4 \(build 'a', operation 'me', metric 'p50'\): "
                                           "value is empty"):
        read_csv(path)
