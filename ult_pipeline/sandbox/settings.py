"""Sandbox settings, read from the environment when asked for (never at import)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_HOME = Path("~/.ult/sandbox")
DEFAULT_PORT = 18080
DEFAULT_AWS_PORT = 18500


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
        home_path = Path(home or os.environ.get("ULT_SANDBOX_HOME") or DEFAULT_HOME).expanduser()
        return cls(
            home=home_path.resolve(),
            port=port if port is not None else int(os.environ.get("ULT_SANDBOX_PORT", DEFAULT_PORT)),
            external_dsn=os.environ.get("ULT_SANDBOX_DSN") or None,
            aws_port=aws_port if aws_port is not None else int(os.environ.get("ULT_SANDBOX_AWS_PORT", DEFAULT_AWS_PORT)),
        )

    @property
    def pgdata(self) -> Path:
        return self.home / "pgdata"

    @property
    def state_file(self) -> Path:
        return self.home / "sandbox.json"

    @property
    def api_key_file(self) -> Path:
        return self.home / "api_key"

    @property
    def service_log(self) -> Path:
        return self.home / "service.log"

    @property
    def aws_log(self) -> Path:
        return self.home / "moto.log"
