import gzip
import json
import math

import numpy as np
import pandas as pd
import pytest

from ult_pipeline.loadtest.ingest import IngestError, ingest
from ult_pipeline.loadtest.profiles import get_load_profile
from ult_pipeline.loadtest.run import json_safe, run_load_test
from ult_pipeline.loadtest.runner import K6RunResult
from ult_pipeline_tests.loadtest.k6_csv import write_k6_csv, write_k6_csv_with_failures

OPS = ["me", "myUser", "memberships", "orgMemberships", "myUsers", "userNode", "myClasses", "permissions"]
LATENCIES = ["p50", "p90", "p95", "p99", "max", "mean"]


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ingest")
    written = write_k6_csv_with_failures(folder / "samples.csv.gz", 8_000, OPS, seed=3, error_every=100, chunk=3_000)
    return written, ingest(folder / "samples.csv.gz", folder / "out")


def test_one_row_per_request_with_exact_percentiles_of_the_successful_ones(ingested):
    (written, failed), result = ingested
    assert result.requests == 8_000
    ops = result.operations.set_index("operation")
    for op, durations in written.items():
        ok = durations[~failed[op]]
        assert ops.loc[op, "count"] == len(durations)
        for p in (50, 90, 95, 99):
            assert ops.loc[op, f"p{p}"] == pytest.approx(np.percentile(ok, p), rel=1e-9)
        assert ops.loc[op, "max"] == pytest.approx(ok.max())
        assert ops.loc[op, "mean"] == pytest.approx(ok.mean())
        if failed[op].any():
            assert ops.loc[op, "failed_p50"] == pytest.approx(np.median(durations[failed[op]]))
        else:
            assert math.isnan(ops.loc[op, "failed_p50"])
    everything = np.concatenate([written[op][~failed[op]] for op in OPS])
    assert ops.loc["__all__", "p95"] == pytest.approx(np.percentile(everything, 95), rel=1e-9)


DEAD_OPS = ["me", "myUser", "memberships", "permissions"]


@pytest.fixture(scope="module")
def dead_service(tmp_path_factory):
    """A third of the requests refused (0 ms, status 0), every `permissions` request among them."""
    folder = tmp_path_factory.mktemp("dead")
    written = write_k6_csv_with_failures(
        folder / "samples.csv.gz", 3_000, DEAD_OPS, seed=5, rate_per_s=100.0, error_every=3, failed_ms=0.0,
        all_failed=("permissions",), chunk=1_000,
    )
    return written, ingest(folder / "samples.csv.gz", folder / "out")


def test_refused_requests_count_as_errors_not_as_latencies(dead_service):
    (written, failed), result = dead_service
    ops = result.operations.set_index("operation")
    for op in ["me", "myUser", "memberships"]:
        ok = written[op][~failed[op]]
        assert 0 < failed[op].sum() < len(failed[op])
        assert ops.loc[op, "count"] == len(written[op])
        assert ops.loc[op, "error_rate"] == pytest.approx(failed[op].mean())
        for p in (50, 90, 95, 99):
            assert ops.loc[op, f"p{p}"] == pytest.approx(np.percentile(ok, p), rel=1e-9)
        assert ops.loc[op, "mean"] == pytest.approx(ok.mean()) and ops.loc[op, "max"] == pytest.approx(ok.max())
        assert ops.loc[op, "p50"] > 1.0  # lognormal(1, 0.5): ~2.7 ms; the 0 ms refusals would pull it down
        assert ops.loc[op, "failed_p50"] == 0.0
    every = np.concatenate([written[op] for op in DEAD_OPS])
    every_failed = np.concatenate([failed[op] for op in DEAD_OPS])
    assert ops.loc["__all__", "count"] == 3_000
    assert ops.loc["__all__", "error_rate"] == pytest.approx(every_failed.mean())
    assert ops.loc["__all__", "p50"] == pytest.approx(np.percentile(every[~every_failed], 50), rel=1e-9)
    assert ops.loc["__all__", "failed_p50"] == 0.0


