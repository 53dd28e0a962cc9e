"""NewRelicClient / NerdGraphClient against the local fake New Relic: every status-code path.

Retries run in urllib3 (real sleeps): backoffs here are tiny, and waits are measured on the
fake's arrival times, never on the test's clock.
"""

from __future__ import annotations

import gzip
import json
import socket

import pytest

from ult_pipeline.newrelic.ingest import NewRelicClient, SendReport
from ult_pipeline.newrelic.nerdgraph import OTHER_API_NERDGRAPH_NRQL_QUERY, NerdGraphClient
from ult_pipeline.newrelic.transport import RETRY_STATUSES, NewRelicEndpoints, NewRelicError
from ult_pipeline.telemetry.newrelic import parse_server_view, server_view_nrql
from ult_pipeline_tests.newrelic.fake_newrelic import FakeNewRelic

LICENSE = "eu01xxTESTLICENSEKEY0123456789abcdNRAL"
USER_KEY = "NRAK-TESTUSERKEY0123456789ABCDEF"
ACCOUNT = 4242


@pytest.fixture
def nr():
    with FakeNewRelic(license_key=LICENSE, user_key=USER_KEY, account_id=ACCOUNT) as fake:
        yield fake


def make_client(nr, *, key=LICENSE, account=ACCOUNT, **kwargs) -> NewRelicClient:
    kwargs.setdefault("max_attempts", 5)
    kwargs.setdefault("backoff_s", 0.01)
    kwargs.setdefault("timeout_s", 5)
    return NewRelicClient(account, key, NewRelicEndpoints.local(nr.base_url), **kwargs)


def nerdgraph(nr, key=USER_KEY, **kwargs) -> NerdGraphClient:
    kwargs.setdefault("backoff_s", 0.01)
    return NerdGraphClient(ACCOUNT, key, NewRelicEndpoints.local(nr.base_url), **kwargs)


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


def test_events_payload_and_headers(nr):
    batch = events(3)
    with make_client(nr) as client:
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


def test_metrics_payload_202(nr):
    metrics = [
        {
            "name": "ult.loadtest.http_req_duration.p95",
            "type": "gauge",
            "value": 8.2,
            "timestamp": 1_700_000_000_000,
            "attributes": {"operation": "myUser"},
        }
    ]
    with make_client(nr) as client:
        report = client.send_metrics(metrics, common={"attributes": {"runId": "r1"}})
    assert report.batches == 1 and report.events == 1 and report.attempts == 1
    (req,) = nr.requests
    assert req.path == "/metric/v1" and req.status == 202
    assert req.header("Api-Key") == LICENSE and req.header("Content-Encoding") == "gzip"
    assert req.json == [{"common": {"attributes": {"runId": "r1"}}, "metrics": metrics}]


def test_event_api_202_is_success(nr):
    nr.script(202, body={"success": True}, kind="events")
    with make_client(nr) as client:
        assert client.send_events(events(2)).batches == 1


def test_nothing_to_send_sends_nothing(nr):
    with make_client(nr) as client:
        assert client.send_events([]) == SendReport(0, 0, 0, 0)
        assert client.send_metrics([]) == SendReport(0, 0, 0, 0)
    assert nr.requests == []


# ---- retries --------------------------------------------------------------------------------


def test_retry_policy_is_urllib3_retry_honouring_retry_after(nr):
    with make_client(nr, max_attempts=4, backoff_s=0.5) as client, nerdgraph(nr, max_attempts=3) as graph:
        ingest, query = client.retry, graph.retry
    for retry, attempts in ((ingest, 4), (query, 3)):
        assert retry.total == retry.connect == retry.status == attempts - 1
        assert retry.respect_retry_after_header is True
        assert {408, 429, 500, 502, 503, 504} <= set(retry.status_forcelist) == set(RETRY_STATUSES)
        assert 413 not in retry.status_forcelist and 413 not in retry.RETRY_AFTER_STATUS_CODES
        assert "POST" in retry.allowed_methods
        assert retry.raise_on_status is False and retry.backoff_max == 60.0
    assert ingest.backoff_factor == 0.5
    # Ingest does not resend a batch that may have landed (no answer after sending); NRQL reads may.
    assert ingest.read == 0 and query.read == 2


def test_429_with_retry_after_is_waited_for(nr):
    nr.script(429, headers={"Retry-After": "1"}, kind="metrics")
    metric = {"name": "m", "type": "gauge", "value": 1, "timestamp": 1_700_000_000_000}
    with make_client(nr) as client:
        report = client.send_metrics([metric])
    assert report.attempts == 2 and report.batches == 1
    first, second = nr.requests
    assert (first.status, second.status) == (429, 202)
    assert second.at - first.at >= 0.95  # Retry-After: 1, not the 0.01 s backoff
    assert nr.received_metrics() == [metric]


