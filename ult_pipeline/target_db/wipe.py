"""The guarded wipe of the target's database, through a direct PostgreSQL connection.

Two proofs come first, inside the transaction that wipes, so a refused wipe changes nothing:
1. the database carries the load-test marker for the configured environment (a person said
   it may be wiped), and
2. it is the database behind the target URL: the system roles the service reports through
   its API (`systemRoles`) have exactly the ids stored in this database's `role` table. The
   service gives its system roles random ids when it first boots a database (API.md, "Its
   database"), so two load-test databases do not share them; a byte-for-byte clone of the
   target's database would pass, and would be one the target owns the data of.
After a `recreate`, the same comparison on the new schema proves the restarted service
really serves it (its health route alone does not).

The in-place wipe (see `in_place.py`) runs one statement per step on a connection named
``application_name = 'ult-wipe'`` (so it can be found in `pg_stat_activity`), each statement
bounded by ``statement_timeout``. When the client is stopped (Ctrl-C, or `Stopped` from the CLI's
signal handlers, both KeyboardInterrupts) psycopg cancels the running statement in the server
before the exception goes on, and the transaction rolls back; a client that dies without a word
is noticed by the server within a second (``client_connection_check_interval``, PostgreSQL 14+),
which then ends the statement too. Nothing of a stopped wipe is committed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import psycopg
from psycopg import sql

from ult_pipeline.secrets import one_line
from ult_pipeline.seeding.seeder import system_role_ids
from ult_pipeline.target_api.client import GraphQLClient
from ult_pipeline.target_db import marker
from ult_pipeline.target_db.in_place import Progress, Step, wipe_tenant_data

RECREATE, IN_PLACE = "recreate", "in_place"
STRATEGIES = (RECREATE, IN_PLACE)
APPLICATION_NAME = "ult-wipe"
DEFAULT_STATEMENT_TIMEOUT_S = 120
_PROTECTED_SCHEMAS = {marker.MARKER_SCHEMA, "pg_catalog", "information_schema", "pg_toast"}


class WipeError(RuntimeError):
    pass


class TargetMismatchError(WipeError):
    """The database is not (or no longer) the one the target URL's service reads and writes."""


@dataclass(frozen=True)
class TargetCheck:
    """How to prove a database is the one behind a target.

    ``url``: the target's GraphQL URL (for messages); ``system_roles``: reads the target's
    system roles through its API, ``{role name: role id}`` (raises the client's errors).
    """

    url: str
    system_roles: Callable[[], Mapping[str, str]]

    @classmethod
    def through(cls, client: GraphQLClient) -> TargetCheck:
        """The check for the target ``client`` calls (with its super-admin API key)."""
        return cls(client.url, lambda: system_role_ids(client))


def _database_system_roles(conn: psycopg.Connection, db_schema: str) -> dict[str, str] | None:
    """``{role name: role id}`` of the active system roles in ``db_schema``; None when there is no role table."""
    table = '"' + db_schema.replace('"', '""') + '".role'
    if conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()[0] is None:
        return None
    rows = conn.execute(sql.SQL(
        "SELECT role_name, role_id::text FROM {}.role WHERE system_role AND status = 'active'"
    ).format(sql.Identifier(db_schema))).fetchall()
    return {name: role_id for name, role_id in rows}


def prove_behind_target(conn: psycopg.Connection, db_schema: str, api_roles: Mapping[str, str], target_url: str,
                        *, when: str = "refusing to wipe") -> None:
    """Raise TargetMismatchError unless ``conn``'s database stores the system role ids the target's API reports."""
    database = conn.info.dbname
    if not api_roles:
        raise TargetMismatchError(
            f"{when} database {database!r}: the target {target_url} reported no system roles, so nothing "
            "proves this database is the one behind it; nothing was changed"
        )
    stored = _database_system_roles(conn, db_schema)
    if stored is None:
        raise TargetMismatchError(
            f"{when} database {database!r}: it has no table {db_schema}.role, so it is not the user-service "
            f"database behind {target_url}; check the DSN and the schema; nothing was changed"
        )
    differing = sorted(name for name, role_id in api_roles.items() if stored.get(name) != role_id)
    if differing:
        name = differing[0]
        raise TargetMismatchError(
            f"{when} database {database!r}: it is not the database behind {target_url}: the service's "
            f"system role {name!r} has id {api_roles[name]}, this database's {db_schema}.role has "
            f"{stored.get(name) or 'no such role'} ({len(differing)} of {len(api_roles)} roles differ). "
            "Check which DSN was used (printed above) and where it came from (--dsn, $ULT_TARGET_DSN, "
            "the sandbox); nothing was changed"
        )


@dataclass(frozen=True)
class WipeResult:
    strategy: str
    environment: str
    seconds: float
    restart_seconds: float
    steps: tuple[Step, ...] = ()


