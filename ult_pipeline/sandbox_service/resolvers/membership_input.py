"""Validation shared by the "add X to Y" mutations: lengths, duplicates, existence."""

from __future__ import annotations

import secrets
import string
from typing import Any

from ..context import context_of
from ..errors import (
    DUPLICATE_ATTRIBUTE_VALUES,
    INVALID_ARRAY_MIN_LENGTH,
    MAX_INPUT_LENGTH,
    InputProblem,
    duplicates,
    missing,
    too_long_input,
)
from ..filters import as_uuid
from .common import existing_ids

SHORTCODE_ALPHABET = string.ascii_uppercase + string.digits


def new_shortcode(length: int = 10) -> str:
    return "".join(secrets.choice(SHORTCODE_ALPHABET) for _ in range(length))


def inner_length_problems(items: list[dict], attributes: tuple[str, ...]) -> list[InputProblem]:
    """The nested id lists' own rules (MUTATIONS.md): 1 to 50 ids, none twice."""
    problems = []
    for index, item in enumerate(items):
        for attribute in attributes:
            values = item.get(attribute) or []
            if len(values) > MAX_INPUT_LENGTH:
                problem = too_long_input(len(values), attribute)
                problems.append(InputProblem(problem.code, f"On index {index}, {problem.message}", "", attribute, index))
            elif not values:
                problems.append(InputProblem(
                    INVALID_ARRAY_MIN_LENGTH, f"On index {index}, {attribute} must contain at least 1 element.",
                    "", attribute, index))
            seen: set = set()
            repeated = sorted({v for v in (as_uuid(v) or v for v in values) if v in seen or seen.add(v)})
            if repeated:
                problems.append(InputProblem(
                    DUPLICATE_ATTRIBUTE_VALUES,
                    f"On index {index}, {attribute} {', '.join(map(str, repeated[:3]))} appear more than once.",
                    "", attribute, index))
    return problems


def duplicate_problems(items: list[dict], key: str, entity: str) -> list[InputProblem]:
    canonical = [{key: as_uuid(item.get(key)) or item.get(key)} for item in items]
    return duplicates(canonical, key, entity)


async def missing_parent_problems(
    info: Any, items: list[dict], key: str, table: str, id_column: str, entity: str
) -> tuple[list[InputProblem], list[str | None]]:
    parents = [as_uuid(item.get(key)) for item in items]
    found = await existing_ids(info, table, id_column, [p for p in parents if p])
    problems = [
        missing(entity, item.get(key), index, key)
        for index, (item, parent) in enumerate(zip(items, parents, strict=True))
        if parent not in found
    ]
    return problems, parents


async def missing_user_problems(info: Any, items: list[dict], key: str) -> list[InputProblem]:
    wanted = {as_uuid(u) for item in items for u in item.get(key) or []}
    found = await existing_ids(info, '"user"', "user_id", [u for u in wanted if u])
    problems = []
    for index, item in enumerate(items):
        for user in item.get(key) or []:
            if as_uuid(user) not in found:
                problems.append(missing("User", user, index, key))
    return problems


async def non_member_problems(
    info: Any, items: list[dict], key: str, parent_orgs: list[str | None], parent_entity: str, parent_key: str,
    *, any_status: bool = False,
) -> list[InputProblem]:
    """Users of each item who are not active members of the parent's organization (with
    `any_status`: who have no membership there at all, e.g. class rosters accept an inactive one)."""
    from ..errors import missing_child

    pairs = [
        (as_uuid(user), org)
        for item, org in zip(items, parent_orgs, strict=True)
        for user in item.get(key) or []
        if org and as_uuid(user)
    ]
    if not pairs:
        return []
    status = "true" if any_status else "status = 'active'"
    rows = await context_of(info).db.fetch_all(
        "SELECT user_id::text AS u, organization_id::text AS o FROM organization_membership "
        f"WHERE {status} AND (user_id, organization_id) IN "
        "(SELECT * FROM unnest(%s::uuid[], %s::uuid[]))",
        [[u for u, _ in pairs], [o for _, o in pairs]],
    )
    members = {(row["u"], row["o"]) for row in rows}
    problems = []
    for index, (item, org) in enumerate(zip(items, parent_orgs, strict=True)):
        if not org:
            continue
        for user in item.get(key) or []:
            canonical = as_uuid(user)
            if canonical and (canonical, org) not in members:
                problems.append(missing_child("User", user, parent_entity, item.get(parent_key), index))
    return problems


