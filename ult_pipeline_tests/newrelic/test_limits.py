"""New Relic accepts what we say we sent: each documented limit (`ult_pipeline.newrelic.limits`) checked
against the local stand-in, which, like New Relic, takes a POST and then drops what breaks a limit.

Issue 14: a payload stored without a key and sent three days later was reported "sent" and dropped.
"""

from __future__ import annotations

import json
import time

import pytest
import requests
from click.testing import CliRunner

from ult_pipeline.cli.main import cli
from ult_pipeline.newrelic import payload as nr_payload
from ult_pipeline.newrelic.events import check_event
from ult_pipeline.newrelic.ingest import NewRelicClient
from ult_pipeline.newrelic.limits import (
    EVENT_MAX_AGE_S,
    MAX_ATTRIBUTE_NAME_LENGTH,
    MAX_EVENT_ATTRIBUTES,
    MAX_PAYLOAD_BYTES,
    MAX_STRING_VALUE_LENGTH,
)
from ult_pipeline.newrelic.transport import NewRelicEndpoints
from ult_pipeline.resources.target import ResultsStoreResource
from ult_pipeline_tests.newrelic.fake_newrelic import FakeNewRelic

KEY, ACCOUNT = "lic-limits-1234", 5150
PARTITION = "v3.1.4-0123456789ab"
HOUR_MS = 3_600_000
K6_RESULTS = {
    "operations": [{"operation": "me", "p50": 2.0, "p95": 4.0, "count": 100, "rate": 10.0, "error_rate": 0.0},
                   {"operation": "userNode", "p50": 3.0, "p95": 6.0, "count": 90, "rate": 9.0, "error_rate": 0.01}],
    "totals": {"requests": 190, "error_rate": 0.005, "p95_ms": 5.0},
    "window": {"start_ms": 1_000, "end_ms": 11_000}, "fingerprint": {},
}


def stored_payload(results_dir, age_ms: int, *, with_metrics: bool = True) -> dict:
    """A build's payload as `newrelic_export` stores it without a key, built `age_ms` ago."""
    payload = nr_payload.build_payload(K6_RESULTS, {"build": PARTITION}, verdict="unchanged",
                                       with_metrics=with_metrics)
    then = payload["built_at_ms"] - age_ms
    payload = {**payload, "built_at_ms": then,
               "events": [{**e, "timestamp": then} for e in payload["events"]],
               "metrics": [{**m, "timestamp": then} for m in payload["metrics"]]}
    nr_payload.store(ResultsStoreResource(base_dir=str(results_dir)).partition_dir(PARTITION), payload)
    return payload


def send_cli(results_dir, nr: FakeNewRelic, *args: str):
    env = {"ULT_RESULTS_DIR": str(results_dir), "ULT_NEWRELIC_LICENSE_KEY": KEY,
           "ULT_NEWRELIC_ACCOUNT_ID": str(ACCOUNT), "ULT_NEWRELIC_ENDPOINT": nr.base_url}
    return CliRunner().invoke(cli, ["newrelic", "send", PARTITION, *args], env=env)


def test_a_payload_stored_three_days_ago_is_restamped_and_new_relic_keeps_it(tmp_path):
    stored = stored_payload(tmp_path, 72 * HOUR_MS)
    with FakeNewRelic(license_key=KEY, account_id=ACCOUNT) as nr:
        result = send_cli(tmp_path, nr)
        assert result.exit_code == 0, result.output
        events, metrics = len(stored["events"]), len(stored["metrics"])
        assert f"re-stamped {events} events and {metrics} metrics to now: they were 72.0 h old" in result.output
        assert nr.dropped_events() == [] and len(nr.kept_events()) == events
        assert len(nr.kept_metrics()) == metrics
        # The run's own time is kept, for queries by run time.
        assert {e["runTimestamp"] for e in nr.kept_events()} == {stored["built_at_ms"]}
    sent = json.loads((tmp_path / PARTITION / nr_payload.SENT_FILE).read_text())
    assert sent["restamped_events"] == events


def test_refused_when_asked_and_nothing_is_sent(tmp_path):
    stored_payload(tmp_path, 72 * HOUR_MS)
    with FakeNewRelic(license_key=KEY, account_id=ACCOUNT) as nr:
        result = send_cli(tmp_path, nr, "--stale", "refuse")
        assert result.exit_code == 1 and "refused" in result.output and "72.0 h old" in result.output
        assert "nothing was sent" in result.output and nr.requests == []
    assert not (tmp_path / PARTITION / nr_payload.SENT_FILE).exists()


def test_a_fresh_payload_is_sent_as_it_is(tmp_path):
    stored = stored_payload(tmp_path, 1 * HOUR_MS)
    with FakeNewRelic(license_key=KEY, account_id=ACCOUNT) as nr:
        result = send_cli(tmp_path, nr)
        assert result.exit_code == 0 and "re-stamped" not in result.output, result.output
        assert [e["timestamp"] for e in nr.kept_events()] == [e["timestamp"] for e in stored["events"]]
        assert not any("runTimestamp" in e for e in nr.received_events())


