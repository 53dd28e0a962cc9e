"""createSchools: entities that belong to an organization (createClasses, with its own codes and
shortcodes, is in class_writes.py)."""

from __future__ import annotations

import uuid
from typing import Any

from ..context import context_of
from ..entities import Entity
from ..errors import DUPLICATE_CHILD_ENTITY_ATTRIBUTE, InputProblem, check_input_length, raise_if_any
from ..filters import as_uuid
from ..paging import fetch_nodes
from .common import in_input_order, require_permission
from .membership_input import missing_parent_problems


async def create_in_organizations(
    info: Any, input: list[dict], *, permission: str, entity: Entity, table: str, id_column: str, name_column: str,
    shortcode_key: str, unique_names: bool = False,
) -> list[dict]:
    """Checks (length, permission in every organization, organizations exist), inserts in one
    statement and returns the new nodes in input order.

    ``unique_names``: a name already used in the organization, inactive rows included, is
    refused with ERR_DUPLICATE_CHILD_ENTITY_ATTRIBUTE (the real createClasses), so a repeated
    create is refused whole instead of creating the entities twice.
    """
    check_input_length(input)
    orgs = [as_uuid(item["organizationId"]) for item in input]
    await require_permission(info, permission, [o or "" for o in orgs])
    problems, orgs = await missing_parent_problems(
        info, input, "organizationId", "organization", "organization_id", "Organization"
    )
    if unique_names:
        problems += await _names_in_use(info, input, orgs, table, name_column, entity.name)
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


async def _names_in_use(
    info: Any, input: list[dict], orgs: list[str | None], table: str, name_column: str, entity: str
) -> list[InputProblem]:
    pairs = [(org, item["name"]) for item, org in zip(input, orgs, strict=True) if org]
    if not pairs:
        return []
    rows = await context_of(info).db.fetch_all(
        f'SELECT "organizationOrganizationId"::text AS o, {name_column} AS n FROM {table} '
        f'WHERE ("organizationOrganizationId", {name_column}) IN '
        "(SELECT * FROM unnest(%s::uuid[], %s::varchar[]))",
        [[o for o, _ in pairs], [n for _, n in pairs]],
    )
    taken = {(row["o"], row["n"]) for row in rows}
    return [
        InputProblem(
            DUPLICATE_CHILD_ENTITY_ATTRIBUTE,
            f"On index {index}, {entity} {item['name']} already exists for Organization {org}.",
            entity,
            "name",
            index,
        )
        for index, (item, org) in enumerate(zip(input, orgs, strict=True))
        if (org, item["name"]) in taken
    ]
