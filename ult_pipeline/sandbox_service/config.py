"""The service's settings, fixed at start."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from ult_pipeline.secrets import mask_dsn

from .knobs import ROSTER_WRITES_CHOICES, ROSTER_WRITES_LOCKED

# Schema names go into `search_path` and DDL; only plain identifiers are accepted.
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# Another component keeps its load-test marker there; the service must never touch it.
RESERVED_SCHEMAS = frozenset({"ult_loadtest", "pg_catalog", "information_schema"})


def redact_dsn(dsn: str) -> str:
    """The DSN with any password replaced, safe for logs and reprs (the project's one masking rule)."""
    return mask_dsn(dsn)


def validate_schema_name(name: str) -> str:
    if not _SCHEMA_NAME.match(name):
        raise ValueError(f"invalid db schema name {name!r}: use lower-case letters, digits, _")
    if name in RESERVED_SCHEMAS:
        raise ValueError(f"db schema {name!r} is reserved and may not be used by the service")
    return name


@dataclass(frozen=True)
class ServiceConfig:
    dsn: str = field(repr=False)
    api_key: str = field(repr=False)
    db_schema: str = "public"
    latency_ms: Mapping[str, float] = field(default_factory=dict)
    latency_pct: Mapping[str, float] = field(default_factory=dict)
    no_telemetry: frozenset[str] = frozenset()
    pool_size: int = 10
    version: str = "4.5.0"
    # "locked" (safe) or "unlocked" (4.5.0's lost roster writes); see knobs.py.
    roster_writes: str = ROSTER_WRITES_LOCKED

    def __post_init__(self) -> None:
        if not self.api_key:
            raise ValueError("api_key must not be empty")
        validate_schema_name(self.db_schema)
        if self.pool_size < 1:
            raise ValueError("pool_size must be at least 1")
        if self.roster_writes not in ROSTER_WRITES_CHOICES:
            raise ValueError(f"roster_writes must be one of {', '.join(ROSTER_WRITES_CHOICES)}, got {self.roster_writes!r}")
        # Frozen means frozen: copies that nobody can mutate after start.
        object.__setattr__(self, "latency_ms", MappingProxyType(dict(self.latency_ms)))
        object.__setattr__(self, "latency_pct", MappingProxyType(dict(self.latency_pct)))
        object.__setattr__(self, "no_telemetry", frozenset(self.no_telemetry))

    def __repr__(self) -> str:
        return (
            f"ServiceConfig(dsn={redact_dsn(self.dsn)!r}, api_key='***', "
            f"db_schema={self.db_schema!r}, latency_ms={dict(self.latency_ms)!r}, "
            f"latency_pct={dict(self.latency_pct)!r}, no_telemetry={set(self.no_telemetry)!r}, "
            f"pool_size={self.pool_size!r}, version={self.version!r}, roster_writes={self.roster_writes!r})"
        )

    __str__ = __repr__
