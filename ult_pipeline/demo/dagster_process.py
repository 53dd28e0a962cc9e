"""Dagster's webserver and daemon (`dagster dev`), started in a session of their own.

Started from a non-interactive shell, `dagster dev` ignores SIGINT and SIGTERM unless it
gets default signal handlers and its own session; then stopping its group stops it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests
import yaml

from ult_pipeline.processes import stop_group
from ult_pipeline.shipped import shipped


class DagsterStartError(RuntimeError):
    pass


def write_local_instance_yaml(dagster_home: Path) -> Path:
    """The project's dagster.yaml (no outside storage: local history in SQLite under dagster_home)."""
    config = yaml.safe_load(shipped("dagster.yaml").read_text())
    config.pop("storage", None)
    dagster_home.mkdir(parents=True, exist_ok=True)
    path = dagster_home / "dagster.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _default_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def start(dagster_home: Path, port: int, env: dict[str, str], log_path: Path, timeout: float = 90) -> subprocess.Popen:
    dagster = Path(sys.executable).parent / "dagster"
    cmd = [str(dagster), "dev", "-h", "127.0.0.1", "-p", str(port), "-w", str(shipped("workspace.yaml"))]
    # The demo's pipeline targets the sandbox, whatever the caller's shell says (production's default is ecs).
    full_env = {**os.environ, **env, "ULT_TARGET_MODE": "sandbox", "DAGSTER_HOME": str(dagster_home)}
    with open(log_path, "ab") as log_file:
        proc = subprocess.Popen(
            cmd, cwd=shipped("workspace.yaml").parent, env=full_env, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, preexec_fn=_default_signals,
        )
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise DagsterStartError(f"dagster dev exited with code {proc.returncode}; see {log_path}")
            try:
                if requests.get(f"http://127.0.0.1:{port}/server_info", timeout=2).status_code == 200:
                    return proc
            except requests.RequestException:
                pass
            time.sleep(0.5)
        raise DagsterStartError(f"the Dagster UI did not answer on port {port} within {timeout:.0f} s; see {log_path}")
    except BaseException:
        # A failed start, or a stop (Ctrl-C, SIGTERM) while waiting: the caller never gets `proc` to stop.
        stop(proc)
        raise


def stop(proc: subprocess.Popen, timeout: float = 30) -> None:
    stop_group(proc, signal.SIGTERM, timeout)
