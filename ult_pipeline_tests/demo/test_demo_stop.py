"""`ult demo` stopped by SIGTERM (as `timeout` or a CI cancel sends it) while it starts: exit 143 and
nothing it started is left running or holding its ports."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from ult_pipeline_tests.conftest import free_port

pytestmark = pytest.mark.timeout(600)


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def _naming(marker: str, spared: set[int]) -> list[str]:
    """Processes (but ``spared``) whose command line or environment names ``marker``, as 'pid cmdline'."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        if proc.info["pid"] in spared or proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        try:
            cmdline = " ".join(proc.info["cmdline"] or ())
            if marker in cmdline or any(marker in v for v in proc.environ().values()):
                found.append(f"{proc.pid} {cmdline}")
        except psutil.Error:
            continue
    return found


@pytest.mark.slow
def test_ult_demo_stopped_by_sigterm_while_starting_leaves_nothing_running():
    # Short path: PostgreSQL's Unix socket path has a length limit.
    home = Path(tempfile.mkdtemp(prefix="ult-demo-stop-")) / "home"
    ports = {"ui": free_port(), "service": free_port(), "aws": free_port()}
    out_path = home.parent / "out.txt"
    with open(out_path, "w") as out:
        demo = subprocess.Popen(
            [sys.executable, "-m", "ult_pipeline.cli", "demo", "--duration", "10s", "--profile", "tiny",
             "--home", str(home), "--ui-port", str(ports["ui"]), "--service-port", str(ports["service"]),
             "--aws-port", str(ports["aws"]), "--run-timeout", "120"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
    spared = {psutil.Process().pid, *(p.pid for p in psutil.Process().parents())}
    try:
        # Once the sandbox is up, Dagster is starting (or just started): the stop must catch both.
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and demo.poll() is None and "sandbox:" not in out_path.read_text():
            time.sleep(0.2)
        assert "sandbox:" in out_path.read_text(), out_path.read_text()
        started = _naming(str(home) + "/", spared)
        assert started, "the demo started nothing that names its home: the check below would prove nothing"
        demo.send_signal(signal.SIGTERM)
        code = demo.wait(240)
        printed = out_path.read_text()
        assert code == 143, printed
        assert "stopped by SIGTERM" in printed and "Aborted" not in printed, printed

        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and (_naming(str(home) + "/", spared)
                                               or not all(_port_free(p) for p in ports.values())):
            time.sleep(0.2)
        assert _naming(str(home) + "/", spared) == [], printed
        assert {name: _port_free(port) for name, port in ports.items()} == dict.fromkeys(ports, True), printed
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait(30)
        # Whatever a failed stop left: never let it outlive the test.
        for proc in psutil.process_iter():
            try:
                if f"{home}/" in " ".join(proc.cmdline()) or any(
                        f"{home}/" in v for v in proc.environ().values()):
                    if proc.pid not in spared:
                        proc.kill()
            except psutil.Error:
                continue
        shutil.rmtree(home.parent, ignore_errors=True)
