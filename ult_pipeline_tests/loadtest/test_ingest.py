import gzip

import numpy as np
import pandas as pd
import pytest

from ult_pipeline.loadtest.ingest import IngestError, ingest
from ult_pipeline_tests.loadtest.k6_csv import write_k6_csv

OPS = ["me", "myUser", "memberships", "orgMemberships", "myUsers", "userNode", "myClasses", "permissions"]


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ingest")
    written = write_k6_csv(folder / "samples.csv.gz", 8_000, OPS, seed=3, error_every=100, chunk=3_000)
    return written, ingest(folder / "samples.csv.gz", folder / "out")


def test_one_row_per_request_with_exact_percentiles(ingested):
    written, result = ingested
    assert result.requests == 8_000
    ops = result.operations.set_index("operation")
    for op, durations in written.items():
        assert ops.loc[op, "count"] == len(durations)
        for p in (50, 90, 95, 99):
            assert ops.loc[op, f"p{p}"] == pytest.approx(np.percentile(durations, p), rel=1e-9)
        assert ops.loc[op, "max"] == pytest.approx(durations.max())
    everything = np.concatenate(list(written.values()))
    assert ops.loc["__all__", "p95"] == pytest.approx(np.percentile(everything, 95), rel=1e-9)


def test_failures_checks_and_iterations_are_counted(ingested):
    _, result = ingested
    ops = result.operations.set_index("operation")
    assert ops.loc["__all__", "error_rate"] == pytest.approx(80 / 8_000)
    assert ops.loc["__all__", "check_pass_rate"] == pytest.approx(1 - 80 / 8_000)
    assert result.iterations == 1_000
    assert result.dropped_iterations == 0


def test_parquet_files_hold_requests_and_a_10s_series(ingested):
    _, result = ingested
    requests = pd.read_parquet(result.requests_path)
    assert list(requests.columns) == ["time_ms", "scenario", "operation", "status", "duration_ms", "failed"]
    assert len(requests) == 8_000 and requests["failed"].sum() == 80
    assert set(requests.loc[requests["failed"], "status"]) == {500}
    series = pd.read_parquet(result.timeseries_path)
    # 8,000 requests at 176/s last ~45 s: five 10-second buckets.
    assert sorted(series["bucket_start_s"].unique()) == [0, 10, 20, 30, 40]
    assert series["count"].sum() == 8_000


def test_not_a_k6_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.csv.gz"
    with gzip.open(bad, "wt") as f:
        f.write("a,b\n1,2\n")
    with pytest.raises(IngestError, match="lacks k6's columns"):
        ingest(bad, tmp_path / "out")
    with pytest.raises(IngestError, match="wrote no samples"):
        ingest(tmp_path / "missing.csv.gz", tmp_path / "out")


def test_a_run_interrupted_before_any_request_ingests_as_empty(tmp_path):
    empty = tmp_path / "samples.csv.gz"
    write_k6_csv(empty, 0, OPS)
    result = ingest(empty, tmp_path / "out")
    assert result.requests == 0 and result.seconds == 0.0
    assert result.operations.set_index("operation").loc["__all__", "count"] == 0
