"""Stopping a child that runs in a session (process group) of its own."""

from __future__ import annotations

import os
import signal
import subprocess


def stop_group(proc: subprocess.Popen, first_signal: int = signal.SIGTERM, grace_s: float = 10.0) -> None:
    """Send ``first_signal`` to the child's whole group, wait ``grace_s``, then SIGKILL what is left."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, first_signal)
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass
