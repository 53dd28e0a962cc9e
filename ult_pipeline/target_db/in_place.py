"""The in-place wipe of the user-service's tenant data: one step per statement, timed and counted.

Why not one transaction of DELETEs (the script `sql/user_service_in_place.sql`, kept as the
fallback and as the benchmark's baseline): deleting a row makes PostgreSQL check every table
that references it, and in the real service (4.5.0, TypeORM migrations) several referencing
columns have no index (`organization_membership."userUserId"`, `school_membership."userUserId"`,
`role."organizationOrganizationId"`, ...). Each check then scans a table full of rows deleted
earlier in the same transaction: the cost grows with the square of the data (400 s and more
for 100,000 users).

The plan, chosen by measurement (`python -m ult_pipeline_tests.bench.wipe`):
1. TRUNCATE, in one statement and without CASCADE, the tables that hold only tenant rows
   (:data:`TENANT_TABLES`: memberships, rosters, schools, classes, ...). Its cost does not
   depend on the number of rows. Without CASCADE, PostgreSQL refuses to truncate a table that a
   table outside the statement references, so it reaches exactly the tables it names; `role`,
   `program`, `grade`, `subject`, `category`, `subcategory` and `age_range` (system rows beside
   tenant rows) are never truncated, nor `permission` and `migrations`.
2. DELETE the tenant rows of the tables that also hold system rows (few rows: the seeded
   organizations' own roles, programs, ...).
3. DELETE `organization` and `user`. The tables referencing them were emptied by step 1, so
   each row's foreign-key checks scan empty tables: linear, about a second per 100,000 users.

Requirements: the DSN's user needs the TRUNCATE privilege on the tenant tables (the owner of
the service's tables, i.e. the user its migrations ran as, has it; no superuser is needed).
Without it, or when a table this plan does not know references a tenant table (a newer service
version), step 1 falls back to DELETEs in dependency order, says so through ``log``, and is as
slow as the old script on large datasets.
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

# (table, statement): the tenant rows of tables that also hold system rows, then the two roots.
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
    except psycopg.errors.InsufficientPrivilege:
        return "the database user may not TRUNCATE the tenant tables"
    except psycopg.errors.FeatureNotSupported as err:
        # "cannot truncate a table referenced in a foreign key constraint": a table this plan
        # does not know references a tenant table; CASCADE would reach it, so it is never used.
        detail = (err.diag.message_detail or "").strip()
        return f"a table outside the plan references a tenant table ({detail or err.diag.message_primary})"
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
