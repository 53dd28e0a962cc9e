"""What New Relic gets of a run whose service died: errors, and latencies of successful requests only."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from ult_pipeline.loadtest.ingest import ingest
from ult_pipeline.loadtest.profiles import get_load_profile
from ult_pipeline.loadtest.run import LoadTestResult
from ult_pipeline.loadtest.runner import K6RunResult
from ult_pipeline.newrelic.events import OPERATION_EVENT_TYPE, RUN_EVENT_TYPE, run_event
from ult_pipeline.newrelic.payload import build_payload, load, store
from ult_pipeline_tests.loadtest.k6_csv import write_k6_csv_with_failures

OPS = ["me", "myUser", "permissions"]
LATENCY_ATTRIBUTES = ("p50", "p90", "p95", "p99", "max", "mean")


@pytest.fixture(scope="module")
def dead_run(tmp_path_factory):
    """Every other request refused (0 ms, status 0); every `permissions` request refused."""
    folder = tmp_path_factory.mktemp("nr-dead")
    written, failed = write_k6_csv_with_failures(
        folder / "samples.csv.gz", 900, OPS, seed=7, rate_per_s=60.0, error_every=2, failed_ms=0.0,
        all_failed=("permissions",),
    )
    k6 = K6RunResult(exit_code=99, interrupted=False, thresholds_crossed=True, seconds=15.0,
                     samples_path=folder / "samples.csv.gz", summary_path=folder / "summary.json", summary={})
    result = LoadTestResult(k6, ingest(folder / "samples.csv.gz", folder / "out"), get_load_profile("short"),
                            {"dataset_hash": "sha256:x", "k6_version": "k6 v1.1.0", "load_profile": {"scenario": "s"}})
    return written, failed, result


def test_events_and_gauges_carry_successful_latencies_and_omit_missing_ones(dead_run, tmp_path):
    written, failed, result = dead_run
    payload = build_payload(result.to_json(), {"runId": "r1"}, verdict=None, with_metrics=True)
    events = {e["operation"]: e for e in payload["events"] if e["eventType"] == OPERATION_EVENT_TYPE}
    for op in ("me", "myUser"):
        assert events[op]["p50"] == pytest.approx(np.percentile(written[op][~failed[op]], 50))
        assert events[op]["p50"] > 1.0  # lognormal(1, 0.5), ~2.7 ms; not pulled towards the refusals' 0 ms
        assert events[op]["errorRate"] == pytest.approx(failed[op].mean())
        assert events[op]["count"] == len(written[op])
    dead = events["permissions"]
    assert not set(LATENCY_ATTRIBUTES) & set(dead), dead  # omitted, neither NaN nor 0
    assert dead["errorRate"] == 1.0 and dead["count"] == 300
    assert not any("failed" in name.lower() for e in events.values() for name in e)  # failed_p50 is not a latency
    gauges = {(m["name"], m["attributes"]["operation"]): m["value"] for m in payload["metrics"]}
    assert ("ult.loadtest.http_req_failed.rate", "permissions") in gauges
    assert not any(name.startswith("ult.loadtest.http_req_duration") and op == "permissions" for name, op in gauges)
    assert gauges[("ult.loadtest.http_req_duration.p50", "me")] == events["me"]["p50"]
    [run] = [e for e in payload["events"] if e["eventType"] == RUN_EVENT_TYPE]
    totals = result.operations.set_index("operation").loc["__all__"]
    assert run["errorRate"] == pytest.approx(totals["error_rate"]) and run["errorRate"] > 0.5
    assert run["p95"] == pytest.approx(totals["p95"])  # from totals' p95_ms
    # What is stored and sent is strict JSON.
    json.dumps(payload, allow_nan=False)
    store(tmp_path, payload)
    assert load(tmp_path) == json.loads(json.dumps(payload))


def test_a_run_event_without_any_successful_request_has_no_latency():
    event = run_event({"requests": 40, "error_rate": 1.0, "p95_ms": math.nan, "p99_ms": float("nan")}, {},
                      verdict=None, duration_s=5, timestamp=1_700_000_000)
    assert event["errorRate"] == 1.0 and "p95" not in event and "p99" not in event
    json.dumps(event, allow_nan=False)
