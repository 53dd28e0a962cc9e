"""Event and gauge builders (pure), and their delivery to the fake New Relic."""

from __future__ import annotations

import math

import pytest

from ult_pipeline.newrelic.client import NewRelicClient, NewRelicEndpoints
from ult_pipeline.newrelic.events import (
    OPERATION_EVENT_TYPE,
    RUN_EVENT_TYPE,
    check_event,
    gauges,
    operation_events,
    run_event,
)
from ult_pipeline.newrelic.limits import MAX_EVENT_ATTRIBUTES, MAX_STRING_VALUE_LENGTH
from ult_pipeline_tests.newrelic.fake_newrelic import FakeNewRelic

LICENSE = "eu01xxTESTLICENSEKEY0123456789abcdNRAL"
ACCOUNT = 4242

COMMON = {
    "imageTag": "build-123",
    "imageDigest": "sha256:abc",
    "partitionKey": "build-123",
    "runId": "run-1",
    "datasetHash": "d41d8cd9",
    "k6Version": "1.1.0",
    "scenario": "ramp",
}


def _op(name: str, **overrides):
    row = {
        "operation": name,
        "count": 1320,
        "rate": 22.0,
        "error_rate": 0.0,
        "p50": 4.1,
        "p90": 7.0,
        "p95": 8.2,
        "p99": 12.0,
        "max": 40.0,
        "mean": 5.0,
        "check_pass_rate": 1.0,
    }
    row.update(overrides)
    return row


OPERATIONS = [
    _op("__all__", count=2640, rate=44.0),
    _op("myUser"),
    _op("usersConnection", count=1320.0, p99=float("nan"), check_pass_rate=None, error_rate=0.01),
]


def test_one_event_per_operation_skipping_all_row():
    events = operation_events(OPERATIONS, COMMON)
    assert [e["operation"] for e in events] == ["myUser", "usersConnection"]
    first = events[0]
    assert first == {
        **COMMON,
        "eventType": OPERATION_EVENT_TYPE,
        "operation": "myUser",
        "p50": 4.1,
        "p90": 7.0,
        "p95": 8.2,
        "p99": 12.0,
        "max": 40.0,
        "mean": 5.0,
        "rate": 22.0,
        "errorRate": 0.0,
        "checkPassRate": 1.0,
        "count": 1320,
    }


def test_nan_and_none_are_dropped_and_counts_are_integers():
    second = operation_events(OPERATIONS, COMMON)[1]
    assert "p99" not in second
    assert "checkPassRate" not in second
    assert second["errorRate"] == 0.01
    assert second["count"] == 1320 and isinstance(second["count"], int)
    assert all(not (isinstance(v, float) and math.isnan(v)) for v in second.values())


def test_numpy_scalars_become_plain_numbers():
    np = pytest.importorskip("numpy")
    event = operation_events([_op("x", p95=np.float64(8.5), count=np.int64(3), p99=np.float64("nan"))], {})[0]
    assert event["p95"] == 8.5 and type(event["p95"]) is float
    assert event["count"] == 3 and type(event["count"]) is int
    assert "p99" not in event


def test_operation_values_win_over_common():
    event = operation_events([_op("myUser")], {"operation": "nope", "eventType": "Nope", "p95": -1})[0]
    assert event["operation"] == "myUser"
    assert event["eventType"] == OPERATION_EVENT_TYPE
    assert event["p95"] == 8.2


def test_run_event_attributes():
    totals = {
        "requests": 2640,
        "errorRate": 0.005,
        "p95": 8.4,
        "p99": 13.0,
        "iterations": 1300,
        "droppedIterations": 2,
        "interrupted": False,
    }
    event = run_event(totals, COMMON, verdict="pass", duration_s=120.5, timestamp=1_700_000_000)
    assert event == {
        **COMMON,
        "eventType": RUN_EVENT_TYPE,
        "requests": 2640,
        "errorRate": 0.005,
        "p95": 8.4,
        "p99": 13.0,
        "iterations": 1300,
        "droppedIterations": 2,
        "interrupted": False,
        "verdict": "pass",
        "durationSeconds": 120.5,
        "timestamp": 1_700_000_000,
    }


