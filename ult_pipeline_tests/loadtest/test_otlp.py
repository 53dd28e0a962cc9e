"""Raw series over OTLP: k6 sends its metrics, with the build's attributes and the key header."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ult_pipeline.loadtest.profiles import get_load_profile
from ult_pipeline.loadtest.run import run_load_test
from ult_pipeline.loadtest.runner import K6Runner, OtlpOutput
from ult_pipeline.seeding.dataset import generate
from ult_pipeline.seeding.identities import TokenSigner
from ult_pipeline.seeding.profiles import PROFILES
from ult_pipeline.seeding.run import prepare
from ult_pipeline.target_api.client import GraphQLClient


class Collector(BaseHTTPRequestHandler):
    received: list[tuple[str, dict, bytes]] = []

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Collector.received.append((self.path, dict(self.headers), body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_k6_exports_raw_series_with_the_build_attributes(sandbox, tmp_path):
    collector = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=collector.serve_forever, daemon=True).start()
    Collector.received = []
    try:
        prepared = prepare(
            client=GraphQLClient(sandbox.url, api_key=sandbox.api_key), dataset=generate(PROFILES["tiny"], 9, "otlp"),
            signer=TokenSigner(), identities_path=tmp_path / "identities.json", wipe=None,
        )
        runner = K6Runner(otlp=OtlpOutput(f"127.0.0.1:{collector.server_address[1]}", "api-key=otlp-secret", insecure=True))
        result = run_load_test(
            runner=runner, target_url=sandbox.url, identities_path=prepared.identities_path,
            profile=get_load_profile("short").with_overrides(duration="8s"), out_dir=tmp_path / "k6",
            dataset_hash=prepared.dataset_hash, tags={"build": "otlp-build-1"},
        )
    finally:
        collector.shutdown()
    assert not result.interrupted
    metrics_posts = [(h, b) for path, h, b in Collector.received if path == "/v1/metrics"]
    assert metrics_posts, "k6 sent nothing to the OTLP endpoint"
    headers, body = metrics_posts[-1]
    assert {k.lower(): v for k, v in headers.items()}["api-key"] == "otlp-secret"
    assert b"ult.build" in body and b"otlp-build-1" in body and b"http_req_duration" in body
