"""NewRelicClient / NerdGraphClient against the local fake New Relic: every status-code path."""

from __future__ import annotations

import gzip
import json
import math
import socket

import pytest

from ult_pipeline.newrelic.client import (
    OTHER_API_NERDGRAPH_NRQL_QUERY,
    NerdGraphClient,
    NewRelicClient,
    NewRelicEndpoints,
    NewRelicError,
    SendReport,
    operation_from_transaction_name,
    parse_server_view,
    server_view_nrql,
)
from ult_pipeline_tests.newrelic.fake_newrelic import FakeNewRelic

LICENSE = "eu01xxTESTLICENSEKEY0123456789abcdNRAL"
USER_KEY = "NRAK-TESTUSERKEY0123456789ABCDEF"
ACCOUNT = 4242


@pytest.fixture
def nr():
    with FakeNewRelic(license_key=LICENSE, user_key=USER_KEY, account_id=ACCOUNT) as fake:
        yield fake


class SleepRecorder:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def sleeps():
    return SleepRecorder()


def make_client(nr, sleeps, *, key=LICENSE, account=ACCOUNT, **kwargs) -> NewRelicClient:
    kwargs.setdefault("max_attempts", 5)
    kwargs.setdefault("backoff_s", 0.5)
    kwargs.setdefault("timeout_s", 5)
    return NewRelicClient(account, key, NewRelicEndpoints.local(nr.base_url), sleep=sleeps, **kwargs)


def events(n: int, pad: int = 0) -> list[dict]:
    return [
        {"eventType": "UltOperationResult", "operation": f"op{i}", "p95": i / 10, "pad": "x" * pad} for i in range(n)
    ]


def assert_no_key(*texts: str) -> None:
    for text in texts:
        assert LICENSE not in text
        assert USER_KEY not in text


def assert_error_safe(exc: BaseException) -> None:
    assert_no_key(str(exc), repr(exc), *map(str, exc.args))


# ---- endpoints ------------------------------------------------------------------------------


def test_region_endpoints():
    us = NewRelicEndpoints.for_region("US")
    assert us.events_url(7) == "https://insights-collector.newrelic.com/v1/accounts/7/events"
    assert us.metrics_url == "https://metric-api.newrelic.com/metric/v1"
    assert us.nerdgraph_url == "https://api.newrelic.com/graphql"
    eu = NewRelicEndpoints.for_region("eu")
    assert eu.events_url_template == "https://insights-collector.eu01.nr-data.net/v1/accounts/{account_id}/events"
    assert eu.metrics_url == "https://metric-api.eu.newrelic.com/metric/v1"
    assert eu.nerdgraph_url == "https://api.eu.newrelic.com/graphql"
    local = NewRelicEndpoints.local("http://127.0.0.1:9999/")
    assert local.events_url(1) == "http://127.0.0.1:9999/v1/accounts/1/events"
    assert local.metrics_url == "http://127.0.0.1:9999/metric/v1"
    assert local.nerdgraph_url == "http://127.0.0.1:9999/graphql"
    with pytest.raises(ValueError, match="region"):
        NewRelicEndpoints.for_region("APAC")


# ---- payload shape --------------------------------------------------------------------------


def test_events_payload_and_headers(nr, sleeps):
    batch = events(3)
    with make_client(nr, sleeps) as client:
        report = client.send_events(batch)
    assert report == SendReport(batches=1, events=3, attempts=1, bytes_sent=len(nr.requests[0].raw_body))
    (req,) = nr.requests
    assert req.method == "POST"
    assert req.path == f"/v1/accounts/{ACCOUNT}/events"
    assert req.header("Api-Key") == LICENSE
    assert req.header("Content-Type") == "application/json"
    assert req.header("Content-Encoding") == "gzip"
    assert gzip.decompress(req.raw_body) == req.body
    assert json.loads(req.body) == batch
    assert req.status == 200
    assert sleeps.calls == []


def test_metrics_payload_202(nr, sleeps):
    metrics = [
        {
            "name": "ult.loadtest.http_req_duration.p95",
            "type": "gauge",
            "value": 8.2,
            "timestamp": 1_700_000_000_000,
            "attributes": {"operation": "myUser"},
        }
    ]
    with make_client(nr, sleeps) as client:
        report = client.send_metrics(metrics, common={"attributes": {"runId": "r1"}})
    assert report.batches == 1 and report.events == 1 and report.attempts == 1
    (req,) = nr.requests
    assert req.path == "/metric/v1" and req.status == 202
    assert req.header("Api-Key") == LICENSE and req.header("Content-Encoding") == "gzip"
    assert req.json == [{"common": {"attributes": {"runId": "r1"}}, "metrics": metrics}]


