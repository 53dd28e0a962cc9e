"""Schema, tables and built-in data, created when missing, at startup only.

"Drop the schema, restart the service" therefore resets everything the way it does for
the real service: fresh tables, the baseline `migrations` row, and system roles with new
random ids.
"""

from __future__ import annotations

import uuid
from importlib.resources import files

from psycopg import AsyncConnection, sql

from . import system_data


def ddl_text() -> str:
    return files(__package__).joinpath("ddl.sql").read_text(encoding="utf-8")


async def bootstrap(conn: AsyncConnection, db_schema: str) -> None:
    """Create schema, tables and system data if missing, in one transaction.

    An advisory lock keeps two services booting on one database from racing.
    """
    system_data.check_catalog()
    async with conn.transaction():
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext(%s))", [f"ult_sandbox_bootstrap:{db_schema}"]
        )
        await conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(db_schema)))
        await conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(db_schema)))
        await conn.execute(ddl_text())
        await _ensure_migration_record(conn)
        await _ensure_permissions(conn)
        await _ensure_system_roles(conn)
        await _ensure_system_rows(conn)


async def _ensure_migration_record(conn: AsyncConnection) -> None:
    timestamp, name = system_data.BASELINE_MIGRATION
    await conn.execute(
        "INSERT INTO migrations (\"timestamp\", name) SELECT %s, %s "
        "WHERE NOT EXISTS (SELECT 1 FROM migrations WHERE name = %s)",
        [timestamp, name, name],
    )


async def _ensure_permissions(conn: AsyncConnection) -> None:
    rows = [
        (p.name, p.name, p.category, p.group, p.level, p.description)
        for p in system_data.PERMISSIONS
    ]
    async with conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO permission (permission_id, permission_name, permission_category, "
            "permission_group, permission_level, permission_description, allow) "
            "VALUES (%s, %s, %s, %s, %s, %s, true) ON CONFLICT DO NOTHING",
            rows,
        )


async def _ensure_system_roles(conn: AsyncConnection) -> None:
    for role_name, permission_names in system_data.SYSTEM_ROLES.items():
        cur = await conn.execute(
            "SELECT role_id FROM role WHERE role_name = %s AND system_role "
            "AND \"organizationOrganizationId\" IS NULL ORDER BY created_at LIMIT 1",
            [role_name],
        )
        found = await cur.fetchone()
        if found is None:
            role_id = uuid.uuid4()
            await conn.execute(
                "INSERT INTO role (role_id, role_name, role_description, system_role) "
                "VALUES (%s, %s, %s, true)",
                [role_id, role_name, system_data.SYSTEM_ROLE_DESCRIPTIONS[role_name]],
            )
        else:
            role_id = found["role_id"] if isinstance(found, dict) else found[0]
        await conn.execute(
            "INSERT INTO permission_roles_role (\"permissionPermissionId\", \"roleRoleId\") "
            "SELECT name, %s FROM unnest(%s::varchar[]) AS name ON CONFLICT DO NOTHING",
            [role_id, list(permission_names)],
        )
        # System roles follow the catalog exactly: a permission taken out of a role here is
        # taken out of a database booted by an older sandbox too.
        await conn.execute(
            "DELETE FROM permission_roles_role WHERE \"roleRoleId\" = %s "
            "AND \"permissionPermissionId\" <> ALL(%s::varchar[])",
            [role_id, list(permission_names)],
        )


async def _ensure_named_system_rows(conn: AsyncConnection, table: str, names: tuple[str, ...]) -> None:
    await conn.execute(
        sql.SQL(
            "INSERT INTO {table} (id, name, system) "
            "SELECT gen_random_uuid(), n, true FROM unnest(%s::varchar[]) AS n "
            "WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE t.name = n AND t.system)"
        ).format(table=sql.Identifier(table)),
        [list(names)],
    )


async def _ensure_system_rows(conn: AsyncConnection) -> None:
    await _ensure_named_system_rows(conn, "program", system_data.SYSTEM_PROGRAMS)
    await _ensure_named_system_rows(conn, "grade", system_data.SYSTEM_GRADES)
    await _ensure_named_system_rows(conn, "subject", system_data.SYSTEM_SUBJECTS)
    await _ensure_named_system_rows(conn, "category", system_data.SYSTEM_CATEGORIES)
    await _ensure_named_system_rows(conn, "subcategory", system_data.SYSTEM_SUBCATEGORIES)
    for name, low, high, unit in system_data.SYSTEM_AGE_RANGES:
        await conn.execute(
            "INSERT INTO age_range (id, name, low_value, high_value, low_value_unit, "
            "high_value_unit, system) SELECT gen_random_uuid(), %s, %s, %s, %s, %s, true "
            "WHERE NOT EXISTS (SELECT 1 FROM age_range WHERE name = %s AND system)",
            [name, low, high, unit, unit, name],
        )
