"""The guarded wipe of the target's database, through a direct PostgreSQL connection.

Both strategies check the load-test marker inside the transaction that wipes, so a
refused wipe changes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import psycopg
from psycopg import sql

from ult_pipeline.target_db import marker

RECREATE, IN_PLACE = "recreate", "in_place"
STRATEGIES = (RECREATE, IN_PLACE)
_PROTECTED_SCHEMAS = {marker.MARKER_SCHEMA, "pg_catalog", "information_schema", "pg_toast"}


class WipeError(RuntimeError):
    pass


@dataclass(frozen=True)
class WipeResult:
    strategy: str
    environment: str
    seconds: float
    restart_seconds: float


def default_in_place_sql() -> Path:
    return Path(str(resources.files("ult_pipeline.target_db") / "sql" / "user_service_in_place.sql"))


def wipe(
    dsn: str,
    environment: str,
    *,
    strategy: str = RECREATE,
    db_schema: str = "public",
    sql_file: Path | None = None,
    restart_service: Callable[[], None] | None = None,
    lock_timeout_s: int = 15,
) -> WipeResult:
    """Wipe the database behind ``dsn`` if and only if it is marked for ``environment``.

    ``recreate`` drops and recreates ``db_schema``, then calls ``restart_service`` (the
    service migrates and recreates its system data on boot); ``in_place`` runs ``sql_file``
    (default: the shipped user-service script) and the service may keep running.
    """
    if strategy not in STRATEGIES:
        raise WipeError(f"unknown wipe strategy {strategy!r}; use one of {', '.join(STRATEGIES)}")
    if strategy == RECREATE and db_schema in _PROTECTED_SCHEMAS:
        raise WipeError(f"refusing to drop schema {db_schema!r}: it is not the service's schema")
    if strategy == RECREATE and restart_service is None:
        raise WipeError(
            "the recreate wipe needs a way to restart the service (it recreates its system data on boot); "
            "use the in_place strategy, or run it from the pipeline or the sandbox"
        )
    script = None
    if strategy == IN_PLACE:
        path = sql_file or default_in_place_sql()
        try:
            script = Path(path).read_text(encoding="utf-8")
        except OSError as err:
            raise WipeError(f"cannot read the in-place wipe SQL file {path}: {err.strerror}") from None

    started = time.perf_counter()
    try:
        with psycopg.connect(dsn, autocommit=False, connect_timeout=10) as conn:
            conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(f"{lock_timeout_s}s")))
            database = conn.info.dbname
            marker.require(conn, environment, database)
            if strategy == RECREATE:
                ident = sql.Identifier(db_schema)
                conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(ident))
                conn.execute(sql.SQL("CREATE SCHEMA {}").format(ident))
            else:
                conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(db_schema)))
                conn.execute(script)
            conn.commit()
    except psycopg.OperationalError as err:
        raise WipeError(f"cannot reach the target database to wipe it: {without_password(str(err))}") from None
    except psycopg.errors.LockNotAvailable:
        raise WipeError(
            f"the wipe waited {lock_timeout_s} s for a lock: something holds the tables "
            "(a long transaction of the service?); nothing was changed"
        ) from None
    wiped = time.perf_counter()
    if strategy == RECREATE:
        restart_service()
    return WipeResult(strategy, environment, wiped - started, time.perf_counter() - wiped)


def without_password(message: str) -> str:
    # libpq messages name host and port, not the password; still, never echo a DSN.
    return message.splitlines()[0] if message else message