def test_event_api_202_is_success(nr, sleeps):
    nr.script(202, body={"success": True}, kind="events")
    with make_client(nr, sleeps) as client:
        assert client.send_events(events(2)).batches == 1


def test_nothing_to_send_sends_nothing(nr, sleeps):
    with make_client(nr, sleeps) as client:
        assert client.send_events([]) == SendReport(0, 0, 0, 0)
        assert client.send_metrics([]) == SendReport(0, 0, 0, 0)
    assert nr.requests == []


# ---- retries --------------------------------------------------------------------------------


def test_429_with_retry_after_then_success(nr, sleeps):
    nr.script(429, headers={"Retry-After": "1"}, kind="metrics")
    metric = {"name": "m", "type": "gauge", "value": 1, "timestamp": 1_700_000_000_000}
    with make_client(nr, sleeps) as client:
        report = client.send_metrics([metric])
    assert report.attempts == 2 and report.batches == 1
    assert sleeps.calls == [1.0]
    assert [r.status for r in nr.requests] == [429, 202]


def test_5xx_retried_with_exponential_backoff(nr, sleeps):
    nr.script_many(500, 503, kind="events")
    with make_client(nr, sleeps, backoff_s=0.5) as client:
        report = client.send_events(events(1))
    assert report.attempts == 3 and report.batches == 1
    assert sleeps.calls == [0.5, 1.0]
    assert len(nr.received_events()) == 1


def test_gives_up_after_max_attempts(nr, sleeps):
    nr.script_many(*[502] * 3, kind="events")
    with make_client(nr, sleeps, max_attempts=3) as client, pytest.raises(NewRelicError) as info:
        client.send_events(events(1))
    assert "3 attempts" in str(info.value) and "502" in str(info.value)
    assert info.value.attempts == 3
    assert len(nr.requests) == 3 and len(sleeps.calls) == 2
    assert_error_safe(info.value)


def test_connection_errors_are_retried_then_reported():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sleeps = SleepRecorder()
    client = NewRelicClient(
        ACCOUNT,
        LICENSE,
        NewRelicEndpoints.local(f"http://127.0.0.1:{port}"),
        max_attempts=3,
        backoff_s=0.25,
        timeout_s=2,
        sleep=sleeps,
    )
    with pytest.raises(NewRelicError, match="ConnectionError") as info:
        client.send_events(events(1))
    assert sleeps.calls == [0.25, 0.5]
    assert_error_safe(info.value)


# ---- 413 and batching -----------------------------------------------------------------------


def test_413_splits_the_batch_until_accepted(nr, sleeps):
    batch = events(8, pad=100)
    one = len(json.dumps(batch[0], separators=(",", ":")))
    nr.max_payload_bytes = 2 * one + 10  # two events per post at most
    with make_client(nr, sleeps) as client:
        report = client.send_events(batch)
    assert nr.received_events() == batch
    assert report.batches == 4 and report.events == 8
    statuses = [r.status for r in nr.requests]
    assert statuses.count(413) == 3  # 8 -> 4+4 -> each 4 -> 2+2
    assert report.attempts == len(nr.requests)
    assert all(len(r.body) <= nr.max_payload_bytes for r in nr.accepted("events"))
    assert sleeps.calls == []


def test_413_on_a_single_event_raises(nr, sleeps):
    nr.max_payload_bytes = 50
    with make_client(nr, sleeps) as client, pytest.raises(NewRelicError, match="413") as info:
        client.send_events(events(1, pad=100))
    assert info.value.status == 413
    assert_error_safe(info.value)


def test_many_events_are_split_into_batches_under_the_limit(nr, sleeps):
    batch = events(300, pad=50)
    limit = 5_000
    with make_client(nr, sleeps, max_batch_bytes=limit) as client:
        report = client.send_events(batch)
    posts = nr.accepted("events")
    assert report.batches == len(posts) > 1
    assert report.attempts == len(posts)
    assert all(len(p.body) <= limit and len(p.raw_body) <= limit for p in posts)
    assert nr.received_events() == batch
    assert report.bytes_sent == sum(len(p.raw_body) for p in posts)
    # batches are filled: every post but the last could not take the next event
    assert all(len(p.body) > limit - 200 for p in posts[:-1])