def test_5xx_retried_then_accepted(nr):
    nr.script_many(500, 503, kind="events")
    with make_client(nr) as client:
        report = client.send_events(events(1))
    assert report.attempts == 3 and report.batches == 1
    assert [r.status for r in nr.requests] == [500, 503, 200]
    assert len(nr.received_events()) == 1


def test_gives_up_after_max_attempts(nr):
    nr.script_many(*[502] * 3, kind="events")
    with make_client(nr, max_attempts=3) as client, pytest.raises(NewRelicError) as info:
        client.send_events(events(1))
    assert "3 attempts" in str(info.value) and "502" in str(info.value)
    assert info.value.attempts == 3 and info.value.status == 502
    assert len(nr.requests) == 3
    assert_error_safe(info.value)


def test_connection_errors_are_retried_then_reported():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = NewRelicClient(
        ACCOUNT, LICENSE, NewRelicEndpoints.local(f"http://127.0.0.1:{port}"), max_attempts=3, backoff_s=0.01,
        timeout_s=2,
    )
    with client, pytest.raises(NewRelicError, match="ConnectionError") as info:
        client.send_events(events(1))
    assert info.value.attempts == 3 and "3 attempt(s)" in str(info.value)
    assert "may have been delivered" not in str(info.value)  # it never left
    assert_error_safe(info.value)


def test_an_unanswered_event_post_is_not_resent(nr):
    nr.script(200, kind="events", delay_s=2.0)  # recorded at once, answered after the client's timeout
    with make_client(nr, timeout_s=0.5) as client, pytest.raises(NewRelicError) as info:
        client.send_events(events(2))
    assert len(nr.requests_to("events")) == 1
    assert "may have been delivered" in str(info.value) and info.value.attempts == 1
    assert_error_safe(info.value)


def test_an_unanswered_nrql_query_is_resent(nr):
    nr.script(200, kind="graphql", delay_s=2.0)
    nr.nrql_results = [{"count": 7}]
    with nerdgraph(nr, timeout_s=0.5) as graph:
        assert graph.nrql("SELECT count(*) FROM Transaction") == [{"count": 7}]
    assert len(nr.requests_to("graphql")) == 2


# ---- 413 and batching -----------------------------------------------------------------------


def test_413_splits_the_batch_until_accepted(nr):
    batch = events(8, pad=100)
    one = len(json.dumps(batch[0], separators=(",", ":")))
    nr.max_payload_bytes = 2 * one + 10  # two events per post at most
    with make_client(nr) as client:
        report = client.send_events(batch)
    assert nr.received_events() == batch
    assert report.batches == 4 and report.events == 8
    statuses = [r.status for r in nr.requests]
    assert statuses.count(413) == 3  # 8 -> 4+4 -> each 4 -> 2+2
    assert report.attempts == len(nr.requests)
    assert all(len(r.body) <= nr.max_payload_bytes for r in nr.accepted("events"))
    # each half is one request: a 413 is split, never resent as is
    sizes = [len(r.json) for r in nr.requests]
    assert sizes == [8, 4, 2, 2, 4, 2, 2]


def test_413_with_retry_after_is_split_not_resent(nr):
    nr.script(413, headers={"Retry-After": "5"}, kind="events")
    with make_client(nr) as client:
        report = client.send_events(events(2))
    assert [(r.status, len(r.json)) for r in nr.requests] == [(413, 2), (200, 1), (200, 1)]
    assert nr.requests[1].at - nr.requests[0].at < 5  # Retry-After of a 413 is not waited for
    assert report.batches == 2 and report.attempts == 3


def test_413_on_a_single_event_raises(nr):
    nr.max_payload_bytes = 50
    with make_client(nr) as client, pytest.raises(NewRelicError, match="413") as info:
        client.send_events(events(1, pad=100))
    assert info.value.status == 413
    assert_error_safe(info.value)


def test_many_events_are_split_into_batches_under_the_limit(nr):
    batch = events(300, pad=50)
    limit = 5_000
    with make_client(nr, max_batch_bytes=limit) as client:
        report = client.send_events(batch)
    posts = nr.accepted("events")
    assert report.batches == len(posts) > 1
    assert report.attempts == len(posts)
    assert all(len(p.body) <= limit and len(p.raw_body) <= limit for p in posts)
    assert nr.received_events() == batch
    assert report.bytes_sent == sum(len(p.raw_body) for p in posts)
    # batches are filled: every post but the last could not take the next event
    assert all(len(p.body) > limit - 200 for p in posts[:-1])


