"""A service that dies in the middle of a run: more errors, and no latency "improvement".

Real k6 against a private sandbox service (its own process and schema, on the session's
PostgreSQL) so that killing it leaves the session's shared service alone.
"""

from __future__ import annotations

import math
import os
import re
import secrets
import signal
import threading
import time

import pandas as pd
import psycopg
import pytest
import requests
from psycopg import sql

from ult_pipeline.loadtest.profiles import get_load_profile
from ult_pipeline.loadtest.run import run_load_test
from ult_pipeline.loadtest.runner import K6Runner
from ult_pipeline.sandbox import service_process
from ult_pipeline.seeding.dataset import generate
from ult_pipeline.seeding.identities import TokenSigner
from ult_pipeline.seeding.profiles import PROFILES
from ult_pipeline.seeding.run import prepare
from ult_pipeline.target_api.client import GraphQLClient
from ult_pipeline_tests.conftest import free_port

# 14 s of load in all. At 10 iterations/s (8 requests each) every operation has ~60 requests in the
# clean run and ~30 successful ones before the kill: enough for p50s within ~20 % of each other.
RATE, REQUESTS_PER_ITERATION = 10.0, 8
CLEAN_S, DYING_S = 6, 8
_SERVED = re.compile(r"^ult_sandbox_graphql_requests_total\{[^}]*\}\s+([0-9.e+]+)$", re.MULTILINE)


def served(metrics_url: str) -> int | None:
    """GraphQL requests the service has handled so far; None when it does not answer."""
    try:
        text = requests.get(metrics_url, timeout=2).text
    except requests.RequestException:
        return None
    return int(sum(float(v) for v in _SERVED.findall(text)))


@pytest.fixture
def private_service(sandbox, tmp_path):
    """(GraphQL URL, API key, pid) of a sandbox service of our own, in a schema of its own."""
    schema = "ult_dying_" + secrets.token_hex(4)
    api_key = "dying-" + secrets.token_urlsafe(16)
    port = free_port()
    pid = service_process.start(port=port, dsn=sandbox.dsn, api_key=api_key, log_path=tmp_path / "service.log",
                                db_schema=schema)
    try:
        yield service_process.base_url(port) + "/", api_key, pid
    finally:
        service_process.stop(pid)  # False, nothing to do, when the test killed it
        with psycopg.connect(sandbox.dsn, autocommit=True) as conn:
            conn.execute("SET lock_timeout = '20s'")
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@pytest.mark.slow
def test_a_service_killed_halfway_raises_the_error_rate_and_lowers_no_latency(private_service, tmp_path):
    url, api_key, pid = private_service
    client = GraphQLClient(url, api_key=api_key)
    try:
        prepared = prepare(client=client, dataset=generate(PROFILES["tiny"], 5), signer=TokenSigner(),
                           identities_path=tmp_path / "identities.json", wipe=None)
    finally:
        client.close()

    def load_test(duration: str, name: str):
        return run_load_test(
            runner=K6Runner(), target_url=url, identities_path=prepared.identities_path,
            profile=get_load_profile("short").with_overrides(rate=RATE, duration=duration), out_dir=tmp_path / name,
            dataset_hash=prepared.dataset_hash,
        )

    clean = load_test(f"{CLEAN_S}s", "clean")
    metrics_url = url + "metrics"
    before = served(metrics_url)
    assert before is not None and clean.ingested.requests > 0

    # Kill the service (its process group: the service alone, not PostgreSQL) once it has served
    # about 40 % of the dying run's requests; the rest of the run meets a closed port.
    halfway = int(0.4 * RATE * REQUESTS_PER_ITERATION * DYING_S)
    killed = threading.Event()
    stop = threading.Event()

    def kill_halfway() -> None:
        deadline = time.monotonic() + 120
        while not stop.is_set() and time.monotonic() < deadline:
            count = served(metrics_url)
            if count is not None and count - before >= halfway:
                os.killpg(pid, signal.SIGKILL)
                killed.set()
                return
            time.sleep(0.1)

    killer = threading.Thread(target=kill_halfway, daemon=True)
    killer.start()
    try:
        dying = load_test(f"{DYING_S}s", "dying")
    finally:
        stop.set()
        killer.join(timeout=10)
    assert killed.is_set(), "the service did not serve half the dying run's requests, so it was not killed"
    deadline = time.monotonic() + 10
    while service_process.is_service_process(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not service_process.is_service_process(pid)

    clean_ops = clean.operations.set_index("operation")
    dying_ops = dying.operations.set_index("operation")
    # The failures are there, counted as errors...
    assert dying.totals()["error_rate"] > 0
    assert dying.totals()["error_rate"] > clean.totals()["error_rate"]
    failed = pd.read_parquet(dying.ingested.requests_path).query("failed")
    assert len(failed) > 0
    assert dying_ops.loc["__all__", "failed_p50"] >= 0
    # ... and not as latencies: nothing looks faster than in the clean run. The bug gave exactly 0 for
    # every operation with more than half its requests refused, and ~0.3x pooled. With ~30 successful
    # requests an operation's p50 varies by ~1.5x either way between two healthy runs on a busy host,
    # so each operation must stay above 0.25x, the pooled p50 (hundreds of requests) above 0.5x.
    tables = "\n" + pd.concat({"clean": clean_ops[["count", "error_rate", "p50"]],
                               "dying": dying_ops[["count", "error_rate", "p50", "failed_p50"]]}, axis=1).to_string()
    assert dying_ops.loc["__all__", "p50"] >= 0.5 * clean_ops.loc["__all__", "p50"], tables
    finite = 0
    for op, row in dying_ops.drop(index="__all__").iterrows():
        if math.isnan(row["p50"]):  # no successful request: no latency, not 0
            assert row["error_rate"] == 1.0, (op, tables)
            continue
        finite += 1
        assert row["p50"] > 0, (op, tables)
        if op in clean_ops.index and not math.isnan(clean_ops.loc[op, "p50"]):
            assert row["p50"] >= 0.25 * clean_ops.loc[op, "p50"], (op, tables)
    # The service served requests before it died: some latencies were measured.
    assert finite > 0, tables
