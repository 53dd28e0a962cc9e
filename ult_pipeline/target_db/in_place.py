"""The in-place wipe of the user-service's tenant data: one step per statement, timed and counted.

Why not one transaction of DELETEs (the script `sql/user_service_in_place.sql`, kept as the
fallback and as the benchmark's baseline): deleting a row makes PostgreSQL check every table
that references it, and in the real service (4.5.0, TypeORM migrations) several referencing
columns have no index (`organization_membership."userUserId"`, `school_membership."userUserId"`,
`role."organizationOrganizationId"`, ...). Each check then scans a table full of rows deleted
earlier in the same transaction: the cost grows with the square of the data (400 s and more
for 100,000 users).

The plan, chosen by measurement (`python -m ult_pipeline_tests.bench.wipe`), all in the caller's
transaction:
1. Keep the system rows: copy the few rows to keep of the tables that hold system rows beside
   tenant rows (:data:`KEEP`: system roles and their permission links, system programs, age
   ranges, grades, subjects, categories, subcategories and the links between them) into
   temporary tables (``ON COMMIT DROP``).
2. TRUNCATE, in one statement and without CASCADE, every table of the plan: the tenant-only
   tables (:data:`TENANT_TABLES`), `user`, `organization` and the :data:`KEEP` tables. Its cost
   does not depend on the number of rows. Without CASCADE, PostgreSQL refuses to truncate a table
   that a table outside the statement references, so it reaches exactly the tables it names;
   `permission` and `migrations` are never named.
3. Put the kept rows back, unchanged (same ids: the system role ids the target check compares).
If that is refused (see below), the partial plan: TRUNCATE the tenant-only tables only, DELETE
the tenant rows of the :data:`KEEP` tables, then `organization` and `user` (their referencing
tables are empty by then, so each row's foreign-key checks are cheap, but there is one per row
and referencing table: 2.5 to 10 s per 100,000 users, depending on the machine's load).

Requirements: the DSN's user needs the TRUNCATE privilege on the service's tables (their owner,
the user the service's migrations ran as, has it; no superuser is needed) and may create
temporary tables (PostgreSQL grants TEMP to everyone by default). When a TRUNCATE is refused (no
privilege, or a table this plan does not know references one it names: a newer service version),
the wipe says so through ``log`` and takes the next plan: the partial one, then DELETEs of every
tenant table in dependency order (as slow as the old script on large datasets).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from psycopg import sql

# Tables holding only tenant rows, children before parents (the order of the DELETE fallback).
# Real service 4.5.0 (36 tables) and the sandbox (a subset); tables a schema lacks are skipped.
TENANT_TABLES = (
    "user_classes_studying_class",
    "user_classes_teaching_class",
    "school_classes_class",
    "role_memberships_organization_membership",
    "role_school_memberships_school_membership",
    "class_programs_program",
    "class_age_ranges_age_range",
    "class_grades_grade",
    "class_subjects_subject",
    "school_programs_program",
    "school_membership",
    "organization_membership",
    "organization_ownership",
    "attendance",
    "class",
    "academic_term",
    "school",
    "branding_image",
    "branding",
)

# Tables holding system rows beside tenant rows, parents first: (table, the rows to keep).
KEEP = (
    ("role", "system_role"),
    ("program", "system"),
    ("age_range", "system"),
    ("grade", "system"),
    ("subject", "system"),
    ("category", "system"),
    ("subcategory", "system"),
    ("permission_roles_role", '"roleRoleId" IN (SELECT role_id FROM role WHERE system_role)'),
    ("program_age_ranges_age_range", '"programId" IN (SELECT id FROM program WHERE system) '
                                     'AND "ageRangeId" IN (SELECT id FROM age_range WHERE system)'),
    ("program_grades_grade", '"programId" IN (SELECT id FROM program WHERE system) '
                             'AND "gradeId" IN (SELECT id FROM grade WHERE system)'),
    ("program_subjects_subject", '"programId" IN (SELECT id FROM program WHERE system) '
                                 'AND "subjectId" IN (SELECT id FROM subject WHERE system)'),
    ("subject_categories_category", '"subjectId" IN (SELECT id FROM subject WHERE system) '
                                    'AND "categoryId" IN (SELECT id FROM category WHERE system)'),
    ("category_subcategories_subcategory", '"categoryId" IN (SELECT id FROM category WHERE system) '
                                           'AND "subcategoryId" IN (SELECT id FROM subcategory WHERE system)'),
)
ROOTS = ("organization", "user")

# Refusals that make the wipe take its next plan (inside a savepoint: the refused plan left nothing).
# Not OperationalError: lock and statement timeouts, cancellation and lost connections end the wipe.
_REFUSED = (psycopg.ProgrammingError, psycopg.NotSupportedError, psycopg.IntegrityError, psycopg.DataError)

# The partial plan, after the tenant-only tables: (table, statement), the tenant rows of the KEEP
# tables, then the two roots.
MIXED_STEPS = (
    ("program_age_ranges_age_range",
     'DELETE FROM program_age_ranges_age_range WHERE "programId" IN (SELECT id FROM program WHERE NOT system)'),
    ("program_grades_grade",
     'DELETE FROM program_grades_grade WHERE "programId" IN (SELECT id FROM program WHERE NOT system)'),
    ("program_subjects_subject",
     'DELETE FROM program_subjects_subject WHERE "programId" IN (SELECT id FROM program WHERE NOT system)'),
    ("subject_categories_category",
     'DELETE FROM subject_categories_category WHERE "subjectId" IN (SELECT id FROM subject WHERE NOT system)'),
    ("category_subcategories_subcategory",
     'DELETE FROM category_subcategories_subcategory WHERE "categoryId" IN (SELECT id FROM category WHERE NOT system)'),
    ("permission_roles_role",
     'DELETE FROM permission_roles_role WHERE "roleRoleId" IN (SELECT role_id FROM role WHERE NOT system_role)'),
    ("role", "DELETE FROM role WHERE NOT system_role"),
    ("program", "DELETE FROM program WHERE NOT system"),
    ("subject", "DELETE FROM subject WHERE NOT system"),
    ("subcategory", "DELETE FROM subcategory WHERE NOT system"),
    ("category", "DELETE FROM category WHERE NOT system"),
    ("grade", "DELETE FROM grade WHERE NOT system"),
    ("age_range", "DELETE FROM age_range WHERE NOT system"),
    # user and organization reference each other
    ("user", 'UPDATE "user" SET "myOrganizationOrganizationId" = NULL WHERE "myOrganizationOrganizationId" IS NOT NULL'),
    ("organization", "DELETE FROM organization"),
    ("user", 'DELETE FROM "user"'),
)


@dataclass(frozen=True)
class Step:
    """One statement of the wipe: what it did, to how many rows, in how long."""

    name: str
    rows: int
    seconds: float

    def line(self) -> str:
        return f"wipe: {self.name}: {self.rows:,} rows in {self.seconds:.2f} s"


class Progress:
    """Collects the steps; says them through ``log`` once the wipe has run ``after_s`` seconds
    (the earlier steps at once, then each as it ends), and every ``every_s`` seconds says which
    step is still running, so a slow wipe is never silent. ``log=None``: collect only."""

    def __init__(self, log: Callable[[str], None] | None, after_s: float = 3.0, every_s: float = 5.0):
        self.log = log
        self.after_s = after_s
        self.every_s = every_s
        self.started = time.perf_counter()
        self.steps: list[Step] = []
        self._said = 0
        self._running: tuple[str, float] | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def __enter__(self) -> Progress:
        if self.log is not None:
            self._ticker = threading.Thread(target=self._tick, name="ult-wipe-progress", daemon=True)
            self._ticker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=2)

    def _slow(self) -> bool:
        return time.perf_counter() - self.started >= self.after_s

    def _say_done(self) -> None:
        if self.log is None or not self._slow():
            return
        while self._said < len(self.steps):
            self.log(self.steps[self._said].line())
            self._said += 1

    def say(self, message: str) -> None:
        """A message that matters whatever the wipe's speed (a fallback, a skipped step)."""
        if self.log is not None:
            self.log(f"wipe: {message}")

    def run(self, name: str, action: Callable[[], int]) -> int:
        """Run ``action`` (returns its row count) as the step ``name``."""
        t0 = time.perf_counter()
        with self._lock:
            self._running = (name, t0)
        try:
            rows = action()
        finally:
            with self._lock:
                self._running = None
        self.steps.append(Step(name, rows, time.perf_counter() - t0))
        with self._lock:
            self._say_done()
        return rows

    def _tick(self) -> None:
        while not self._stop.wait(self.every_s):
            with self._lock:
                if self._running is None or not self._slow():
                    continue
                self._say_done()
                name, t0 = self._running
                self.log(f"wipe: {name}: still running after {time.perf_counter() - t0:.0f} s "
                         f"(wipe started {time.perf_counter() - self.started:.0f} s ago)")


