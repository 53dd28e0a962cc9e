"""The ECR sensor's time budget against a real socket on 127.0.0.1 that accepts and never answers."""

from __future__ import annotations

import socket
import threading
import time

import dagster as dg
import pytest

from ult_pipeline.resources.aws import AwsResource
from ult_pipeline.sensors.ecr_image_sensor import evaluate
from ult_pipeline.settings import PipelineSettings


@pytest.fixture()
def silent_endpoint():
    """http://127.0.0.1:<port> that accepts connections, never reads and never answers; counts them."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.2)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            accepted.append(connection)  # held open, never read

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}", accepted
    stop.set()
    thread.join(5)
    for connection in accepted:
        connection.close()
    server.close()


@pytest.fixture()
def credentials(monkeypatch):
    # botocore signs before it sends: any credentials, so that the request reaches the socket.
    for key, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                       ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(key, value)


@pytest.mark.timeout(60)
def test_a_hanging_ecr_endpoint_skips_with_the_reason_within_the_budget(silent_endpoint, credentials):
    endpoint, accepted = silent_endpoint
    aws = AwsResource(endpoint_url=endpoint)  # the production defaults: 5 s connect, 30 s read, 5 retries
    budget = 4.0
    settings = PipelineSettings(ecr_repository="user-service", sensor_budget_s=budget)
    # The budget reaches botocore: per-attempt timeouts and attempts lowered to fit it.
    config = aws.client("ecr", budget_s=budget).meta.config
    assert (config.connect_timeout, config.read_timeout) == (0.5, 1.0)
    assert config.retries == {"total_max_attempts": 2, "mode": "standard"}
    cursor = '{"last_pushed_at": "2026-11-01T00:00:00+00:00", "seen": ["sha256:ab"]}'
    with dg.instance_for_test() as instance:
        started = time.monotonic()
        result = evaluate(dg.build_sensor_context(instance=instance, cursor=cursor), aws, settings)
        took = time.monotonic() - started
    assert isinstance(result, dg.SkipReason), result  # the cursor is kept: a SkipReason carries none
    assert result.skip_message.startswith(f"ECR did not answer within {budget:g} s: ")
    assert "ReadTimeoutError" in result.skip_message and "testing" not in result.skip_message
    # Each attempt reached the socket; no more than the attempts the budget allows.
    assert 1 <= len(accepted) <= 2
    assert took < 30  # not 6 attempts x 30 s (a generous bound: the machine may be busy)


@pytest.mark.timeout(60)
def test_the_budget_holds_even_when_botocore_would_wait_longer(silent_endpoint, credentials, monkeypatch):
    """A client whose own timeouts exceed the budget (e.g. an endpoint that trickles bytes) is
    abandoned when the budget is spent."""
    import ult_pipeline.sensors.ecr_image_sensor as sensor
    from ult_pipeline.aws import clients

    endpoint, _ = silent_endpoint
    # Stand-in for a slow reader: the client ignores the budget (30 s reads, 6 attempts).
    monkeypatch.setattr(AwsResource, "client", lambda self, service, budget_s=None: clients.client(
        service, region="us-east-1", endpoint_url=endpoint))
    settings = PipelineSettings(ecr_repository="user-service", sensor_budget_s=1.5)
    with dg.instance_for_test() as instance:
        started = time.monotonic()
        result = sensor.evaluate(dg.build_sensor_context(instance=instance), AwsResource(endpoint_url=endpoint),
                                 settings)
        took = time.monotonic() - started
    assert isinstance(result, dg.SkipReason)
    assert result.skip_message.startswith("ECR did not answer within 1.5 s: OutOfBudget: reading ECR repository "
                                          "user-service took longer than 1.5 s")
    assert took < 15


def test_a_refused_connection_skips_with_the_reason(credentials):
    with socket.socket() as probe:  # a port with nothing listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    aws = AwsResource(endpoint_url=f"http://127.0.0.1:{port}")
    with dg.instance_for_test() as instance:
        result = evaluate(dg.build_sensor_context(instance=instance), aws,
                          PipelineSettings(ecr_repository="user-service", sensor_budget_s=2))
    assert isinstance(result, dg.SkipReason)
    assert result.skip_message.startswith("ECR did not answer within 2 s: EndpointConnectionError")