def test_single_event_over_the_batch_limit_raises_before_sending(nr, sleeps):
    with make_client(nr, sleeps, max_batch_bytes=1_000) as client, pytest.raises(NewRelicError, match="1000-byte"):
        client.send_events(events(1, pad=2_000))
    assert nr.requests == []


# ---- client errors --------------------------------------------------------------------------


def test_400_names_malformed_payload(nr, sleeps):
    nr.script(400, body={"error": "Invalid JSON"}, kind="events")
    with make_client(nr, sleeps) as client, pytest.raises(NewRelicError) as info:
        client.send_events(events(1))
    msg = str(info.value)
    assert "HTTP 400" in msg and "malformed" in msg and "attribute" in msg
    assert info.value.status == 400 and info.value.attempts == 1
    assert len(nr.requests) == 1 and sleeps.calls == []
    assert_error_safe(info.value)


def test_403_wrong_key_names_key_type_and_account(nr, sleeps):
    with make_client(nr, sleeps, key=USER_KEY) as client, pytest.raises(NewRelicError) as info:
        client.send_events(events(1))
    msg = str(info.value)
    assert "HTTP 403" in msg and "license (ingest) key" in msg and str(ACCOUNT) in msg
    assert "looks like a user key" in msg
    assert info.value.status == 403 and len(nr.requests) == 1
    assert_error_safe(info.value)


def test_403_key_of_another_account(nr, sleeps):
    with make_client(nr, sleeps, account=999) as client, pytest.raises(NewRelicError) as info:
        client.send_events(events(1))
    assert "account 999" in str(info.value)
    assert_error_safe(info.value)


def test_401_and_metric_403(nr, sleeps):
    nr.script(401, kind="metrics")
    metric = {"name": "m", "type": "gauge", "value": 1, "timestamp": 1}
    with make_client(nr, sleeps) as client, pytest.raises(NewRelicError, match="HTTP 401") as info:
        client.send_metrics([metric])
    assert_error_safe(info.value)
    with make_client(nr, sleeps, key="wrong-key") as client, pytest.raises(NewRelicError, match="Metric API") as info:
        client.send_metrics([metric])
    assert info.value.status == 403


def test_response_body_echoing_the_key_is_redacted(nr, sleeps):
    nr.script(400, body=f"bad key {LICENSE} here", kind="events")
    with make_client(nr, sleeps) as client, pytest.raises(NewRelicError) as info:
        client.send_events(events(1))
    assert "bad key *** here" in str(info.value)
    assert_error_safe(info.value)


def test_repr_never_shows_keys(nr, sleeps):
    client = make_client(nr, sleeps)
    graph = NerdGraphClient(ACCOUNT, USER_KEY, NewRelicEndpoints.local(nr.base_url))
    assert_no_key(repr(client), str(client), repr(graph), str(graph))
    assert "***" in repr(client) and str(ACCOUNT) in repr(client)


# ---- NerdGraph ------------------------------------------------------------------------------

RESULTS = [
    {
        "name": "WebTransaction/Expressjs/POST//user/myUser",
        "facet": "WebTransaction/Expressjs/POST//user/myUser",
        "count": 1300,
        "errors": 2,
        "p95": {"95": 0.0123},
    },
    {
        "name": "WebTransaction/Expressjs/POST//graphql/query/usersConnection/usersConnection.edges",
        "count": 100,
        "errors": 0,
        "p95": {"95": 0.02},
    },
    {
        "facet": "WebTransaction/apollo-server/query/usersConnection/usersConnection.totalCount",
        "count": 50,
        "errors": 1,
        "p95": {"95": 0.03},
    },
]