def default_in_place_sql() -> Path:
    """The old in-place wipe: one transaction of DELETEs (the fallback's order; the benchmark's baseline).
    Not the default any more (see `in_place.py`); ``sql_file=default_in_place_sql()`` still runs it."""
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
    behind: TargetCheck | None = None,
    statement_timeout_s: int = DEFAULT_STATEMENT_TIMEOUT_S,
    log: Callable[[str], None] | None = None,
    progress_after_s: float = 3.0,
) -> WipeResult:
    """Wipe the database behind ``dsn`` if and only if it is marked for ``environment``
    and, when ``behind`` is given, proven to be the target's database (see the module's doc).

    ``recreate`` drops and recreates ``db_schema``, then calls ``restart_service`` (the
    service migrates and recreates its system data on boot); ``in_place`` runs ``sql_file``, or
    by default the plan of `in_place.py` (system rows kept aside, one TRUNCATE without CASCADE,
    system rows put back; fallbacks when refused), and the service may keep running.
    Each statement is bounded by ``statement_timeout_s``; a wipe that runs longer than
    ``progress_after_s`` says its steps (step, rows, seconds) through ``log``.
    Raises MarkerError, TargetMismatchError or WipeError; before the wipe commits, each leaves
    the database as it was. The pipeline and `ult seed`/`ult run` always pass ``behind``;
    only `ult wipe` without `--target` wipes on the marker alone.
    """
    if strategy not in STRATEGIES:
        raise WipeError(f"unknown wipe strategy {strategy!r}; use one of {', '.join(STRATEGIES)}")
    if db_schema in _PROTECTED_SCHEMAS:
        raise WipeError(f"refusing to wipe schema {db_schema!r}: it is not the service's schema")
    if strategy == RECREATE and restart_service is None:
        raise WipeError(
            "the recreate wipe needs a way to restart the service (it recreates its system data on boot); "
            "use the in_place strategy, or run it from the pipeline or the sandbox"
        )
    script = None
    if strategy == IN_PLACE and sql_file is not None:
        path = sql_file
        try:
            script = Path(path).read_text(encoding="utf-8")
        except OSError as err:
            raise WipeError(f"cannot read the in-place wipe SQL file {path}: {err.strerror}") from None

    api_roles = dict(behind.system_roles()) if behind is not None else None
    started = time.perf_counter()
    progress = Progress(log, after_s=progress_after_s)
    try:
        with marker.connect(dsn, autocommit=False, connect_timeout=10, application_name=APPLICATION_NAME) as conn, \
                progress:
            conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(f"{lock_timeout_s}s")))
            conn.execute(sql.SQL("SET LOCAL statement_timeout = {}").format(sql.Literal(f"{statement_timeout_s}s")))
            if conn.info.server_version >= 140000:
                conn.execute("SET LOCAL client_connection_check_interval = '1s'")
            database = conn.info.dbname
            marker.require(conn, environment, database)
            if not _schema_exists(conn, db_schema):
                raise WipeError(
                    f"refusing to wipe: database {database!r} has no schema {db_schema!r}; name the service's "
                    "schema (--schema, or the resource's db_schema); nothing was changed"
                )
            if behind is not None:
                prove_behind_target(conn, db_schema, api_roles, behind.url)
            elif strategy == IN_PLACE and not _has_service_tables(conn, db_schema):
                # Without a target to prove it against, at least the schema must be a user-service one:
                # an in-place script run on another schema deletes nothing and would read as a success.
                raise WipeError(
                    f"refusing to wipe: schema {db_schema!r} of database {database!r} has no user-service tables "
                    "(user, organization, role); name the service's schema with --schema; nothing was changed"
                )
            if strategy == RECREATE:
                ident = sql.Identifier(db_schema)
                conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(ident))
                conn.execute(sql.SQL("CREATE SCHEMA {}").format(ident))
            else:
                conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(db_schema)))
                if script is not None:
                    progress.run(f"script {Path(sql_file).name}", lambda: conn.execute(script).rowcount)
                else:
                    wipe_tenant_data(conn, db_schema, progress)
            progress.run("commit", lambda: conn.commit() or 0)
    except psycopg.errors.LockNotAvailable:
        raise WipeError(
            f"the wipe waited {lock_timeout_s} s for a lock: something holds the tables "
            "(a long transaction of the service?); nothing was changed"
        ) from None
    except psycopg.errors.IntegrityError as err:
        # A table the plan does not know still references tenant rows (the DELETE fallback's case).
        raise WipeError(
            f"the wipe could not delete the tenant rows: {one_line(err.diag.message_primary or type(err).__name__)}"
            f"{' (' + one_line(err.diag.message_detail) + ')' if err.diag.message_detail else ''}; nothing was changed"
        ) from None
    except psycopg.errors.QueryCanceled as err:
        why = (f"ran longer than {statement_timeout_s} s (statement_timeout)"
               if "statement timeout" in (err.diag.message_primary or "") else "was cancelled in the server")
        raise WipeError(f"a wipe statement {why}; nothing was changed") from None
    except psycopg.OperationalError as err:
        # After the more precise errors above: lock and statement timeouts are OperationalErrors too.
        raise WipeError(f"cannot reach the target database to wipe it: {one_line(str(err))}") from None
    wiped = time.perf_counter()
    if strategy == RECREATE:
        restart_service()
    if behind is not None:
        _prove_served(dsn, db_schema, behind)
    return WipeResult(strategy, environment, wiped - started, time.perf_counter() - wiped, tuple(progress.steps))


def _has_service_tables(conn: psycopg.Connection, db_schema: str) -> bool:
    tables = {row[0] for row in conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = %s AND tablename IN ('user', 'organization', 'role')",
        (db_schema,))}
    return len(tables) == 3


def _schema_exists(conn: psycopg.Connection, db_schema: str) -> bool:
    return conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (db_schema,)).fetchone() is not None


def _prove_served(dsn: str, db_schema: str, behind: TargetCheck) -> None:
    # After a recreate the service made new system roles on boot: reading them through the API and
    # finding them in the new schema shows the service runs on it, not on a cached or other database.
    api_roles = dict(behind.system_roles())
    try:
        with marker.connect(dsn, connect_timeout=10) as conn:
            prove_behind_target(conn, db_schema, api_roles, behind.url, when="after the wipe, checking")
    except TargetMismatchError as err:
        raise TargetMismatchError(
            f"{str(err).removesuffix('; nothing was changed')}: the wiped database is not the one the service "
            "now serves (did it restart on the new schema?); do not seed until this is fixed"
        ) from None
    except psycopg.OperationalError as err:
        raise WipeError(f"cannot reach the target database after the wipe: {one_line(str(err))}") from None

