"""Start and stop the sandbox user-service as a process of its own.

The service runs in its own session so that `ult sandbox up` can return while it keeps
serving, and so that stopping it stops exactly its process group and nothing else.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from ult_pipeline import processes

_MODULE = "ult_pipeline.sandbox_service"


class ServiceStartError(RuntimeError):
    pass


@dataclass(frozen=True)
class ServiceKnobs:
    """Demo knobs, fixed when the service starts: a slower build, missing telemetry, and how
    roster writes are made (`roster_writes`: "locked", the default, or "unlocked", the real
    service 4.5.0's lost roster writes; see ult_pipeline/sandbox_service/knobs.py)."""

    latency_ms: dict[str, float] = field(default_factory=dict)
    latency_pct: dict[str, float] = field(default_factory=dict)
    no_telemetry: frozenset[str] = frozenset()
    roster_writes: str = "locked"

    def to_args(self) -> list[str]:
        args: list[str] = []
        for op, ms in sorted(self.latency_ms.items()):
            args += ["--latency-ms", f"{op}={ms:g}"]
        for op, pct in sorted(self.latency_pct.items()):
            args += ["--latency-pct", f"{op}={pct:g}"]
        for op in sorted(self.no_telemetry):
            args += ["--no-telemetry", op]
        if self.roster_writes != "locked":
            args += ["--roster-writes", self.roster_writes]
        return args

    def to_json(self) -> dict:
        data: dict = {
            "latency_ms": dict(self.latency_ms),
            "latency_pct": dict(self.latency_pct),
            "no_telemetry": sorted(self.no_telemetry),
        }
        # Added later: left out at its default, so the JSON (an image's annotation) of every
        # earlier build stays the same.
        if self.roster_writes != "locked":
            data["roster_writes"] = self.roster_writes
        return data

    @classmethod
    def from_json(cls, data: dict | None) -> ServiceKnobs:
        data = data or {}
        return cls(
            latency_ms={k: float(v) for k, v in data.get("latency_ms", {}).items()},
            latency_pct={k: float(v) for k, v in data.get("latency_pct", {}).items()},
            no_telemetry=frozenset(data.get("no_telemetry", [])),
            roster_writes=str(data.get("roster_writes", "locked")),
        )


def base_url(port: int) -> str:
    return f"http://127.0.0.1:{port}/user"


def is_service_process(pid: int | None) -> bool:
    """True when ``pid`` is alive and is a sandbox service (not a reused pid)."""
    return processes.is_running(pid, _MODULE)


def is_healthy(port: int, timeout: float = 1.0) -> bool:
    try:
        response = requests.get(f"{base_url(port)}/health", timeout=timeout)
    except requests.RequestException:
        return False
    return response.status_code == 200 and response.json().get("status") == "pass"


def start(
    *,
    port: int,
    dsn: str,
    api_key: str,
    log_path: Path,
    db_schema: str = "public",
    knobs: ServiceKnobs | None = None,
    timeout: float = 15.0,
) -> int:
    """Start the service and wait until `/user/health` passes; returns its pid."""
    knobs = knobs or ServiceKnobs()
    if not _wait_port_free(port, 5.0):
        raise ServiceStartError(
            f"port {port} on 127.0.0.1 is already taken by another process; "
            "choose another with --port or ULT_SANDBOX_PORT"
        )
    cmd = [sys.executable, "-m", _MODULE, "--host", "127.0.0.1", "--port", str(port), "--db-schema", db_schema]
    cmd += knobs.to_args()
    # Secrets go through the environment, never the command line (visible in `ps`).
    env = {**os.environ, "ULT_SANDBOX_API_KEY": api_key, "ULT_SANDBOX_SERVICE_DSN": dsn}
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log_file:
        proc = subprocess.Popen(
            cmd, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise ServiceStartError(
                    f"the sandbox service exited with code {proc.returncode} while starting; "
                    f"last lines of {log_path}:\n{_tail(log_path)}"
                )
            if is_healthy(port):
                return proc.pid
            time.sleep(0.1)
    except BaseException:
        # Stopped (Ctrl-C, SIGTERM) before its pid was recorded anywhere: nobody could stop it later,
        # and it would hold the port.
        stop(proc.pid)
        raise
    stop(proc.pid)
    raise ServiceStartError(
        f"the sandbox service did not become healthy on port {port} within {timeout:.0f} s "
        f"(is the port taken? set --port or ULT_SANDBOX_PORT); last lines of {log_path}:\n{_tail(log_path)}"
    )


def stop(pid: int | None, timeout: float = 10.0) -> bool:
    """Stop the service's process group; False when it was not running."""
    return processes.stop_pid_group(pid, _MODULE, timeout)


def _wait_port_free(port: int, timeout: float) -> bool:
    # A service stopped a moment ago may still hold its socket while the kernel closes it.
    deadline = time.monotonic() + timeout
    while _port_taken(port):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _port_taken(port: int) -> bool:
    with socket.socket() as probe:
        # As uvicorn does: connections of a stopped server in TIME_WAIT must not count as taken.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
