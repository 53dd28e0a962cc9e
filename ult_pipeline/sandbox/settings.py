"""Sandbox settings, read from the environment when asked for (never at import)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from ult_pipeline.settings import setting

DEFAULT_HOME = Path("~/.ult/sandbox")
DEFAULT_PORT = 18080
DEFAULT_AWS_PORT = 18500
STATE_FILE = "sandbox.json"


def _recorded_ports(home: Path) -> dict[str, int]:
    """{"service": port, "aws": port} of the sandbox running in `home` (its state file), as far as recorded."""
    try:
        state = json.loads((home / STATE_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return {name: int(entry["port"]) for name, entry in state.items()
            if name in ("service", "aws") and isinstance(entry, dict) and entry.get("port")}


def _port(env, name: str, fallback: int) -> int:
    value = setting(env, name)
    if value is None:
        return fallback
    try:
        port = int(value)
    except ValueError:
        port = 0
    if not 0 < port < 65536:
        raise ValueError(f"${name}={value!r} is not a port (a whole number from 1 to 65535)")
    return port


@dataclass(frozen=True)
class SandboxSettings:
    home: Path
    port: int
    # An outside PostgreSQL to use instead of the embedded one; None: embedded.
    external_dsn: str | None
    db_schema: str = "public"
    environment: str = "sandbox"
    aws_port: int = DEFAULT_AWS_PORT

    @classmethod
    def from_env(cls, *, home: str | None = None, port: int | None = None, aws_port: int | None = None) -> SandboxSettings:
        """Ports: the argument, else the environment, else the ports of the sandbox running in this home
        (so `ult run` after `ult sandbox up --port N` keeps N, also across a recreate wipe), else the default.

        Raises ValueError naming the variable when a port in the environment is not a whole number.
        """
        env = os.environ
        home_path = Path(home or setting(env, "ULT_SANDBOX_HOME")).expanduser().resolve()
        recorded = _recorded_ports(home_path)
        return cls(
            home=home_path,
            port=port if port is not None else _port(env, "ULT_SANDBOX_PORT", recorded.get("service", DEFAULT_PORT)),
            external_dsn=setting(env, "ULT_SANDBOX_DSN"),
            aws_port=aws_port if aws_port is not None else _port(env, "ULT_SANDBOX_AWS_PORT",
                                                                 recorded.get("aws", DEFAULT_AWS_PORT)),
        )

    @property
    def pgdata(self) -> Path:
        return self.home / "pgdata"

    @property
    def state_file(self) -> Path:
        return self.home / STATE_FILE

    @property
    def api_key_file(self) -> Path:
        return self.home / "api_key"

    @property
    def service_log(self) -> Path:
        return self.home / "service.log"

    @property
    def aws_log(self) -> Path:
        return self.home / "moto.log"