def test_single_event_over_the_batch_limit_raises_before_sending(nr):
    with make_client(nr, max_batch_bytes=1_000) as client, pytest.raises(NewRelicError, match="1000-byte"):
        client.send_events(events(1, pad=2_000))
    assert nr.requests == []


# ---- client errors --------------------------------------------------------------------------


def test_400_names_malformed_payload(nr):
    nr.script(400, body={"error": "Invalid JSON"}, kind="events")
    with make_client(nr) as client, pytest.raises(NewRelicError) as info:
        client.send_events(events(1))
    msg = str(info.value)
    assert "HTTP 400" in msg and "malformed" in msg and "attribute" in msg
    assert info.value.status == 400 and info.value.attempts == 1
    assert len(nr.requests) == 1
    assert_error_safe(info.value)


def test_403_wrong_key_names_key_type_and_account(nr):
    with make_client(nr, key=USER_KEY) as client, pytest.raises(NewRelicError) as info:
        client.send_events(events(1))
    msg = str(info.value)
    assert "HTTP 403" in msg and "license (ingest) key" in msg and str(ACCOUNT) in msg
    assert "looks like a user key" in msg
    assert info.value.status == 403 and len(nr.requests) == 1
    assert_error_safe(info.value)


def test_403_key_of_another_account(nr):
    with make_client(nr, account=999) as client, pytest.raises(NewRelicError) as info:
        client.send_events(events(1))
    assert "account 999" in str(info.value)
    assert_error_safe(info.value)


def test_401_and_metric_403(nr):
    nr.script(401, kind="metrics")
    metric = {"name": "m", "type": "gauge", "value": 1, "timestamp": 1}
    with make_client(nr) as client, pytest.raises(NewRelicError, match="HTTP 401") as info:
        client.send_metrics([metric])
    assert_error_safe(info.value)
    with make_client(nr, key="wrong-key") as client, pytest.raises(NewRelicError, match="Metric API") as info:
        client.send_metrics([metric])
    assert info.value.status == 403


def test_response_body_echoing_the_key_is_redacted(nr):
    nr.script(400, body=f"bad key {LICENSE} here", kind="events")
    with make_client(nr) as client, pytest.raises(NewRelicError) as info:
        client.send_events(events(1))
    assert "bad key *** here" in str(info.value)
    assert_error_safe(info.value)


def test_repr_never_shows_keys(nr):
    client = make_client(nr)
    graph = nerdgraph(nr)
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


def test_nrql_request_shape_and_server_view(nr):
    nr.nrql_results = RESULTS
    nrql = server_view_nrql("user-service 'prod'", 1_700_000_000_000, 1_700_000_600_000)
    with nerdgraph(nr) as graph:
        results = graph.nrql(nrql)
    (req,) = nr.requests
    assert req.path == "/graphql" and req.header("API-Key") == USER_KEY
    assert req.header("Content-Type") == "application/json"
    assert req.json == {"query": OTHER_API_NERDGRAPH_NRQL_QUERY, "variables": {"id": ACCOUNT, "nrql": nrql}}
    assert "$nrql: Nrql!" in req.json["query"] and "$id: Int!" in req.json["query"]
    view = parse_server_view(results)
    assert view["myUser"] == {"count": 1300, "errors": 2, "p95_ms": pytest.approx(12.3)}
    assert view["usersConnection"] == {"count": 150, "errors": 1, "p95_ms": pytest.approx(30.0)}


def test_nrql_errors_raise_with_messages(nr):
    nr.graphql_errors = [{"message": "NRQL Syntax Error: Error at line 1"}]
    with nerdgraph(nr) as graph:
        with pytest.raises(NewRelicError, match="NRQL Syntax Error") as info:
            graph.nrql("SELECT nonsense")
    assert_error_safe(info.value)


def test_nrql_wrong_key_and_retries(nr):
    with nerdgraph(nr, "NRAK-WRONG") as graph:
        with pytest.raises(NewRelicError, match="user key") as info:
            graph.nrql("SELECT 1 FROM Transaction")
    assert info.value.status == 403
    nr.script(503, kind="graphql")
    nr.nrql_results = [{"count": 1}]
    with nerdgraph(nr) as graph:
        assert graph.nrql("SELECT count(*) FROM Transaction") == [{"count": 1}]
    assert [r.status for r in nr.requests_to("graphql")][-2:] == [503, 200]


def test_old_import_paths_still_work():
    from ult_pipeline.newrelic import client
    from ult_pipeline.newrelic import parse_server_view as from_package

    assert client.NewRelicClient is NewRelicClient and client.NerdGraphClient is NerdGraphClient
    assert client.NewRelicError is NewRelicError and client.SendReport is SendReport
    assert client.parse_server_view is parse_server_view is from_package


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