def test_run_event_accepts_snake_case_and_omits_unknown_verdict():
    totals = {"http_reqs": 10.0, "error_rate": float("nan"), "p95": 1.0, "dropped_iterations": 0, "interrupted": 1}
    event = run_event(totals, {"runId": "r"}, verdict=None, duration_s=3, timestamp=1_700_000_000_000)
    assert event["requests"] == 10 and isinstance(event["requests"], int)
    assert "errorRate" not in event
    assert "verdict" not in event
    assert "p99" not in event and "iterations" not in event
    assert event["droppedIterations"] == 0
    assert event["interrupted"] is True
    assert event["durationSeconds"] == 3.0


def test_gauges():
    metrics = gauges(OPERATIONS, COMMON, 1_700_000_000_000)
    names = {m["name"] for m in metrics}
    assert {
        "ult.loadtest.http_req_duration.p50",
        "ult.loadtest.http_req_duration.p90",
        "ult.loadtest.http_req_duration.p95",
        "ult.loadtest.http_req_duration.p99",
        "ult.loadtest.http_req_duration.max",
        "ult.loadtest.http_reqs.rate",
        "ult.loadtest.http_req_failed.rate",
        "ult.loadtest.checks.pass_rate",
    } <= names
    assert all(m["type"] == "gauge" and m["timestamp"] == 1_700_000_000_000 for m in metrics)
    assert {m["attributes"]["operation"] for m in metrics} == {"myUser", "usersConnection"}
    p95 = [
        m
        for m in metrics
        if m["name"] == "ult.loadtest.http_req_duration.p95" and m["attributes"]["operation"] == "myUser"
    ]
    assert len(p95) == 1 and p95[0]["value"] == 8.2 and p95[0]["attributes"]["imageTag"] == "build-123"
    # NaN p99 / missing check rate for usersConnection: no gauge
    uc = {m["name"] for m in metrics if m["attributes"]["operation"] == "usersConnection"}
    assert "ult.loadtest.http_req_duration.p99" not in uc
    assert "ult.loadtest.checks.pass_rate" not in uc


def test_too_many_attributes_raise_naming_the_event():
    common = {f"attr{i}": i for i in range(MAX_EVENT_ATTRIBUTES)}
    with pytest.raises(ValueError, match=OPERATION_EVENT_TYPE):
        operation_events([_op("myUser")], common)
    with pytest.raises(ValueError, match=RUN_EVENT_TYPE):
        run_event({}, common, verdict=None, duration_s=1, timestamp=1)
    with pytest.raises(ValueError, match="metric"):
        gauges([_op("myUser")], {f"a{i}": i for i in range(120)}, 1)


def test_exactly_255_attributes_is_fine():
    event = {"eventType": "X", **{f"a{i}": i for i in range(MAX_EVENT_ATTRIBUTES - 1)}}
    assert len(check_event(event)) == MAX_EVENT_ATTRIBUTES
    with pytest.raises(ValueError, match="'X'"):
        check_event({**event, "one_more": 1})


def test_long_names_raise_and_long_strings_are_truncated():
    with pytest.raises(ValueError, match="255"):
        operation_events([_op("myUser")], {"n" * 256: 1})
    event = operation_events([_op("myUser")], {"note": "é" * 5000})[0]
    assert len(event["note"]) == MAX_STRING_VALUE_LENGTH


def test_events_delivered_to_fake_new_relic():
    events = operation_events(OPERATIONS, COMMON)
    events.append(run_event({"requests": 2640}, COMMON, verdict="pass", duration_s=60, timestamp=1_700_000_000))
    with FakeNewRelic(license_key=LICENSE, account_id=ACCOUNT) as nr:
        with NewRelicClient(ACCOUNT, LICENSE, NewRelicEndpoints.local(nr.base_url)) as client:
            report = client.send_events(events)
            metric_report = client.send_metrics(gauges(OPERATIONS, COMMON, 1_700_000_000_000))
        assert nr.received_events() == events
        assert report.events == 3 and report.batches == 1
        assert [e["eventType"] for e in nr.received_events()] == [OPERATION_EVENT_TYPE] * 2 + [RUN_EVENT_TYPE]
        assert metric_report.events == len(nr.received_metrics()) > 0
