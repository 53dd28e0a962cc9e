"""Writes gzip CSV in k6 1.1.0's exact `--out csv` format (K6_CSV_TIME_FORMAT=unix_milli)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

HEADER = (
    "metric_name,timestamp,metric_value,check,error,error_code,expected_response,group,method,name,proto,"
    "scenario,service,status,subproto,tls_version,url,extra_tags,metadata\n"
)
_HTTP_METRICS = (
    "http_reqs", "http_req_duration", "http_req_blocked", "http_req_connecting", "http_req_tls_handshaking",
    "http_req_sending", "http_req_waiting", "http_req_receiving", "http_req_failed",
)


def write_k6_csv(
    path: Path, requests: int, operations: list[str], *, seed: int = 0, start_ms: int = 1_795_000_000_000,
    rate_per_s: float = 176.0, error_every: int = 0, scenario: str = "student_landing", compresslevel: int = 1,
    chunk: int = 50_000, failed_ms: float | None = None, all_failed: tuple[str, ...] = (),
) -> dict[str, np.ndarray]:
    """Returns the durations written per operation (failed requests included), so tests can check exact percentiles."""
    durations, _ = write_k6_csv_with_failures(
        path, requests, operations, seed=seed, start_ms=start_ms, rate_per_s=rate_per_s, error_every=error_every,
        scenario=scenario, compresslevel=compresslevel, chunk=chunk, failed_ms=failed_ms, all_failed=all_failed,
    )
    return durations


def write_k6_csv_with_failures(
    path: Path, requests: int, operations: list[str], *, seed: int = 0, start_ms: int = 1_795_000_000_000,
    rate_per_s: float = 176.0, error_every: int = 0, scenario: str = "student_landing", compresslevel: int = 1,
    chunk: int = 50_000, failed_ms: float | None = None, all_failed: tuple[str, ...] = (),
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(durations, failed) per operation, in the order written.

    Every `error_every`-th request fails, and every request of the operations in `all_failed`.
    A failed request answers HTTP 500 after its drawn duration; with `failed_ms` it is refused
    instead, as by a dead service: status 0, lasting `failed_ms` (k6 records 0 ms).
    """
    rng = np.random.default_rng(seed)
    written: dict[str, list[np.ndarray]] = {op: [] for op in operations}
    written_failed: dict[str, list[np.ndarray]] = {op: [] for op in operations}
    url = "http://127.0.0.1:18080/user/"
    with gzip.open(path, "wt", compresslevel=compresslevel, newline="") as f:
        f.write(HEADER)
        for first in range(0, requests, chunk):
            n = min(chunk, requests - first)
            index = np.arange(first, first + n)
            times = start_ms + (index * 1000 / rate_per_s).astype(np.int64)
            ops = [operations[i % len(operations)] for i in index]
            durations = rng.lognormal(mean=1.0, sigma=0.5, size=n)
            failed = (index % error_every == error_every - 1) if error_every else np.zeros(n, dtype=bool)
            failed = failed | np.fromiter((o in all_failed for o in ops), dtype=bool, count=n)
            if failed_ms is not None:
                durations = np.where(failed, failed_ms, durations)
            lines = []
            for t, op, d, bad in zip(times.tolist(), ops, durations.tolist(), failed.tolist(), strict=True):
                status = ("0" if failed_ms is not None else "500") if bad else "200"
                expected = "false" if bad else "true"
                tail = f",{expected},,POST,{op},HTTP/1.1,{scenario},,{status},,,{url},operation={op},\n"
                for metric in _HTTP_METRICS:
                    value = d if metric == "http_req_duration" else (1.0 if bad else 0.0) if metric == "http_req_failed" else 0.1
                    lines.append(f"{metric},{t},{value:.6f},,,{tail}")
                lines.append(f"checks,{t},{0.0 if bad else 1.0:.6f},status is 200,,,,,,,,{scenario},,,,,,operation={op},\n")
                lines.append(f"data_sent,{t},412.000000,,,,,,,,,{scenario},,,,,,,\n")
                lines.append(f"data_received,{t},880.000000,,,,,,,,,{scenario},,,,,,,\n")
                lines.append(f"iteration_duration,{t},{d * 8:.6f},,,,,,,,,{scenario},,,,,,,\n")
            for i in range(0, n, len(operations)):
                lines.append(f"iterations,{int(times[i])},1.000000,,,,,,,,,{scenario},,,,,,,\n")
            f.write("".join(lines))
            for op in operations:
                mask = np.fromiter((o == op for o in ops), dtype=bool, count=n)
                written[op].append(np.round(durations[mask], 6))
                written_failed[op].append(failed[mask])
    return (
        {op: np.concatenate(parts) if parts else np.array([]) for op, parts in written.items()},
        {op: np.concatenate(parts) if parts else np.array([], dtype=bool) for op, parts in written_failed.items()},
    )
