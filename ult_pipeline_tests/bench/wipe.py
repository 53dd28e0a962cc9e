"""Benchmark of the in-place wipe: 2k, 20k and 100k students, on the sandbox's schema and the real service's shape.

    python -m ult_pipeline_tests.bench.wipe [--students 2000,20000,100000] [--shapes sandbox,real] [--dsn DSN]

Each dataset is written directly by SQL (`ult_pipeline_tests/target_db/dataset.py`: seeding 100k
students through the API is too slow for a benchmark) into a schema of its own on an embedded
PostgreSQL started in a temporary folder (or on --dsn, a database this script may mark and fill),
then wiped in place with the function `ult wipe` calls, with its defaults. Printed per dataset:
the time of each step and the total; the system rows are checked to be intact afterwards.

Baselines measured in the same run: a plain `SELECT count(*)` of every table (the cost of reading
the data once), the wipe's partial plan (its first fallback: TRUNCATE of the tenant-only tables,
DELETE of `user`, `organization` and the tenant rows beside system rows; forced by a table outside
the plan that references `role`), and the old wipe (`sql/user_service_in_place.sql`, one transaction of DELETEs) on
the same data for at most 20k students (on the real service's shape it grows with the square of
the data: minutes at 100k).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg import sql

from ult_pipeline.target_db import marker
from ult_pipeline.target_db.wipe import IN_PLACE, default_in_place_sql, wipe
from ult_pipeline_tests.target_db import dataset

ENVIRONMENT = "wipe-bench"
OLD_WIPE_MAX_STUDENTS = 20_000


def _count_pass(dsn: str, schema: str) -> float:
    with psycopg.connect(dsn) as conn:
        tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,))]
        started = time.perf_counter()
        for table in tables:
            conn.execute(sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(table)))
        return time.perf_counter() - started


def _prepare(dsn: str, schema: str, shape: str, students: int) -> tuple[dict, float]:
    with psycopg.connect(dsn) as conn:
        dataset.create_schema(conn, schema, shape)
        started = time.perf_counter()
        counts = dataset.fill(conn, schema, students)
        filled = time.perf_counter() - started
        # As after seeding (`ult seed` refreshes the planner's statistics before the load test).
        conn.execute(sql.SQL("ANALYZE {}").format(sql.SQL(", ").join(
            sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(t)) for t in counts)))
        conn.commit()
        return dataset.system_rows(conn, schema), filled


def _check(dsn: str, schema: str, system_before: dict) -> str:
    with psycopg.connect(dsn) as conn:
        left = {t: n for t, n in dataset.tenant_counts(conn, schema).items() if n}
        intact = dataset.system_rows(conn, schema) == system_before
    return ("system rows intact" if intact else "SYSTEM ROWS CHANGED") + (f", tenant rows left: {left}" if left else "")


def bench(dsn: str, shapes: list[str], sizes: list[int]) -> list[tuple]:
    marker.mark(dsn, ENVIRONMENT, marked_by="ult_pipeline_tests.bench.wipe")
    rows = []
    for shape in shapes:
        for students in sizes:
            schema = f"bench_{shape}_{students}"
            system_before, filled = _prepare(dsn, schema, shape, students)
            with psycopg.connect(dsn) as conn:
                tenant_rows = sum(dataset.tenant_counts(conn, schema).values())
            counting = _count_pass(dsn, schema)
            print(f"\n== {shape} schema, {students:,} students ({tenant_rows:,} tenant rows; filled in {filled:.1f} s)")
            result = wipe(dsn, ENVIRONMENT, strategy=IN_PLACE, db_schema=schema)
            for step in result.steps:
                print(f"   {step.name:<45} {step.rows:>9,} rows {step.seconds:7.3f} s")
            print(f"   total {result.seconds:.3f} s; {_check(dsn, schema, system_before)}")
            print(f"   baseline: count(*) of every table {counting:.3f} s (ratio wipe/count {result.seconds / counting:.1f})")
            system_before, _ = _prepare(dsn, schema, shape, students)
            with psycopg.connect(dsn) as conn:
                conn.execute(sql.SQL("CREATE TABLE {}.bench_force_partial (role_id uuid REFERENCES {}.role)").format(
                    sql.Identifier(schema), sql.Identifier(schema)))
            partial = wipe(dsn, ENVIRONMENT, strategy=IN_PLACE, db_schema=schema)
            user_step = next(s for s in partial.steps if s.name == "delete user")
            print(f"   baseline: partial plan {partial.seconds:.3f} s, of which delete user {user_step.seconds:.3f} s "
                  f"({_check(dsn, schema, system_before)}); the wipe is {partial.seconds / result.seconds:.1f}x faster")
            old = None
            if students <= OLD_WIPE_MAX_STUDENTS:
                system_before, _ = _prepare(dsn, schema, shape, students)
                old = wipe(dsn, ENVIRONMENT, strategy=IN_PLACE, db_schema=schema, sql_file=default_in_place_sql()).seconds
                print(f"   baseline: old DELETE script {old:.3f} s ({_check(dsn, schema, system_before)}); "
                      f"new wipe is {old / result.seconds:.1f}x faster")
            else:
                print(f"   baseline: old DELETE script not run above {OLD_WIPE_MAX_STUDENTS:,} students (minutes)")
            rows.append((shape, students, result.seconds, counting, partial.seconds, old))
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
    print("\nshape     students   wipe s  count(*) s  partial s  old DELETE s  old/new")
    for shape, students, new, counting, partial, old in rows:
        print(f"{shape:<8} {students:>9,} {new:8.3f} {counting:11.3f} {partial:10.3f} "
              + (f"{old:13.3f} {old / new:8.1f}x" if old is not None else f"{'-':>13} {'-':>8}"))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", default="2000,20000,100000")
    parser.add_argument("--shapes", default=f"{dataset.SANDBOX},{dataset.REAL}")
    parser.add_argument("--dsn", default=None, help="a scratch database to use instead of an embedded PostgreSQL")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.students.split(",")]
    shapes = args.shapes.split(",")
    if args.dsn:
        bench(args.dsn, shapes, sizes)
        return 0
    from ult_pipeline.sandbox import postgres

    pgdata = Path(tempfile.mkdtemp(prefix="ult-wipe-bench-"))
    try:
        dsn = postgres.start(pgdata)
        with psycopg.connect(dsn) as conn:
            print(f"PostgreSQL {conn.info.server_version}, embedded in {pgdata}")
        bench(dsn, shapes, sizes)
    finally:
        postgres.stop(pgdata)
        shutil.rmtree(pgdata, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
