"""createSchools and createClasses: one shape, entities that belong to an organization."""

from __future__ import annotations

import uuid
from typing import Any

from ..context import context_of
from ..entities import Entity
from ..errors import check_input_length, raise_if_any
from ..filters import as_uuid
from ..paging import fetch_nodes
from .common import in_input_order, require_permission
from .membership_input import missing_parent_problems


async def create_in_organizations(
    info: Any, input: list[dict], *, permission: str, entity: Entity, table: str, id_column: str, name_column: str,
    shortcode_key: str,
) -> list[dict]:
    """Checks (length, permission in every organization, organizations exist), inserts in one
    statement and returns the new nodes in input order."""
    check_input_length(input)
    orgs = [as_uuid(item["organizationId"]) for item in input]
    await require_permission(info, permission, [o or "" for o in orgs])
    problems, orgs = await missing_parent_problems(
        info, input, "organizationId", "organization", "organization_id", "Organization"
    )
    raise_if_any(problems)
    ids = [str(uuid.uuid4()) for _ in input]
    conn = await context_of(info).db.connection()
    async with conn.transaction():
        await conn.execute(
            f'INSERT INTO {table} ({id_column}, {name_column}, shortcode, "organizationOrganizationId") '
            "SELECT * FROM unnest(%s::uuid[], %s::varchar[], %s::varchar[], %s::uuid[])",
            [ids, [item["name"] for item in input], [item.get(shortcode_key) for item in input], orgs],
        )
    rows = await fetch_nodes(context_of(info).db, entity, [(f"{entity.id_expr} = ANY(%s::uuid[])", [ids])])
    return in_input_order(rows, ids)
