"""Three builds through every per-build asset against the sandbox, then the trend report.

The third build is 30 % slower on one operation and records no telemetry for it: the
regression and the telemetry gap must name that operation and no other. New Relic is a
local server speaking its protocol.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import dagster as dg
import pytest

from ult_pipeline.assets.ab_confirmation import NO_REGRESSION, ab_confirmation
from ult_pipeline.assets.k6_results import k6_results
from ult_pipeline.assets.newrelic_export import newrelic_export
from ult_pipeline.assets.regression_comparison import regression_comparison
from ult_pipeline.assets.seeded_dataset import seeded_dataset
from ult_pipeline.assets.target_deployment import target_deployment
from ult_pipeline.assets.telemetry_gap import COVERS_EVERY_OPERATION, telemetry_gap
from ult_pipeline.assets.trend_report import trend_report
from ult_pipeline.aws.images import list_images
from ult_pipeline.resources.newrelic import NewRelicResource
from ult_pipeline.resources.target import ResultsStoreResource
from ult_pipeline.sandbox import aws as sandbox_aws
from ult_pipeline.sandbox import manager
from ult_pipeline.sandbox.service_process import ServiceKnobs
from ult_pipeline_tests.newrelic.fake_newrelic import FakeNewRelic

SLOW = "userNode"
PER_BUILD = [target_deployment, seeded_dataset, k6_results, telemetry_gap, regression_comparison, ab_confirmation,
             newrelic_export]
RUN_CONFIG = {"ops": {
    "seeded_dataset": {"config": {"profile": "tiny"}},
    "k6_results": {"config": {"load_profile": "short", "rate": 10, "duration": "12s"}},
    "ab_confirmation": {"config": {"confirm": False}},
}}


def metadata(result, asset):
    [mat] = result.asset_materializations_for_node(asset)
    return {k: v.value for k, v in mat.metadata.items()}


@pytest.fixture(scope="module")
def chain_results(results_base):
    """This module's results store: its history holds these three builds only."""
    return results_base / "chain"


@pytest.fixture(scope="module")
def chain(pipeline_resources, sandbox_settings, chain_results):
    resources = {**pipeline_resources, "results_store": ResultsStoreResource(base_dir=str(chain_results))}
    builds = [("c1.0.0", ServiceKnobs()), ("c1.0.1", ServiceKnobs()),
              ("c1.1.0", ServiceKnobs(latency_pct={SLOW: 30}, latency_ms={SLOW: 3},
                                      no_telemetry=frozenset({SLOW})))]
    results = {}
    with FakeNewRelic(license_key="lic-secret-123", account_id=4242) as nr, dg.instance_for_test() as instance:
        ecr = pipeline_resources["aws"].client("ecr")
        for i, (tag, knobs) in enumerate(builds):
            digest = sandbox_aws.push(sandbox_settings.aws_port, tag, knobs)["digest"]
            image = next(im for im in list_images(ecr, sandbox_aws.REPOSITORY) if im.digest == digest)
            instance.add_dynamic_partitions("builds", [image.partition_key])
            # The first build exports without a key (stored for later); the others send, one after a 429.
            newrelic = NewRelicResource() if i == 0 else NewRelicResource(
                account_id=4242, license_key="lic-secret-123", endpoint_base_url=nr.base_url)
            if i == 2:
                nr.script(429, headers={"Retry-After": "1"})
            before = len(nr.accepted("events"))
            # Tagged with the build as the sensor tags its runs.
            result = dg.materialize(PER_BUILD, partition_key=image.partition_key, instance=instance,
                                    resources={**resources, "newrelic": newrelic}, run_config=RUN_CONFIG,
                                    raise_on_error=False, tags=image.to_run_tags())
            results[tag] = {"result": result, "partition": image.partition_key,
                            "events": [e for r in nr.accepted("events")[before:] for e in r.json]}
        report = dg.materialize([trend_report], instance=instance, resources=resources)
        logs = json.dumps([str(e) for r in results.values() for e in instance.all_logs(r["result"].run_id)])
        yield results, report, nr, logs
    manager.restart_service(sandbox_settings, ServiceKnobs())


def test_every_build_materializes(chain):
    results, report, _, _ = chain
    for tag, r in results.items():
        failed = [e.step_key for e in r["result"].get_step_failure_events()]
        assert not failed, f"{tag}: {failed}"
    assert report.success


