"""Planner statistics of a freshly seeded database, refreshed before the load test.

Tables created by a wipe and filled by seeding have no statistics until autovacuum's analyze
gets to them (every minute at best): a race with the load test that starts right after, which
can give the same image and data different plans in different builds. An explicit ANALYZE makes
every build start from analysed tables.
"""

from __future__ import annotations

import time

import psycopg
from psycopg import sql

from ult_pipeline.secrets import one_line
from ult_pipeline.target_db import marker
from ult_pipeline.target_db.wipe import WipeError


def refresh_statistics(dsn: str, db_schema: str = "public") -> tuple[int, float]:
    """ANALYZE every table of `db_schema`: (tables analysed, seconds).

    Tables the role may not analyse are skipped by PostgreSQL with a warning, not an error.
    """
    started = time.perf_counter()
    try:
        with marker.connect(dsn, autocommit=True, connect_timeout=10) as conn:
            tables = [row[0] for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY tablename", [db_schema])]
            for table in tables:
                conn.execute(sql.SQL("ANALYZE {}.{}").format(sql.Identifier(db_schema), sql.Identifier(table)))
    except psycopg.OperationalError as err:
        raise WipeError(f"cannot reach the target database to refresh its statistics: "
                        f"{one_line(str(err))}") from None
    return len(tables), time.perf_counter() - started