def test_nrql_request_shape_and_server_view(nr, sleeps):
    nr.nrql_results = RESULTS
    nrql = server_view_nrql("user-service 'prod'", 1_700_000_000_000, 1_700_000_600_000)
    with NerdGraphClient(ACCOUNT, USER_KEY, NewRelicEndpoints.local(nr.base_url), sleep=sleeps) as graph:
        results = graph.nrql(nrql)
    (req,) = nr.requests
    assert req.path == "/graphql" and req.header("API-Key") == USER_KEY
    assert req.header("Content-Type") == "application/json"
    assert req.json == {"query": OTHER_API_NERDGRAPH_NRQL_QUERY, "variables": {"id": ACCOUNT, "nrql": nrql}}
    assert "$nrql: Nrql!" in req.json["query"] and "$id: Int!" in req.json["query"]
    view = parse_server_view(results)
    assert view["myUser"] == {"count": 1300, "errors": 2, "p95_ms": pytest.approx(12.3)}
    assert view["usersConnection"] == {"count": 150, "errors": 1, "p95_ms": pytest.approx(30.0)}


def test_nrql_errors_raise_with_messages(nr, sleeps):
    nr.graphql_errors = [{"message": "NRQL Syntax Error: Error at line 1"}]
    with NerdGraphClient(ACCOUNT, USER_KEY, NewRelicEndpoints.local(nr.base_url), sleep=sleeps) as graph:
        with pytest.raises(NewRelicError, match="NRQL Syntax Error") as info:
            graph.nrql("SELECT nonsense")
    assert_error_safe(info.value)


def test_nrql_wrong_key_and_retries(nr, sleeps):
    with NerdGraphClient(ACCOUNT, "NRAK-WRONG", NewRelicEndpoints.local(nr.base_url), sleep=sleeps) as graph:
        with pytest.raises(NewRelicError, match="user key") as info:
            graph.nrql("SELECT 1 FROM Transaction")
    assert info.value.status == 403
    nr.script(503, kind="graphql")
    nr.nrql_results = [{"count": 1}]
    with NerdGraphClient(ACCOUNT, USER_KEY, NewRelicEndpoints.local(nr.base_url), sleep=sleeps) as graph:
        assert graph.nrql("SELECT count(*) FROM Transaction") == [{"count": 1}]
    assert sleeps.calls == [1.0]


def test_server_view_nrql_text():
    nrql = server_view_nrql("it's\\svc", 1000, 2000)
    assert nrql == (
        "SELECT count(*) AS 'count', filter(count(*), WHERE error IS true) AS 'errors', "
        "percentile(duration, 95) AS 'p95' FROM Transaction WHERE appName = 'it\\'s\\\\svc' "
        "SINCE 1000 UNTIL 2000 FACET name LIMIT MAX"
    )
    with pytest.raises(ValueError):
        server_view_nrql("x", 2000, 1000)


@pytest.mark.parametrize(
    ("name", "operation"),
    [
        ("WebTransaction/Expressjs/POST//user/myUser", "myUser"),
        ("WebTransaction/Expressjs/POST//graphql/query/myUser", "myUser"),
        ("WebTransaction/Expressjs/POST//graphql/mutation/createUsers", "createUsers"),
        ("WebTransaction/apollo-server/query/myUser/myUser.node", "myUser"),
        ("WebTransaction/apollo-server/query/<anonymous>/users.edges", "users"),
        ("WebTransaction/Nodejs/POST//graphql/query myUser", "myUser"),
        ("OtherTransaction/Custom/job", "job"),
    ],
)
def test_operation_from_transaction_name(name, operation):
    assert operation_from_transaction_name(name) == operation


def test_parse_server_view_tolerates_plain_numbers_and_missing_p95():
    view = parse_server_view(
        [
            {"name": "WebTransaction/Expressjs/POST//user/a", "count": 3, "errors": 0, "p95": 0.5},
            {"name": "WebTransaction/Expressjs/POST//user/b", "count": 1, "errors": None, "p95": None},
        ]
    )
    assert view["a"] == {"count": 3, "errors": 0, "p95_ms": 500.0}
    assert view["b"]["count"] == 1 and view["b"]["errors"] == 0 and math.isnan(view["b"]["p95_ms"])


def test_fake_fixture_is_reusable(fake_newrelic):
    with NewRelicClient(1, fake_newrelic.license_key, NewRelicEndpoints.local(fake_newrelic.base_url)) as client:
        assert client.send_events(events(1)).batches == 1
    assert fake_newrelic.received_events() == events(1)


def test_library_has_no_dagster_import():
    import subprocess
    import sys

    code = "import sys, ult_pipeline.newrelic; print('dagster' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
