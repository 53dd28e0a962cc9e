"""Processes that run in a session (process group) of their own: finding and stopping them."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import psutil


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


def is_running(pid: int | None, marker: str) -> bool:
    """``pid`` is alive and its command line contains ``marker`` (so a reused pid is not ours).

    A zombie (our own child, not reaped yet) counts as gone.
    """
    if not pid:
        return False
    try:
        proc = psutil.Process(pid)
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE and marker in " ".join(proc.cmdline())
    except psutil.Error:
        return False


def stop_pid_group(pid: int | None, marker: str, timeout: float = 10.0) -> bool:
    """SIGTERM the group of a process started earlier (perhaps by another process), SIGKILL after
    ``timeout``; wait until it is gone. False when it was not running."""
    if not is_running(pid, marker):
        return False
    assert pid is not None
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    killed = False
    # Poll rather than psutil's wait(), which would not see a zombie as gone.
    while is_running(pid, marker):
        if time.monotonic() > deadline and not killed:
            os.killpg(pid, signal.SIGKILL)
            killed = True
        time.sleep(0.02)
    return True


def processes_mentioning(marker: str) -> list[psutil.Process]:
    """This user's live processes whose command line or environment contains ``marker`` (e.g. a state
    folder), leaving out this process and its ancestors (the shell or wrapper that started us)."""
    me = psutil.Process()
    spared = {me.pid, *(p.pid for p in me.parents())}
    found = []
    for proc in psutil.process_iter(["pid", "uids", "cmdline", "status"]):
        info = proc.info
        if info["pid"] in spared or info["status"] == psutil.STATUS_ZOMBIE:
            continue
        if info["uids"] is None or info["uids"].real != me.uids().real:
            continue
        try:
            if marker in " ".join(info["cmdline"] or ()) or any(marker in v for v in proc.environ().values()):
                found.append(proc)
        except psutil.Error:  # gone meanwhile, or not ours to read
            continue
    return found


def stop_processes(procs: list[psutil.Process], grace_s: float = 10.0) -> list[int]:
    """SIGTERM each of ``procs``, wait up to ``grace_s`` seconds, SIGKILL the rest; returns the pids signalled."""
    signalled = []
    for proc in procs:
        try:
            proc.terminate()
            signalled.append(proc.pid)
        except psutil.Error:
            continue
    _, alive = psutil.wait_procs(procs, timeout=grace_s)
    for proc in alive:
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=grace_s)
    return signalled
