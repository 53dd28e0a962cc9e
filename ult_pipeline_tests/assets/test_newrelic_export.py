"""A New Relic outage neither fails the build's run nor hides its results: the export materializes,
its check fails with the reason, and `ult newrelic send` delivers the stored payload later."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import dagster as dg
import pytest

from ult_pipeline.assets.newrelic_export import NEWRELIC_DELIVERED, newrelic_export
from ult_pipeline.build import Build
from ult_pipeline.newrelic.payload import PAYLOAD_FILE
from ult_pipeline.partitions import builds_partitions
from ult_pipeline.resources.newrelic import NewRelicResource
from ult_pipeline.resources.target import ResultsStoreResource
from ult_pipeline_tests.conftest import free_port
from ult_pipeline_tests.newrelic.fake_newrelic import FakeNewRelic

PARTITION = "v9.9.9-abcdef012345"
KEY = "lic-canary-8812"
OPERATIONS = [
    {"operation": "me", "p50": 2.0, "p95": 4.0, "count": 100, "rate": 10.0, "error_rate": 0.0},
    {"operation": "myUser", "p50": 3.0, "p95": 6.0, "count": 100, "rate": 10.0, "error_rate": 0.0},
]


@dg.asset(partitions_def=builds_partitions, name="k6_results")
def fake_k6_results() -> dict:
    return {"operations": OPERATIONS, "totals": {"requests": 200, "error_rate": 0.0, "p95_ms": 5.0},
            "window": {"start_ms": 1_000, "end_ms": 11_000}, "fingerprint": {}}


@dg.asset(partitions_def=builds_partitions, name="ab_confirmation")
def fake_ab_confirmation() -> dict:
    return {"verdict": "not_regressed"}


def export(tmp_path, newrelic: NewRelicResource, tags: dict | None = None) -> dg.ExecuteInProcessResult:
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("builds", [PARTITION])
        return dg.materialize(
            [fake_k6_results, fake_ab_confirmation, newrelic_export], partition_key=PARTITION, instance=instance,
            resources={"newrelic": newrelic, "results_store": ResultsStoreResource(base_dir=str(tmp_path))},
            raise_on_error=False, tags=tags,
        )


@pytest.mark.parametrize("outage", ["unreachable", "answers 503"])
def test_an_outage_materializes_fails_the_check_with_the_reason_and_send_delivers_later(tmp_path, outage):
    with FakeNewRelic(license_key=KEY, account_id=4242) as down:
        if outage == "answers 503":
            down.script_many(503, 503)
            base_url = down.base_url
        else:
            base_url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
        result = export(tmp_path, NewRelicResource(account_id=4242, license_key=KEY, endpoint_base_url=base_url,
                                                   max_attempts=2, timeout_s=5))
    assert result.success, [e.message for e in result.get_step_failure_events()]
    [mat] = result.asset_materializations_for_node("newrelic_export")
    assert mat.metadata["status"].value.startswith("not sent: ")
    [check] = [c for c in result.get_asset_check_evaluations() if c.check_name == NEWRELIC_DELIVERED]
    assert not check.passed
    reason = check.description
    assert reason.startswith("not delivered to New Relic: New Relic Event API: gave up on a batch")
    assert ("HTTP 503" if outage == "answers 503" else "ConnectionError") in reason
    assert f"ult newrelic send {PARTITION}" in reason and "\n" not in reason and KEY not in reason
    assert (tmp_path / PARTITION / PAYLOAD_FILE).exists()

    with FakeNewRelic(license_key=KEY, account_id=4242) as back:
        sent = subprocess.run(
            [sys.executable, "-m", "ult_pipeline.cli", "newrelic", "send", PARTITION], capture_output=True, text=True,
            timeout=60, env={**os.environ, "ULT_RESULTS_DIR": str(tmp_path), "ULT_NEWRELIC_LICENSE_KEY": KEY,
                             "ULT_NEWRELIC_ACCOUNT_ID": "4242", "ULT_NEWRELIC_ENDPOINT": back.base_url})
        assert sent.returncode == 0, sent.stderr
        events = back.received_events()
    assert sorted(e.get("operation", e["eventType"]) for e in events) == ["UltLoadTestRun", "me", "myUser"]
    assert all(e["partitionKey"] == PARTITION for e in events)
    assert KEY not in sent.stdout + sent.stderr


def test_a_delivered_export_passes_its_check(tmp_path):
    with FakeNewRelic(license_key=KEY, account_id=4242) as nr:
        result = export(tmp_path, NewRelicResource(account_id=4242, license_key=KEY, endpoint_base_url=nr.base_url))
        assert len(nr.received_events()) == 3
    [check] = result.get_asset_check_evaluations()
    assert check.passed and result.success


def test_without_a_key_the_check_passes_and_the_payload_waits(tmp_path):
    result = export(tmp_path, NewRelicResource())
    [check] = result.get_asset_check_evaluations()
    assert check.passed and "ult newrelic send" in check.description
    assert (tmp_path / PARTITION / PAYLOAD_FILE).exists()


def test_the_image_is_the_runs_build_else_the_partition_keys_tag(tmp_path):
    build = Build.of("v9.9.9", "sha256:abcdef012345" + "0" * 52, "2026-11-01T12:00:00Z")
    assert build.key == PARTITION
    export(tmp_path / "tagged", NewRelicResource(), tags=build.to_run_tags())
    export(tmp_path / "by-hand", NewRelicResource())
    tagged, by_hand = (json.loads((tmp_path / where / PARTITION / PAYLOAD_FILE).read_text())["events"]
                       for where in ("tagged", "by-hand"))
    assert {(e["imageTag"], e["imageDigest"]) for e in tagged} == {("v9.9.9", build.digest)}
    assert {(e["imageTag"], e["imageDigest"]) for e in by_hand} == {("v9.9.9", "")}
