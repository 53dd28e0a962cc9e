"""The payload of one build's export: built once, stored beside the results, sent now or later."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from ult_pipeline.newrelic.events import gauges, operation_events, run_event
from ult_pipeline.newrelic.ingest import NewRelicClient, SendReport

PAYLOAD_FILE = "newrelic_payload.json"
SENT_FILE = "newrelic_sent.json"


def build_payload(k6_results: dict, common: dict, *, verdict: str | None, with_metrics: bool) -> dict:
    now_ms = int(time.time() * 1000)
    fingerprint = k6_results.get("fingerprint", {})
    profile = fingerprint.get("load_profile", {})
    common = {
        **common,
        "datasetHash": fingerprint.get("dataset_hash"),
        "k6Version": fingerprint.get("k6_version"),
        "scenario": profile.get("scenario"),
    }
    totals = {**k6_results.get("totals", {}), "interrupted": k6_results.get("interrupted", False)}
    window = k6_results.get("window") or {}
    duration_s = ((window.get("end_ms") or 0) - (window.get("start_ms") or 0)) / 1000.0
    events = [*operation_events(k6_results["operations"], common),
              run_event(totals, common, verdict=verdict, duration_s=duration_s, timestamp=now_ms)]
    metrics = gauges(k6_results["operations"], common, now_ms) if with_metrics else []
    return {"events": events, "metrics": metrics, "built_at_ms": now_ms}


def store(folder: Path, payload: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / PAYLOAD_FILE
    path.write_text(json.dumps(payload, indent=1, default=str))
    return path


def load(folder: Path) -> dict:
    path = folder / PAYLOAD_FILE
    if not path.exists():
        raise FileNotFoundError(f"no stored New Relic payload at {path}: was the build's newrelic_export materialized?")
    return json.loads(path.read_text())


def send(client: NewRelicClient, payload: dict, folder: Path | None = None) -> dict[str, SendReport]:
    reports = {"events": client.send_events(payload["events"])}
    if payload.get("metrics"):
        reports["metrics"] = client.send_metrics(payload["metrics"])
    if folder is not None:
        (folder / SENT_FILE).write_text(json.dumps(
            {"sent_at_ms": int(time.time() * 1000), "events": len(payload["events"]),
             "metrics": len(payload.get("metrics", [])), "pid": os.getpid()}))
    return reports
