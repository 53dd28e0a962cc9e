"""Embedded PostgreSQL from the `pgserver` package, kept in a state folder.

pgserver stops its server when the Python process that started it exits; the sandbox
must outlive `ult sandbox up`, so the server is started without cleanup and stopped
explicitly by `stop()`.
"""

from __future__ import annotations

import logging
import os
import platform
import subprocess
import warnings
from pathlib import Path

import psutil

log = logging.getLogger(__name__)


class EmbeddedPostgresError(RuntimeError):
    pass


def _pgserver():
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, cron); its /tmp fallback is fine.
        warnings.simplefilter("ignore")
        import pgserver
    return pgserver


def _system_user() -> str | None:
    # pgserver refuses to run postgres as root and runs it as this user instead.
    if platform.system() != "Windows" and os.geteuid() == 0:
        return "pgserver"
    return None


def _postmaster_pid(pgdata: Path) -> int | None:
    pid_file = pgdata / "postmaster.pid"
    try:
        return int(pid_file.read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None


def is_running(pgdata: Path) -> bool:
    pid = _postmaster_pid(pgdata)
    if pid is None or not psutil.pid_exists(pid):
        return False
    try:
        return psutil.Process(pid).name() == "postgres"
    except psutil.Error:
        return False


def _remove_stale_pid_file(pgdata: Path) -> None:
    # A killed session can leave postmaster.pid naming a pid that now belongs to some
    # other process; postgres would then refuse to start. Only remove it when the pid
    # is not a postgres.
    pid_file = pgdata / "postmaster.pid"
    if pid_file.exists() and not is_running(pgdata):
        log.info("removing stale %s", pid_file)
        pid_file.unlink()


def start(pgdata: Path) -> str:
    """Start (or reuse) the server in ``pgdata`` and return its DSN."""
    pgserver = _pgserver()
    pgdata = Path(pgdata)
    pgdata.mkdir(parents=True, exist_ok=True)
    _remove_stale_pid_file(pgdata)
    try:
        server = pgserver.get_server(pgdata, cleanup_mode=None)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, AssertionError) as err:
        log_tail = _log_tail(pgdata / "log")
        raise EmbeddedPostgresError(
            f"embedded PostgreSQL did not start in {pgdata}: {err}\n{log_tail}\n"
            "If the folder is damaged, remove it (`ult sandbox down --purge`) and start again."
        ) from err
    return server.get_uri()


def stop(pgdata: Path, timeout: float = 30) -> bool:
    """Stop the server in ``pgdata``; False when none was running."""
    pgdata = Path(pgdata)
    if not is_running(pgdata):
        return False
    try:
        _pgserver().pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=_system_user(), timeout=timeout)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
        pid = _postmaster_pid(pgdata)
        if pid is not None:
            psutil.Process(pid).kill()
    return True


def _log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