def test_a_clock_a_day_ahead_is_restamped_too():
    now = int(time.time() * 1000)
    payload = {"built_at_ms": now + 30 * HOUR_MS, "events": [{"eventType": "X", "timestamp": now + 30 * HOUR_MS}]}
    fitted, fit = nr_payload.fit_time_window(payload, now)
    assert fitted["events"][0]["timestamp"] == now and fit.events == 1 and "in the future" in fit.line()


def _client(nr: FakeNewRelic) -> NewRelicClient:
    return NewRelicClient(ACCOUNT, KEY, NewRelicEndpoints.local(nr.base_url), max_attempts=1)


@pytest.mark.parametrize("limit", ["attributes", "name length", "value length", "timestamp"])
def test_each_limit_new_relic_would_drop_at_is_caught_before_sending(limit):
    """At the limit New Relic keeps the event; one past it New Relic (the stand-in) drops it silently, and
    our side refuses, truncates or re-stamps it first."""
    now = int(time.time() * 1000)
    at, past = {
        "attributes": ({f"a{i}": i for i in range(MAX_EVENT_ATTRIBUTES - 1)},
                       {f"a{i}": i for i in range(MAX_EVENT_ATTRIBUTES)}),
        "name length": ({"n" * MAX_ATTRIBUTE_NAME_LENGTH: 1}, {"n" * (MAX_ATTRIBUTE_NAME_LENGTH + 1): 1}),
        "value length": ({"v": "x" * MAX_STRING_VALUE_LENGTH}, {"v": "x" * (MAX_STRING_VALUE_LENGTH + 1)}),
        "timestamp": ({"timestamp": now - EVENT_MAX_AGE_S * 1000 + 60_000},
                      {"timestamp": now - EVENT_MAX_AGE_S * 1000 - 60_000}),
    }[limit]
    at, past = {"eventType": "UltLimit", **at}, {"eventType": "UltLimit", **past}
    with FakeNewRelic(license_key=KEY, account_id=ACCOUNT) as nr:
        # Posted raw, without our checks: New Relic takes both (200) and keeps only the one at the limit.
        answer = requests.post(f"{nr.base_url}/v1/accounts/{ACCOUNT}/events", json=[at, past],
                               headers={"Api-Key": KEY}, timeout=10)
        assert answer.status_code == 200
        assert nr.kept_events() == [at] and len(nr.dropped_events()) == 1
    # Our side: refused with a reason, truncated, or re-stamped, so what is sent is what is kept.
    if limit in ("attributes", "name length"):
        with pytest.raises(ValueError, match="New Relic allows at most|more than"):
            check_event(past)
        return
    fitted, _ = nr_payload.fit_time_window({"built_at_ms": now, "events": [past]}, now)
    with FakeNewRelic(license_key=KEY, account_id=ACCOUNT) as nr, _client(nr) as client:
        client.send_events(fitted["events"])
        assert len(nr.kept_events()) == 1 and nr.dropped_events() == []


def test_a_payload_over_one_megabyte_goes_in_posts_new_relic_takes():
    events = [{"eventType": "UltLimit", "i": i, "blob": "y" * 4000} for i in range(400)]  # about 1.6 MB of JSON
    with FakeNewRelic(license_key=KEY, account_id=ACCOUNT, max_payload_bytes=MAX_PAYLOAD_BYTES) as nr, \
            _client(nr) as client:
        report = client.send_events(events)
        assert report.batches >= 2 and all(r.status == 200 for r in nr.requests)
        assert [e["i"] for e in nr.kept_events()] == list(range(400))


@pytest.mark.parametrize(("content", "said"), [
    ("", "not JSON"), ('{"events": [', "not JSON"), ("[]", "a list of events"), ('{"metrics": []}', "a list of events"),
    ('{"events": [{"eventType": "X", "timestamp": "yesterday"}]}', "'yesterday'"),
])
def test_a_damaged_stored_payload_is_one_line_naming_the_file(tmp_path, content, said):
    folder = tmp_path / PARTITION
    folder.mkdir()
    (folder / nr_payload.PAYLOAD_FILE).write_text(content)
    with FakeNewRelic(license_key=KEY, account_id=ACCOUNT) as nr:
        result = send_cli(tmp_path, nr)
        assert result.exit_code == 1 and nr.requests == []
    assert said in result.output and nr_payload.PAYLOAD_FILE in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_a_mistyped_partition_creates_no_folder(tmp_path):
    with FakeNewRelic(license_key=KEY, account_id=ACCOUNT) as nr:
        result = CliRunner().invoke(cli, ["newrelic", "send", "nope-aaaaaaaaaaaa"], env={
            "ULT_RESULTS_DIR": str(tmp_path), "ULT_NEWRELIC_LICENSE_KEY": KEY, "ULT_NEWRELIC_ACCOUNT_ID": str(ACCOUNT),
            "ULT_NEWRELIC_ENDPOINT": nr.base_url})
    assert result.exit_code == 1 and "no stored New Relic payload" in result.output
    assert list(tmp_path.iterdir()) == []
