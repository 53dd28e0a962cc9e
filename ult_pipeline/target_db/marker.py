"""The load-test marker: proof, set once by a person, that a database may be wiped.

It lives in a schema of its own, outside the service's schema, so that a `recreate`
wipe (drop the service's schema) keeps it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg

from ult_pipeline.secrets import db_error_message

MARKER_SCHEMA = "ult_loadtest"

_CREATE = f"""
CREATE SCHEMA IF NOT EXISTS {MARKER_SCHEMA};
CREATE TABLE IF NOT EXISTS {MARKER_SCHEMA}.marker (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    environment text NOT NULL,
    marked_at timestamptz NOT NULL DEFAULT now(),
    marked_by text NOT NULL
);
COMMENT ON SCHEMA {MARKER_SCHEMA} IS
    'ult-pipeline: this database belongs to a load-test environment and may be wiped by it';
"""


@dataclass(frozen=True)
class Marker:
    environment: str
    marked_at: datetime
    marked_by: str


class MarkerError(RuntimeError):
    """The database is not marked for the environment that wants to wipe it."""


class DatabaseConnectError(psycopg.OperationalError):
    """Connecting failed. The message is one line: what went wrong and the DSN with its password masked.

    A psycopg.OperationalError, so callers that catch connection failures keep working; the
    original error (whose text may quote the password) is neither chained nor shown.
    """


def connect(dsn: str, **kwargs: object) -> psycopg.Connection:
    """psycopg.connect(dsn, **kwargs), or DatabaseConnectError for an unreachable server, a refused
    login or a malformed DSN (psycopg raises ProgrammingError quoting the DSN for the last)."""
    try:
        return psycopg.connect(dsn, **kwargs)
    except psycopg.Error as err:
        raise DatabaseConnectError(db_error_message(err, dsn)) from None


def read(conn: psycopg.Connection) -> Marker | None:
    exists = conn.execute("SELECT to_regclass(%s)", (f"{MARKER_SCHEMA}.marker",)).fetchone()[0]
    if exists is None:
        return None
    row = conn.execute(f"SELECT environment, marked_at, marked_by FROM {MARKER_SCHEMA}.marker").fetchone()
    return Marker(*row) if row else None


def mark(dsn: str, environment: str, marked_by: str) -> Marker:
    """Set (or replace) the marker. Raises ValueError for an empty environment, DatabaseConnectError
    when the database cannot be reached, psycopg.Error when the server refuses the statements."""
    if not environment or not environment.strip():
        raise ValueError("the environment name must not be empty")
    with connect(dsn, autocommit=False) as conn:
        conn.execute(_CREATE)
        conn.execute(
            f"""INSERT INTO {MARKER_SCHEMA}.marker (environment, marked_by) VALUES (%s, %s)
                ON CONFLICT (singleton) DO UPDATE
                SET environment = EXCLUDED.environment, marked_by = EXCLUDED.marked_by, marked_at = now()""",
            (environment, marked_by),
        )
        conn.commit()
        marker = read(conn)
    assert marker is not None
    return marker


def ensure_marked(dsn: str, environment: str, marked_by: str) -> Marker:
    """Mark a database the caller owns (the sandbox's) unless it already carries a marker.

    Raises as :func:`mark` does."""
    with connect(dsn) as conn:
        existing = read(conn)
    return existing or mark(dsn, environment, marked_by)


def require(conn: psycopg.Connection, environment: str, database: str) -> Marker:
    """The marker, or a MarkerError that says what is wrong and how to set it."""
    marker = read(conn)
    how = f"`ult target-db mark --dsn ... --environment {environment}`"
    if marker is None:
        raise MarkerError(
            f"refusing to wipe database {database!r}: it carries no load-test marker "
            f"({MARKER_SCHEMA}.marker is missing). If this database really belongs to the "
            f"load-test environment {environment!r}, mark it once with {how}."
        )
    if marker.environment != environment:
        raise MarkerError(
            f"refusing to wipe database {database!r}: its load-test marker names environment "
            f"{marker.environment!r}, but this wipe is configured for {environment!r}. "
            f"Check the configured environment, or re-mark the database with {how}."
        )
    return marker
