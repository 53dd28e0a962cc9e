"""`ult sandbox up|down|status`: the embedded PostgreSQL and the sandbox service.

What `up` started is written to a state file in the sandbox home, so that `down` stops
exactly that and nothing else, and a state left by a killed session is recovered. The state
file holds the database's DSN (an outside one may carry a password) and the API key file the
service's key: both are readable by their owner only.
"""

from __future__ import annotations

import json
import secrets
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ult_pipeline import processes
from ult_pipeline.sandbox import aws, postgres, service_process
from ult_pipeline.sandbox.service_process import ServiceKnobs
from ult_pipeline.sandbox.settings import SandboxSettings
from ult_pipeline.secrets import create_private, mask_dsn, write_private


@dataclass(frozen=True)
class SandboxStatus:
    url: str
    base_url: str
    api_key: str
    dsn: str
    postgres: str
    postgres_running: bool
    service_pid: int | None
    service_healthy: bool
    aws_endpoint: str
    aws_running: bool
    home: str
    # The running service's knobs (latency, telemetry, roster writes) as `ServiceKnobs.to_json` gives them.
    knobs: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        """Every field; `dsn` as is (it may carry a password): for code that connects, not for printing."""
        return asdict(self)

    def to_public_json(self) -> dict:
        """Every field with the DSN's password masked: what `ult sandbox status --json` prints.

        The API key stays: scripts read it from there (it is the sandbox's own, made per home)."""
        return {**asdict(self), "dsn": mask_dsn(self.dsn)}


def _read_state(settings: SandboxSettings) -> dict:
    try:
        return json.loads(settings.state_file.read_text())
    except (OSError, ValueError):
        return {}


def _write_state(settings: SandboxSettings, state: dict) -> None:
    # 0600 through a fresh temporary file: an outside DSN's password is in there, and a planted
    # `sandbox.tmp` (or a symlink) must not decide the mode or where the content goes.
    write_private(settings.state_file, json.dumps(state, indent=2))


def api_key(settings: SandboxSettings) -> str:
    """The sandbox's API key: made once per sandbox home, readable only by its owner."""
    path = settings.api_key_file
    if path.exists():
        return path.read_text().strip()
    key = "sandbox-" + secrets.token_urlsafe(24)
    # Exclusive: when another `up` got there first, its key wins.
    if not create_private(path, key):
        key = path.read_text().strip()
    return key


def _start_postgres(settings: SandboxSettings) -> tuple[str, bool]:
    if settings.external_dsn:
        return settings.external_dsn, False
    return postgres.start(settings.pgdata), True


def up(settings: SandboxSettings, knobs: ServiceKnobs | None = None, *, restart: bool = False,
       with_aws: bool = True) -> SandboxStatus:
    """Start whatever is not running yet; idempotent. ``with_aws=False`` leaves moto as it is."""
    state = _read_state(settings)
    dsn, managed = _start_postgres(settings)
    state["postgres"] = {"managed": managed, "dsn": dsn, "pgdata": str(settings.pgdata) if managed else None}
    _write_state(settings, state)
    from ult_pipeline.target_db import marker

    marker.ensure_marked(dsn, settings.environment, marked_by="ult sandbox up")
    if with_aws:
        _ensure_aws(settings, state)

    service = state.get("service") or {}
    pid = service.get("pid")
    alive = service_process.is_service_process(pid) and service.get("port") == settings.port
    if alive and restart:
        service_process.stop(pid)
        alive = False
    if alive and service_process.is_healthy(settings.port):
        return status(settings)
    if service_process.is_service_process(pid):
        service_process.stop(pid)
    knobs = knobs if knobs is not None else ServiceKnobs.from_json(service.get("knobs"))
    pid = service_process.start(
        port=settings.port, dsn=dsn, api_key=api_key(settings), log_path=settings.service_log,
        db_schema=settings.db_schema, knobs=knobs,
    )
    state["service"] = {"pid": pid, "port": settings.port, "knobs": knobs.to_json()}
    _write_state(settings, state)
    return status(settings)


def _ensure_aws(settings: SandboxSettings, state: dict) -> None:
    moto = state.get("aws") or {}
    if _pid_alive(moto.get("pid")) and moto.get("port") == settings.aws_port and aws.is_up(settings.aws_port):
        return
    _stop_pid(moto.get("pid"))
    pid = aws.start(settings.aws_port, settings.aws_log)
    state["aws"] = {"pid": pid, "port": settings.aws_port}
    _write_state(settings, state)


_MOTO = "moto_server"


def _pid_alive(pid: int | None) -> bool:
    return processes.is_running(pid, _MOTO)


def _stop_pid(pid: int | None) -> bool:
    return processes.stop_pid_group(pid, _MOTO)


def restart_service(settings: SandboxSettings, knobs: ServiceKnobs | None = None) -> SandboxStatus:
    """Restart the service only (a recreate wipe, a deploy): moto, and the images pushed to it, stay."""
    return up(settings, knobs, restart=True, with_aws=False)


def down(settings: SandboxSettings, *, purge: bool = False) -> list[str]:
    """Stop what `up` started; returns what was stopped."""
    state = _read_state(settings)
    stopped: list[str] = []
    service = state.get("service") or {}
    if service_process.stop(service.get("pid")):
        stopped.append(f"sandbox service (pid {service['pid']})")
    moto = state.get("aws") or {}
    if _stop_pid(moto.get("pid")):
        stopped.append(f"moto_server (pid {moto['pid']})")
    state.pop("aws", None)
    pg = state.get("postgres") or {}
    if pg.get("managed") and pg.get("pgdata") and postgres.stop(Path(pg["pgdata"])):
        stopped.append(f"embedded PostgreSQL ({pg['pgdata']})")
    state.pop("service", None)
    if purge and settings.home.exists():
        shutil.rmtree(settings.home)
    elif settings.home.exists():
        _write_state(settings, state)
    return stopped


def status(settings: SandboxSettings) -> SandboxStatus:
    state = _read_state(settings)
    pg = state.get("postgres") or {}
    service = state.get("service") or {}
    pid = service.get("pid")
    port = service.get("port", settings.port)
    alive = service_process.is_service_process(pid)
    managed = pg.get("managed", not settings.external_dsn)
    base = service_process.base_url(port)
    return SandboxStatus(
        url=f"{base}/",
        base_url=base,
        api_key=api_key(settings) if settings.api_key_file.exists() else "",
        dsn=pg.get("dsn") or settings.external_dsn or "",
        postgres="embedded" if managed else "external",
        postgres_running=postgres.is_running(settings.pgdata) if managed else bool(settings.external_dsn),
        service_pid=pid if alive else None,
        service_healthy=alive and service_process.is_healthy(port),
        aws_endpoint=aws.endpoint((state.get("aws") or {}).get("port", settings.aws_port)),
        aws_running=_pid_alive((state.get("aws") or {}).get("pid")),
        home=str(settings.home),
        knobs=service.get("knobs") or {},
    )
