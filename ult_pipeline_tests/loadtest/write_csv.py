"""Writes small k6 1.1.0 CSV outputs (gzip, unix_milli) of write runs, row by row, as the suite emits them:
request metadata `request`, the tag `writer` on batched requests, `graphql_errors` tagged `error_code`,
`rows_written` and `roster_adds_acknowledged`."""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from pathlib import Path

from ult_pipeline_tests.loadtest.k6_csv import HEADER

URL = "http://127.0.0.1:18080/user/"
_HTTP = ("http_reqs", "http_req_duration", "http_req_waiting", "http_req_failed")


def _row(metric: str, t: int, value: float, *, error_code: str = "", expected: str = "", status: str = "",
         scenario: str = "roster_contention", tags: str = "", metadata: str = "", name: str = "", method: str = "",
         url: str = "") -> str:
    return (f"{metric},{t},{value:.6f},,,{error_code},{expected},,{method},{name},{'HTTP/1.1' if method else ''},"
            f"{scenario},,{status},,,{url},{tags},{metadata}\n")


@dataclass
class WriteRun:
    """Rows of one synthetic run; `requests` of each operation: (duration_ms, failed) in order."""

    scenario: str = "roster_contention"
    t: int = 1_795_000_000_000
    lines: list[str] = field(default_factory=lambda: [HEADER])
    seq: int = 0

    def request(self, operation: str, duration_ms: float, *, status: int = 200, graphql_error: str | None = None,
                rows: int = 0, writer: int | None = None, request_id: str | None = None) -> str:
        """One request and its samples; returns its request id (the metadata)."""
        if request_id is None:
            self.seq += 1
            request_id = f"1.{self.seq}"
        self.t += 5
        meta = f"request={request_id}"
        tags = f"operation={operation}" + (f"&writer={writer}" if writer is not None else "")
        expected = "true" if status == 200 else "false"
        k6_code = "1212" if status == 0 else ""
        for metric in _HTTP:
            value = duration_ms if metric in ("http_req_duration", "http_req_waiting") else (
                float(status != 200) if metric == "http_req_failed" else 1.0)
            self.lines.append(_row(metric, self.t, value, error_code=k6_code, expected=expected, status=str(status),
                                   scenario=self.scenario, tags=tags, metadata=meta, name=operation, method="POST",
                                   url=URL))
        if status == 200:
            failed = graphql_error is not None
            self.lines.append(_row("graphql_errors", self.t + 1, float(failed), error_code=graphql_error or "",
                                   scenario=self.scenario, tags=tags, metadata=meta))
            self.lines.append(_row("checks", self.t + 1, float(not failed), scenario=self.scenario, tags=tags,
                                   metadata=meta))
            if not failed and rows:
                self.lines.append(_row("rows_written", self.t + 1, float(rows), scenario=self.scenario,
                                       tags=f"operation={operation}", metadata=meta))
        return request_id

    def late_graphql_error(self, operation: str, request_id: str, code: str, writer: int | None = None) -> None:
        """A graphql_errors sample written long after its request (another block of the file)."""
        tags = f"operation={operation}" + (f"&writer={writer}" if writer is not None else "")
        self.lines.append(_row("graphql_errors", self.t + 2, 1.0, error_code=code, scenario=self.scenario, tags=tags,
                               metadata=f"request={request_id}"))

    def acknowledged(self, class_id: str, student_id: str, error_code: str | None = None) -> None:
        value = 0.0 if error_code else 1.0
        tags = f"class_id={class_id}&student_id={student_id}"
        self.lines.append(_row("roster_adds_acknowledged", self.t + 1, value, error_code=error_code or "",
                               scenario=self.scenario, tags=tags))

    def iteration(self) -> None:
        self.lines.append(_row("iterations", self.t + 2, 1.0, scenario=self.scenario))

    def write(self, path: Path) -> Path:
        with gzip.open(path, "wt", newline="") as f:
            f.write("".join(self.lines))
        return path