def test_an_operation_whose_every_request_failed_has_no_latency(dead_service):
    _, result = dead_service
    permissions = result.operations.set_index("operation").loc["permissions"]
    assert permissions["count"] == 750 and permissions["error_rate"] == 1.0 and permissions["rate"] > 0
    assert all(math.isnan(permissions[c]) for c in LATENCIES), permissions[LATENCIES].to_dict()
    assert permissions["failed_p50"] == 0.0
    # The same in what is stored.
    stored = pd.read_parquet(result.operations_path).set_index("operation").loc["permissions"]
    assert all(math.isnan(stored[c]) for c in LATENCIES)


def test_the_time_series_takes_latencies_of_successful_requests_and_errors_of_all(dead_service):
    _, result = dead_service
    requests = pd.read_parquet(result.requests_path)
    requests["bucket_start_s"] = (requests["time_ms"] - requests["time_ms"].min()) // 10_000 * 10
    series = pd.read_parquet(result.timeseries_path)
    assert sorted(series["bucket_start_s"].unique()) == [0, 10, 20]
    assert series["count"].sum() == 3_000
    for row in series.itertuples():
        bucket = requests[(requests["bucket_start_s"] == row.bucket_start_s) & (requests["operation"] == row.operation)]
        ok = bucket.loc[~bucket["failed"], "duration_ms"].to_numpy()
        assert row.count == len(bucket) and row.error_rate == pytest.approx(bucket["failed"].mean())
        if row.operation == "permissions":
            assert row.error_rate == 1.0 and math.isnan(row.p50) and math.isnan(row.p95) and math.isnan(row.p99)
        else:
            assert row.p50 == pytest.approx(np.percentile(ok, 50), rel=1e-9)
            assert row.p99 == pytest.approx(np.percentile(ok, 99), rel=1e-9)


class _ReplayRunner:
    """Stands in for K6Runner: `runs` k6 by copying a synthetic samples file into place."""

    def __init__(self, samples):
        self.samples = samples

    def run(self, *, out_dir, **_kwargs) -> K6RunResult:
        out_dir.mkdir(parents=True, exist_ok=True)
        samples = out_dir / "samples.csv.gz"
        samples.write_bytes(self.samples.read_bytes())
        return K6RunResult(exit_code=99, interrupted=False, thresholds_crossed=True, seconds=30.0,
                           samples_path=samples, summary_path=out_dir / "summary.json", summary={})


def test_result_json_is_strict_json_with_null_for_no_latency(dead_service, tmp_path):
    _, ingested_dead = dead_service
    result = run_load_test(
        runner=_ReplayRunner(ingested_dead.requests_path.parent.parent / "samples.csv.gz"),
        target_url="http://127.0.0.1:9/user/", identities_path=tmp_path / "identities.json",
        profile=get_load_profile("short"), out_dir=tmp_path / "k6", dataset_hash="sha256:test",
    )
    # In memory the latencies stay floats (NaN), which downstream arithmetic expects.
    assert math.isnan(result.operations.set_index("operation").loc["permissions", "p50"])
    text = (tmp_path / "k6" / "result.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    stored = json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in result.json"))
    permissions = next(op for op in stored["operations"] if op["operation"] == "permissions")
    assert permissions["p50"] is None and permissions["failed_p50"] == 0.0 and permissions["error_rate"] == 1.0
    me = next(op for op in stored["operations"] if op["operation"] == "me")
    assert me["p50"] > 1.0 and me["failed_p50"] == 0.0
    assert stored["totals"]["error_rate"] == pytest.approx(result.totals()["error_rate"])


def test_json_safe_replaces_only_non_finite_floats():
    assert json_safe({"a": [1.0, float("nan"), np.float64("inf"), 2, "x", None], "b": {"c": -np.inf}}) == {
        "a": [1.0, None, None, 2, "x", None], "b": {"c": None},
    }


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