def _existing_tables(conn: psycopg.Connection, db_schema: str) -> set[str]:
    return {row[0] for row in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", (db_schema,))}


def _table(db_schema: str, name: str) -> sql.Composed:
    return sql.SQL("{}.{}").format(sql.Identifier(db_schema), sql.Identifier(name))


def _count(conn: psycopg.Connection, db_schema: str, tables: list[str]) -> int:
    if not tables:
        return 0
    query = sql.SQL(" + ").join(sql.SQL("(SELECT count(*) FROM {})").format(_table(db_schema, t)) for t in tables)
    return int(conn.execute(sql.SQL("SELECT ") + query).fetchone()[0])


def _refusal(err: psycopg.Error) -> str:
    if isinstance(err, psycopg.errors.InsufficientPrivilege):
        return f"the database user may not do it ({err.diag.message_primary})"
    if isinstance(err, psycopg.errors.FeatureNotSupported):
        # "cannot truncate a table referenced in a foreign key constraint": a table this plan
        # does not know references one it names; CASCADE would reach it, so it is never used.
        detail = (err.diag.message_detail or "").strip()
        return f"a table outside the plan references one of its tables ({detail or err.diag.message_primary})"
    return f"{err.diag.message_primary or type(err).__name__}"


def _whole_truncate_refused(conn: psycopg.Connection, db_schema: str, tables: set[str], progress: Progress) -> str | None:
    """Steps 1-3 of the module's plan; the reason they were refused (and left nothing), or None."""
    keep = [(t, where) for t, where in KEEP if t in tables]
    named = [t for t in TENANT_TABLES + ROOTS if t in tables] + [t for t, _ in keep]

    def saved(table: str) -> sql.Identifier:
        return sql.Identifier(f"ult_keep_{table}")

    def save() -> int:
        rows = 0
        for table, where in keep:
            rows += conn.execute(sql.SQL("CREATE TEMPORARY TABLE {} ON COMMIT DROP AS SELECT * FROM {} WHERE {}").format(
                saved(table), _table(db_schema, table), sql.SQL(where))).rowcount
        return rows

    def truncate() -> int:
        rows = _count(conn, db_schema, named)
        conn.execute(sql.SQL("TRUNCATE TABLE {}").format(sql.SQL(", ").join(_table(db_schema, t) for t in named)))
        return rows - kept

    def restore() -> int:
        rows = 0
        for table, _ in keep:
            rows += conn.execute(sql.SQL("INSERT INTO {} SELECT * FROM {}").format(
                _table(db_schema, table), saved(table))).rowcount
        if rows != kept:
            raise WipeRestoreError(f"put back {rows} system rows of {kept} kept")
        return rows

    try:
        with conn.transaction():
            kept = progress.run("keep system rows", save)
            progress.run(f"truncate {len(named)} tables", truncate)
            progress.run("restore system rows", restore)
    except _REFUSED as err:
        return _refusal(err)
    return None


class WipeRestoreError(psycopg.DataError):
    """The system rows put back are not the ones kept (never expected: the plan is then refused)."""


def _truncate_refused(conn: psycopg.Connection, db_schema: str, tables: list[str], progress: Progress) -> str | None:
    """TRUNCATE ``tables`` in one statement (no CASCADE); the reason it was refused, or None."""
    statement = sql.SQL("TRUNCATE TABLE {}").format(sql.SQL(", ").join(_table(db_schema, t) for t in tables))
    def truncate() -> int:
        rows = _count(conn, db_schema, tables)
        conn.execute(statement)
        return rows

    try:
        with conn.transaction():
            progress.run(f"truncate {len(tables)} tenant tables", truncate)
    except (psycopg.errors.InsufficientPrivilege, psycopg.errors.FeatureNotSupported) as err:
        return _refusal(err)
    return None


def _delete(conn: psycopg.Connection, statement: str, progress: Progress, name: str) -> None:
    def action() -> int:
        try:
            with conn.transaction():
                return conn.execute(statement).rowcount
        except psycopg.errors.UndefinedColumn as err:
            # A table of another shape than expected: leave it, the next steps tell.
            progress.say(f"skipped {statement!r}: {err.diag.message_primary}")
            return 0
    progress.run(name, action)


def wipe_tenant_data(conn: psycopg.Connection, db_schema: str, progress: Progress) -> None:
    """Delete the tenant rows of ``db_schema``, keeping `migrations`, `permission` and the system rows.

    Runs inside the caller's transaction (nothing is committed here). ``search_path`` must be
    ``db_schema`` (the mixed-table statements name tables unqualified)."""
    tables = _existing_tables(conn, db_schema)
    refused = _whole_truncate_refused(conn, db_schema, tables, progress)
    if refused is None:
        return
    progress.say(f"TRUNCATE of every tenant table refused: {refused}; truncating the tenant-only tables and "
                 "deleting the rest instead")
    tenant = [t for t in TENANT_TABLES if t in tables]
    if tenant:
        refused = _truncate_refused(conn, db_schema, tenant, progress)
        if refused is not None:
            progress.say(f"TRUNCATE refused: {refused}; deleting row by row instead (slow on large datasets)")
            for table in tenant:
                _delete(conn, sql.SQL("DELETE FROM {}").format(_table(db_schema, table)).as_string(conn),
                        progress, f"delete {table}")
    for table, statement in MIXED_STEPS:
        if table in tables:
            verb = "update" if statement.startswith("UPDATE") else "delete"
            _delete(conn, statement, progress, f"{verb} {table}")