def test_the_slow_build_is_regressed_on_the_slowed_operation(chain):
    results, _, _, _ = chain
    rebuild = metadata(results["c1.0.1"]["result"], "ab_confirmation")
    assert rebuild["regressed_operations"] == "none"
    slow = metadata(results["c1.1.0"]["result"], "ab_confirmation")
    # Regressed on the slowed operation, or (12-s runs on two builds of history) inconclusive on it with a
    # minimum detectable change above the step: never unchanged. Without A/B re-runs (off here), a busy
    # host can make another operation look worse on two builds of history too, so only the slowed
    # operation is asserted on; "that one only" is what the A/B tests and the demo's --confirm check.
    hidden = re.search(rf"{SLOW} \(could only see changes above (\d+) %\)", slow["inconclusive"])
    assert SLOW in slow["regressed_operations"].split(", ") or (
        SLOW not in slow["regressed_operations"] and hidden and int(hidden.group(1)) > 30), slow
    checks = {c.check_name: c for c in results["c1.1.0"]["result"].get_asset_check_evaluations()}
    assert not checks[NO_REGRESSION].passed


def test_the_telemetry_gap_names_the_silenced_operation_and_no_other(chain):
    results, _, _, _ = chain
    assert metadata(results["c1.0.1"]["result"], "telemetry_gap")["gaps"] == "none"
    gap = metadata(results["c1.1.0"]["result"], "telemetry_gap")
    assert gap["gaps"] == f"{SLOW} (missing server-side)", gap["gaps"]
    checks = {c.check_name: c for c in results["c1.1.0"]["result"].get_asset_check_evaluations()}
    assert not checks[COVERS_EVERY_OPERATION].passed


def test_one_run_event_and_one_event_per_operation_with_the_builds_attributes(chain):
    results, _, nr, _ = chain
    events = results["c1.0.1"]["events"]
    runs = [e for e in events if e["eventType"] == "UltLoadTestRun"]
    ops = [e for e in events if e["eventType"] == "UltOperationResult"]
    assert len(runs) == 1
    assert sorted(e["operation"] for e in ops) == sorted(
        ["me", "myUser", "memberships", "orgMemberships", "myUsers", "userNode", "myClasses", "permissions"])
    for event in events:
        assert event["partitionKey"] == results["c1.0.1"]["partition"]
        assert event["imageTag"] == "c1.0.1" and event["imageDigest"].startswith("sha256:")
        assert event["runId"] == results["c1.0.1"]["result"].run_id
    # The 429 before the third build's export was retried once, then accepted.
    assert [r.status for r in nr.requests_to("events")][-2:] == [429, 200]
    assert len([e for e in results["c1.1.0"]["events"] if e["eventType"] == "UltLoadTestRun"]) == 1


def test_without_a_key_the_payload_is_stored_and_ult_newrelic_send_delivers_it(chain, chain_results):
    results, _, _, logs = chain
    first = metadata(results["c1.0.0"]["result"], "newrelic_export")
    assert first["status"] == "skipped: no New Relic key" and results["c1.0.0"]["events"] == []
    with FakeNewRelic(license_key="lic-later-456", account_id=4242) as later:
        sent = subprocess.run(
            [sys.executable, "-m", "ult_pipeline.cli", "newrelic", "send", results["c1.0.0"]["partition"],
             "--endpoint", later.base_url], capture_output=True, text=True, timeout=60,
            env={**os.environ, "ULT_RESULTS_DIR": str(chain_results), "ULT_NEWRELIC_LICENSE_KEY": "lic-later-456",
                 "ULT_NEWRELIC_ACCOUNT_ID": "4242"})
        assert sent.returncode == 0, sent.stderr
        delivered = later.received_events()
    assert len([e for e in delivered if e["eventType"] == "UltLoadTestRun"]) == 1
    assert len([e for e in delivered if e["eventType"] == "UltOperationResult"]) == 8
    assert "lic-secret-123" not in logs and "lic-later-456" not in sent.stdout + sent.stderr


def test_the_trend_report_shows_every_build(chain):
    _, report, _, _ = chain
    [mat] = report.asset_materializations_for_node("trend_report")
    html = open(mat.metadata["html"].value).read()
    assert mat.metadata["builds"].value == 3
    assert all(tag in html for tag in ("c1.0.0", "c1.0.1", "c1.1.0"))
    assert "regressed" in html
    # The telemetry table comes from the files telemetry_gap wrote.
    assert "missing server-side" in html
