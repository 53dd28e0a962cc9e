"""The payload of one build's export: built once, stored beside the results, sent now or later."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from ult_pipeline.newrelic.events import check_event, gauges, operation_events, run_event
from ult_pipeline.newrelic.ingest import NewRelicClient, SendReport
from ult_pipeline.newrelic.limits import (
    EVENT_MAX_AGE_S,
    EVENT_MAX_AHEAD_S,
    METRIC_MAX_AGE_S,
    METRIC_MAX_AHEAD_S,
    timestamp_ms,
)

RUN_TIME_ATTRIBUTE = "runTimestamp"  # a re-stamped item's own time (Unix ms), kept for queries
RESTAMP, REFUSE = "restamp", "refuse"


class StalePayloadError(ValueError):
    """A stored payload holds items New Relic would drop for their age, and re-stamping was refused."""


@dataclass(frozen=True)
class TimeWindowFit:
    """What `fit_time_window` did: how many events and metrics it re-stamped, and how old (or how far
    ahead, negative) the oldest of them was, in hours."""

    events: int = 0
    metrics: int = 0
    hours_old: float = 0.0

    def line(self) -> str:
        """One sentence for a person ("" when nothing was re-stamped)."""
        if not (self.events or self.metrics):
            return ""
        when = f"{self.hours_old:.1f} h old" if self.hours_old >= 0 else f"{-self.hours_old:.1f} h in the future"
        return (f"re-stamped {self.events} events and {self.metrics} metrics to now: they were {when}, outside "
                f"what New Relic keeps (events within {EVENT_MAX_AGE_S // 3600} h, metrics within "
                f"{METRIC_MAX_AGE_S // 3600} h); their own time is in `{RUN_TIME_ATTRIBUTE}`")


def _outside(ts_ms: int, now_ms: int, max_age_s: int, max_ahead_s: int) -> bool:
    return now_ms - ts_ms > max_age_s * 1000 or ts_ms - now_ms > max_ahead_s * 1000


def fit_time_window(payload: dict, now_ms: int, policy: str = RESTAMP) -> tuple[dict, TimeWindowFit]:
    """`payload` with every event and metric New Relic would drop for its timestamp re-stamped to `now_ms`
    (its own time kept in `runTimestamp`), and what was done; with `policy` REFUSE, StalePayloadError
    instead. An event without a timestamp takes the payload's `built_at_ms` (New Relic would stamp it
    with the arrival time). Windows: `limits.EVENT_MAX_AGE_S` etc.
    """
    if policy not in (RESTAMP, REFUSE):
        raise ValueError(f"unknown policy {policy!r}: {RESTAMP} or {REFUSE}")
    built = payload.get("built_at_ms")
    events, metrics, ages = [], [], []
    counts = {"events": 0, "metrics": 0}

    def fitted(item: dict, kind: str, max_age_s: int, max_ahead_s: int) -> dict:
        ts = item.get("timestamp", built)
        if ts is None or not _outside(timestamp_ms(ts), now_ms, max_age_s, max_ahead_s):
            return item
        own = timestamp_ms(ts)
        counts[kind] += 1
        ages.append((now_ms - own) / 3_600_000)
        return {**item, "timestamp": now_ms, RUN_TIME_ATTRIBUTE: own} if kind == "events" else {
            **item, "timestamp": now_ms, "attributes": {**(item.get("attributes") or {}), RUN_TIME_ATTRIBUTE: own}}

    events = [check_event(fitted(e, "events", EVENT_MAX_AGE_S, EVENT_MAX_AHEAD_S)) for e in payload["events"]]
    metrics = [fitted(m, "metrics", METRIC_MAX_AGE_S, METRIC_MAX_AHEAD_S) for m in payload.get("metrics") or []]
    fit = TimeWindowFit(counts["events"], counts["metrics"], max(ages, key=abs) if ages else 0.0)
    if ages and policy == REFUSE:
        raise StalePayloadError(
            f"refused: {fit.events} events and {fit.metrics} metrics of the stored payload are "
            f"{fit.line().split('they were ', 1)[1].split(',', 1)[0]}, and New Relic would accept the POST and drop "
            f"them (events within {EVENT_MAX_AGE_S // 3600} h, metrics within {METRIC_MAX_AGE_S // 3600} h); "
            f"nothing was sent. Send with --stale {RESTAMP} to stamp them with the sending time (their own time "
            f"kept in `{RUN_TIME_ATTRIBUTE}`)")
    return {**payload, "events": events, "metrics": metrics}, fit

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
    # Every event carries its time, so a payload sent later can be checked against New Relic's window.
    events = [*({**e, "timestamp": now_ms} for e in operation_events(k6_results["operations"], common)),
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
    rebuild = "materialize the build's newrelic_export again to rebuild it"
    try:
        payload = json.loads(path.read_text())
    except ValueError as err:
        raise ValueError(f"{path} is not a stored payload (not JSON: {err}); {rebuild}") from None
    events = payload.get("events") if isinstance(payload, dict) else None
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events) \
            or not isinstance(payload.get("metrics", []), list):
        raise ValueError(f"{path} is not a stored payload (an object with a list of events and of metrics); {rebuild}")
    for item in [*events, *payload.get("metrics", [])]:
        ts = item.get("timestamp") if isinstance(item, dict) else None
        if ts is not None and (isinstance(ts, bool) or not isinstance(ts, (int, float))):
            raise ValueError(f"{path}: a timestamp is {ts!r}, not Unix seconds or milliseconds; {rebuild}")
    return payload


def send(client: NewRelicClient, payload: dict, folder: Path | None = None, *, stale: str = RESTAMP
         ) -> tuple[dict[str, SendReport], TimeWindowFit]:
    """Sends `payload` (events, then metrics), first fitted to New Relic's time window (`fit_time_window`
    with policy `stale`); records the delivery in folder/newrelic_sent.json. Returns the reports and
    what was re-stamped. Raises StalePayloadError (nothing sent) or NewRelicError."""
    now_ms = int(time.time() * 1000)
    payload, fit = fit_time_window(payload, now_ms, stale)
    reports = {"events": client.send_events(payload["events"])}
    if payload.get("metrics"):
        reports["metrics"] = client.send_metrics(payload["metrics"])
    if folder is not None:
        (folder / SENT_FILE).write_text(json.dumps(
            {"sent_at_ms": now_ms, "events": len(payload["events"]), "metrics": len(payload.get("metrics", [])),
             "restamped_events": fit.events, "restamped_metrics": fit.metrics, "pid": os.getpid()}))
    return reports, fit
