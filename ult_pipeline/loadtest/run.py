"""One load test: run k6 against a seeded target and ingest what it saw."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import requests

from ult_pipeline.loadtest import contention as contention_check
from ult_pipeline.loadtest.ingest import IngestResult, ingest
from ult_pipeline.loadtest.profiles import WRITE_OPERATIONS, LoadProfile
from ult_pipeline.loadtest.runner import K6_DIR, K6Runner, K6RunResult, k6_version


def scripts_hash(k6_dir: Path = K6_DIR) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in k6_dir.rglob("*") if p.is_file() and p.suffix in {".js", ".graphql", ".json"}):
        digest.update(str(path.relative_to(k6_dir)).encode() + b"\0" + path.read_bytes() + b"\0")
    return "sha256:" + digest.hexdigest()


def target_version(graphql_url: str) -> str:
    try:
        return requests.get(graphql_url.rstrip("/") + "/version", timeout=5).json().get("version", "unknown")
    except (requests.RequestException, ValueError):
        return "unknown"


def json_safe(value):
    """`value` with every NaN or infinite float replaced by None (JSON's null): strict JSON.

    An operation whose requests all failed has NaN latencies; json.dumps would write `NaN`,
    which is not JSON (jq, JavaScript and New Relic reject it).
    """
    if isinstance(value, np.generic):  # numpy scalars from pandas rows
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


@dataclass(frozen=True)
class LoadTestResult:
    k6: K6RunResult
    ingested: IngestResult
    profile: LoadProfile
    fingerprint: dict
    # roster_contention only, when run_load_test was given a client to read the rosters back with.
    contention: contention_check.ContentionResult | None = None

    @property
    def rows_written(self) -> dict[str, int]:
        """operation -> rows its successful requests created or changed (the k6 counter `rows_written`):
        the run's data volume per mutation ({} for a read-only run)."""
        return dict(sorted(self.ingested.rows_written.items()))

    @property
    def errors(self) -> dict[str, dict[str, int]]:
        """operation -> error code -> failed requests (GraphQL error codes, `HTTP_<status>`, `K6_<code>`)."""
        return {op: dict(sorted(codes.items())) for op, codes in sorted(self.ingested.errors.items())}

    @property
    def writes(self) -> dict[str, dict[str, int]]:
        """Per write operation the run sent: `requests`, `acknowledged` (successful requests) and `rows`
        (rows created or changed); {} for a read-only run."""
        table = self.operations.set_index("operation")
        written = self.ingested.rows_written
        names = [op for op in table.index if op in WRITE_OPERATIONS or op in written]
        return {
            op: {"requests": int(table.loc[op, "count"]),
                 "acknowledged": int(round(table.loc[op, "count"] * (1.0 - table.loc[op, "error_rate"]))),
                 "rows": int(written.get(op, 0))}
            for op in sorted(names)
        }

    @property
    def interrupted(self) -> bool:
        """k6 stopped before the planned end, or its samples file ended early (the rows before kept)."""
        return self.k6.interrupted or self.ingested.truncated is not None

    @property
    def interrupted_reason(self) -> str | None:
        """Why the run is partial, in words (None for a complete run)."""
        reasons = [r for r in (self.k6.stop_reason, self.ingested.truncated and
                               f"its samples file is cut: {self.ingested.truncated}") if r]
        return "; ".join(reasons) or None

    @property
    def target_rate(self) -> float:
        return self.profile.rate

    @property
    def seconds(self) -> float:
        """Seconds of load: the planned duration for a complete run. For an interrupted run, the time it
        really ran: k6's own measure from its summary; without one (k6 killed before writing it), the span
        of the request samples, else the k6 process's lifetime."""
        if not self.interrupted:
            return float(self.profile.seconds)
        return self.k6.load_seconds or self.ingested.seconds or self.k6.seconds

    @property
    def achieved_rate(self) -> float:
        """Iterations per second over `seconds` (0.0 when no time was run). k6 may start one iteration past
        rate x duration at the very end of a complete run (the write journeys leave it empty: k6/lib/plan.js);
        that one is not load above the target, so a complete run counts at most rate x duration."""
        if self.seconds <= 0:
            return 0.0
        iterations = self.ingested.iterations
        if not self.interrupted:
            iterations = min(iterations, round(self.profile.rate * self.profile.seconds))
        return iterations / self.seconds

    def interrupted_report(self, out_dir: Path) -> str:
        """A few lines for a person: what an interrupted run achieved, per operation, and where its files are."""
        totals = self.totals()
        table = self.operations.set_index("operation")[["count", "error_rate", "p50", "p95", "p99"]]
        return "\n".join([
            f"interrupted ({self.interrupted_reason}) after {self.seconds:.1f} s of load: {totals['requests']} requests, "
            f"{self.achieved_rate:.2f} of {self.target_rate:g} iterations/s, error rate {totals['error_rate']:.4f}",
            table.to_string(float_format=lambda v: f"{v:.3f}"),
            # What the contention check found in the rounds that ran: a lost write is a finding even cut short.
            *([f"{self.contention.line()} (in the rounds before the interruption)"] if self.contention else []),
            f"interrupted; partial results in {out_dir}",
        ])

    @property
    def operations(self) -> pd.DataFrame:
        return self.ingested.operations

    def totals(self) -> dict:
        """Whole-run numbers; p95/p99 of the successful requests (NaN when none succeeded)."""
        row = self.operations.set_index("operation").loc["__all__"]
        return {
            "requests": int(row["count"]), "error_rate": float(row["error_rate"]), "p95_ms": float(row["p95"]),
            "p99_ms": float(row["p99"]), "iterations": self.ingested.iterations,
            "dropped_iterations": self.ingested.dropped_iterations,
        }

    def to_json(self) -> dict:
        return {
            "interrupted": self.interrupted, "interrupted_reason": self.interrupted_reason,
            "exit_code": self.k6.exit_code,
            "thresholds_crossed": self.k6.thresholds_crossed, "thresholds": self.k6.thresholds(),
            "target_rate": self.target_rate, "achieved_rate": self.achieved_rate, "seconds": self.seconds,
            "totals": self.totals(),
            "fingerprint": self.fingerprint, "operations": self.operations.to_dict(orient="records"),
            "errors": self.errors, "rows_written": self.rows_written, "writes": self.writes,
            "contention": self.contention.to_json() if self.contention is not None else None,
            "window": {"start_ms": self.ingested.first_ms, "end_ms": self.ingested.last_ms},
            "files": {
                "samples": str(self.k6.samples_path), "summary": str(self.k6.summary_path),
                "requests": str(self.ingested.requests_path), "operations": str(self.ingested.operations_path),
                "timeseries": str(self.ingested.timeseries_path),
            },
        }


def fingerprint(*, profile: LoadProfile, dataset_hash: str, target_url: str, image: str | None) -> dict:
    """What must be equal for two runs to be comparable."""
    return {
        "k6_version": k6_version(),
        "scripts_hash": scripts_hash(),
        "dataset_hash": dataset_hash,
        "target_version": target_version(target_url),
        "image": image or "unknown",
        "load_profile": profile.to_json(),
    }


def run_load_test(
    *,
    runner: K6Runner,
    target_url: str,
    identities_path: Path,
    profile: LoadProfile,
    out_dir: Path,
    dataset_hash: str,
    image: str | None = None,
    tags: dict[str, str] | None = None,
    extra_env: dict[str, str] | None = None,
    log: Callable[[str], None] = lambda _m: None,
    on_interrupt: Callable[[LoadTestResult], None] | None = None,
    contention_client=None,
) -> LoadTestResult:
    """Runs k6 with `profile`, ingests its samples into `out_dir` and writes `result.json` there.

    For `roster_contention` with a `contention_client` (a target_api GraphQLClient with the API key), the
    rosters are then read back and compared with the acknowledged adds (`check_contention_run`):
    `contention.json` in `out_dir`, and `LoadTestResult.contention` (its `line()` for a person: the caller
    says it, e.g. `ult run` as its last line).
    """
    fp = fingerprint(profile=profile, dataset_hash=dataset_hash, target_url=target_url, image=image)

    def finish(k6_result: K6RunResult) -> LoadTestResult:
        result = LoadTestResult(k6_result, ingest(k6_result.samples_path, out_dir), profile, fp)
        if contention_client is not None and profile.scenario == "roster_contention":
            try:
                result = check_contention_run(result, contention_client)
            except Exception as err:
                if not result.interrupted:
                    raise
                # A partial run's results are kept even when the rosters cannot be read (the target died).
                log(f"roster_contention: the rosters could not be read back: {type(err).__name__}: {err}")
        (out_dir / "result.json").write_text(
            json.dumps(json_safe(result.to_json()), indent=2, default=str, allow_nan=False))
        return result

    def interrupted(k6_result: K6RunResult) -> None:
        partial = finish(k6_result)
        # The caller's code after run_load_test never runs on an interruption: say here what was kept.
        log(partial.interrupted_report(out_dir))
        if on_interrupt is not None:
            on_interrupt(partial)

    k6_result = runner.run(
        target_url=target_url, identities_path=identities_path, profile=profile, out_dir=out_dir,
        tags=tags, extra_env=extra_env, log=log, on_interrupt=interrupted,
    )
    result = finish(k6_result)
    if result.interrupted:  # k6 killed from outside, or its file cut: the caller gets a partial result
        log(result.interrupted_report(out_dir))
    return result


def check_contention_run(result: LoadTestResult, client) -> LoadTestResult:
    """The roster_contention integrity check of a finished run (contention.check_contention on its samples,
    with the write errors ingest counted, rosters read through `client`); `contention.json` is written
    beside the samples. Returns the result with `contention` set."""
    checked = contention_check.check_contention(result.k6.samples_path, client, errors=result.ingested.errors)
    return replace(result, contention=checked)
