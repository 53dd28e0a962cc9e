"""Within-run errors of a build's percentiles: bootstrap and batch means (no Dagster)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ult_pipeline.analysis.sampling import batch_log_errors


def run(seconds: int = 30, rate: int = 40, seed: int = 0, jumpy: str | None = None) -> pd.DataFrame:
    """Requests of 4 operations; the host is 2x slower in the second half, and `jumpy` 1.5x more so."""
    rng = np.random.default_rng(seed)
    rows = []
    for op, base in (("a", 2.0), ("b", 3.0), ("c", 4.0), ("d", 5.0)):
        t = np.sort(rng.uniform(0, seconds * 1000, seconds * rate)).astype(np.int64)
        host = np.where(t > seconds * 500, 2.0, 1.0)
        extra = np.where((t > seconds * 500) & (op == jumpy), 1.5, 1.0)
        rows.append(pd.DataFrame({"time_ms": t, "operation": op,
                                  "duration_ms": base * host * extra * rng.lognormal(0, 0.2, len(t))}))
    return pd.concat(rows, ignore_index=True)


def test_a_host_slowdown_that_hits_every_operation_alike_adds_little():
    errors = batch_log_errors(run())
    assert max(errors[(op, "p50")] for op in "abcd") < 0.05


def test_an_operation_that_reacts_to_a_busy_host_more_than_the_others_gets_a_larger_error():
    errors = batch_log_errors(run(jumpy="c"))
    # Half the slices 1.5x (log 0.405) off: sd ~0.22 over sqrt(6) slices, ~0.09.
    assert errors[("c", "p50")] == pytest.approx(0.09, abs=0.03)
    assert errors[("c", "p50")] > max(errors[(op, "p50")] for op in "abd")


def test_too_short_or_too_narrow_a_run_gives_no_batch_error():
    assert batch_log_errors(run().query("operation in ['a', 'b']")) == {}
    assert batch_log_errors(pd.DataFrame(columns=["time_ms", "operation", "duration_ms"])) == {}


def test_samples_without_request_times_fall_back_to_the_bootstrap(tmp_path):
    from ult_pipeline.analysis.sampling import sampling_errors

    timed = run(seed=3)
    (tmp_path / "timed").mkdir()
    (tmp_path / "untimed").mkdir()
    timed.to_parquet(tmp_path / "timed" / "requests.parquet")
    timed.drop(columns="time_ms").to_parquet(tmp_path / "untimed" / "requests.parquet")
    history = pd.DataFrame({"build": ["b1", "b2"], "samples_path": [str(tmp_path / "timed"), str(tmp_path / "untimed")]})
    errors = sampling_errors(history, ["b1", "b2"])
    assert errors[("b1", "a", "p50")] > 0 and errors[("b2", "a", "p50")] > 0
    # The busy second half is in the timed run's batch error, not in the bootstrap's.
    assert errors[("b1", "a", "p50")] >= errors[("b2", "a", "p50")]


def test_failed_requests_are_left_out_of_the_sampling_errors(tmp_path):
    """Refused requests (0 ms) are no latencies: the errors are those of the successful requests alone."""
    from ult_pipeline.analysis.sampling import sampling_errors

    ok = run(seed=4)
    rng = np.random.default_rng(9)
    refused = pd.DataFrame({"time_ms": np.sort(rng.integers(0, 30_000, 600)), "operation": rng.choice(list("abcd"), 600),
                            "duration_ms": 0.0})
    dead = pd.DataFrame({"time_ms": np.arange(0, 30_000, 100), "operation": "e", "duration_ms": 0.0})
    for name, frame in (("clean", ok.assign(failed=False)),
                        ("mixed", pd.concat([ok.assign(failed=False), refused.assign(failed=True),
                                             dead.assign(failed=True)], ignore_index=True).sort_values("time_ms"))):
        (tmp_path / name).mkdir()
        frame.to_parquet(tmp_path / name / "requests.parquet")
    history = pd.DataFrame({"build": ["clean", "mixed"], "samples_path": [str(tmp_path / "clean"), str(tmp_path / "mixed")]})
    errors = sampling_errors(history, ["clean", "mixed"])
    for op in ["a", "b", "c", "d", "__all__"]:
        for metric in ("p50", "p95", "p99"):
            assert errors[("mixed", op, metric)] == pytest.approx(errors[("clean", op, metric)], rel=1e-12)
    # An operation whose every request failed has no latency, hence no error of one.
    assert not any(key[1] == "e" for key in errors)