async def organizations_of(info: Any, table: str, id_column: str, ids: list[str | None]) -> list[str | None]:
    """The organization of each school/class id (None where unknown)."""
    valid = [i for i in ids if i]
    if not valid:
        return [None for _ in ids]
    rows = await context_of(info).db.fetch_all(
        f'SELECT {id_column}::text AS id, "organizationOrganizationId"::text AS org FROM {table} '
        f"WHERE {id_column} = ANY(%s::uuid[])",
        [valid],
    )
    by_id = {row["id"]: row["org"] for row in rows}
    return [by_id.get(i) if i else None for i in ids]


async def role_problems(
    info: Any, items: list[dict], key: str, orgs: list[str | None]
) -> list[InputProblem]:
    """Roles must exist and be system roles or roles of the organization concerned."""
    wanted = sorted({as_uuid(r) for item in items for r in item.get(key) or [] if as_uuid(r)})
    rows = await context_of(info).db.fetch_all(
        'SELECT role_id::text AS id, system_role, "organizationOrganizationId"::text AS org FROM role '
        "WHERE role_id = ANY(%s::uuid[]) AND status = 'active'",
        [wanted],
    ) if wanted else []
    roles = {row["id"]: row for row in rows}
    problems = []
    for index, (item, org) in enumerate(zip(items, orgs, strict=True)):
        for role in item.get(key) or []:
            row = roles.get(as_uuid(role) or "")
            if row is None or not (row["system_role"] or row["org"] == org):
                problems.append(missing("Role", role, index, key))
    return problems


def unique_canonical(values: list[Any]) -> list[str]:
    seen: dict[str, None] = {}
    for value in values:
        canonical = as_uuid(value)
        if canonical:
            seen.setdefault(canonical, None)
    return list(seen)


async def already_linked_problems(
    info: Any, items: list[dict], key: str, parents: list[str | None], *, table: str, child_column: str,
    parent_column: str, entity: str, parent_entity: str, parent_key: str, active_only: bool = False,
) -> list[InputProblem]:
    """ERR_DUPLICATE_CHILD_ENTITY for each child of each item already linked to the item's
    parent, like the real service: a repeated add is refused whole, nothing is written.

    ``active_only``: memberships count only while active; adding an inactive member succeeds
    and leaves it inactive (MUTATIONS.md, "Traps").
    """
    from ..errors import duplicate_child

    pairs = [
        (as_uuid(child), parent)
        for item, parent in zip(items, parents, strict=True)
        for child in item.get(key) or []
        if parent and as_uuid(child)
    ]
    if not pairs:
        return []
    status = " AND status = 'active'" if active_only else ""
    rows = await context_of(info).db.fetch_all(
        f'SELECT "{child_column}"::text AS c, "{parent_column}"::text AS p FROM {table} '
        f'WHERE ("{child_column}", "{parent_column}") IN (SELECT * FROM unnest(%s::uuid[], %s::uuid[])){status}',
        [[c for c, _ in pairs], [p for _, p in pairs]],
    )
    linked = {(row["c"], row["p"]) for row in rows}
    problems = []
    for index, (item, parent) in enumerate(zip(items, parents, strict=True)):
        for child in item.get(key) or []:
            if parent and (as_uuid(child), parent) in linked:
                problems.append(duplicate_child(entity, child, parent_entity, item.get(parent_key), index))
    return problems
