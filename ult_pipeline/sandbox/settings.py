"""Sandbox settings, read from the environment when asked for (never at import)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_HOME = Path("~/.ult/sandbox")
DEFAULT_PORT = 18080


@dataclass(frozen=True)
class SandboxSettings:
    home: Path
    port: int
    # An outside PostgreSQL to use instead of the embedded one; None: embedded.
    external_dsn: str | None
    db_schema: str = "public"
    environment: str = "sandbox"

    @classmethod
    def from_env(cls, *, home: str | None = None, port: int | None = None) -> SandboxSettings:
        home_path = Path(home or os.environ.get("ULT_SANDBOX_HOME") or DEFAULT_HOME).expanduser()
        return cls(
            home=home_path.resolve(),
            port=port if port is not None else int(os.environ.get("ULT_SANDBOX_PORT", DEFAULT_PORT)),
            external_dsn=os.environ.get("ULT_SANDBOX_DSN") or None,
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
