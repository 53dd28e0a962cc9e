"""createClasses, updateClasses, deleteClasses as the real service 4.5.0 (MUTATIONS.md, "Classes").

Shared order (commonStructure.ts): array length, load rows, permission, validate every element,
one save; any problem rejects the whole call.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Iterable
from typing import Any

from ariadne import MutationType

from .. import entities as e
from ..context import context_of
from ..errors import (
    DUPLICATE_ATTRIBUTE_VALUES,
    DUPLICATE_CHILD_ENTITY,
    DUPLICATE_CHILD_ENTITY_ATTRIBUTE,
    DUPLICATE_INPUT_ATTRIBUTE_VALUE,
    INVALID_ALPHANUMERIC,
    INVALID_MAX_LENGTH,
    NONEXISTENT_ENTITY_OR_INACTIVE_STATUS,
    InputProblem,
    check_input_length,
    malformed_uuid,
    missing,
    raise_if_any,
)
from ..filters import as_uuid
from ..paging import fetch_nodes
from .common import in_input_order, require_permission
from .membership_input import duplicate_problems, missing_parent_problems, new_shortcode, organizations_of

mutation = MutationType()

CREATE_CLASS = "create_class_20224"
EDIT_CLASS = "edit_class_20334"
DELETE_CLASS = "delete_class_20444"
MAX_SHORTCODE = 10
_ALPHANUMERIC = re.compile(r"^[A-Za-z0-9]+$")


def require_uuids(values: Iterable[Any]) -> list[str]:
    """Canonical UUIDs, or PostgreSQL's refusal of the first malformed one (INTERNAL_SERVER_ERROR,
    no ERR_INVALID_UUID: the real service passes the database's message on)."""
    canonical = []
    for value in values:
        parsed = as_uuid(value)
        if parsed is None:
            raise malformed_uuid(value)
        canonical.append(parsed)
    return canonical


def reporting_order(problems: list[InputProblem]) -> list[InputProblem]:
    """The checks over all inputs (values repeated within the call) first, then each element's
    problems by index, as commonStructure.ts reports them."""
    over_all = (DUPLICATE_ATTRIBUTE_VALUES, DUPLICATE_INPUT_ATTRIBUTE_VALUE)
    return sorted(problems, key=lambda p: (p.code not in over_all, p.index or 0))


def shortcode_problems(index: int, shortcode: str, entity: str = "Class") -> list[InputProblem]:
    if len(shortcode) > MAX_SHORTCODE:
        return [InputProblem(
            INVALID_MAX_LENGTH, f"On index {index}, {entity} shortcode must not be greater than {MAX_SHORTCODE} characters.",
            entity, "shortcode", index)]
    if not _ALPHANUMERIC.match(shortcode):
        return [InputProblem(
            INVALID_ALPHANUMERIC, f"On index {index}, {entity} shortcode must only contain letters and numbers.",
            entity, "shortcode", index)]
    return []


async def taken_in_organizations(info: Any, column: str, pairs: list[tuple[Any, Any]]) -> dict[tuple[str, str], set[str]]:
    """Which (organization, value) of `pairs` classes already hold in `column` (name or shortcode),
    deleted classes included: {(org, value): ids of the classes holding it}."""
    pairs = [(o, v) for o, v in pairs if o and v is not None]
    if not pairs:
        return {}
    rows = await context_of(info).db.fetch_all(
        f'SELECT "organizationOrganizationId"::text AS o, {column} AS v, class_id::text AS id FROM class '
        f'WHERE ("organizationOrganizationId", {column}) IN (SELECT * FROM unnest(%s::uuid[], %s::varchar[]))',
        [[o for o, _ in pairs], [v for _, v in pairs]],
    )
    taken: dict[tuple[str, str], set[str]] = {}
    for row in rows:
        taken.setdefault((row["o"], row["v"]), set()).add(row["id"])
    return taken


def repeated_in_input(values: list[tuple[Any, ...] | None], attribute: str, entity: str = "Class") -> list[InputProblem]:
    """ERR_DUPLICATE_INPUT_ATTRIBUTE_VALUE at each element repeating an earlier element's value."""
    seen: set = set()
    problems = []
    for index, value in enumerate(values):
        if value is None:
            continue
        if value in seen:
            problems.append(InputProblem(
                DUPLICATE_INPUT_ATTRIBUTE_VALUE,
                f"On index {index}, {entity} {attribute} {value[-1]} appears more than once in the input.",
                entity, attribute, index))
        seen.add(value)
    return problems


async def class_rows(info: Any, ids: list[str]) -> list[dict]:
    rows = await fetch_nodes(context_of(info).db, e.CLASS, [("c.class_id = ANY(%s::uuid[])", [ids])])
    return in_input_order(rows, ids)


# --- createClasses ---


@mutation.field("createClasses")
async def resolve_create_classes(_: Any, info: Any, input: list[dict]) -> dict:
    check_input_length(input)
    orgs = require_uuids(item["organizationId"] for item in input)
    await require_permission(info, CREATE_CLASS, orgs)
    problems, _ = await missing_parent_problems(info, input, "organizationId", "organization", "organization_id", "Organization")
    problems = [dataclasses.replace(p, code=NONEXISTENT_ENTITY_OR_INACTIVE_STATUS) for p in problems]
    shortcodes: list[str] = []
    for index, item in enumerate(input):
        given = item.get("shortcode")
        if given:
            problems += shortcode_problems(index, given)
            shortcodes.append(given.upper())
        else:
            shortcodes.append(new_shortcode(MAX_SHORTCODE))
    names = [item["name"] for item in input]
    problems += repeated_in_input([(o, n) for o, n in zip(orgs, names, strict=True)], "name")
    problems += repeated_in_input([(o, s) for o, s in zip(orgs, shortcodes, strict=True)], "shortcode")
    for column, values in (("class_name", names), ("shortcode", shortcodes)):
        taken = await taken_in_organizations(info, column, list(zip(orgs, values, strict=True)))
        attribute = "name" if column == "class_name" else "shortcode"
        problems += [
            InputProblem(
                DUPLICATE_CHILD_ENTITY_ATTRIBUTE,
                f"On index {index}, Class {value} already exists for Organization {org}.", "Class", attribute, index)
            for index, (org, value) in enumerate(zip(orgs, values, strict=True))
            if (org, value) in taken
        ]
    raise_if_any(reporting_order(problems))
    ids = [str(uuid.uuid4()) for _ in input]
    conn = await context_of(info).db.connection()
    async with conn.transaction():
        await conn.execute(
            'INSERT INTO class (class_id, class_name, shortcode, "organizationOrganizationId") '
            "SELECT * FROM unnest(%s::uuid[], %s::varchar[], %s::varchar[], %s::uuid[])",
            [ids, names, shortcodes, orgs],
        )
    return {"classes": await class_rows(info, ids)}


# --- updateClasses ---


@mutation.field("updateClasses")
async def resolve_update_classes(_: Any, info: Any, input: list[dict]) -> dict:
    check_input_length(input)
    classes = require_uuids(item["classId"] for item in input)
    problems, _ = await missing_parent_problems(info, input, "classId", "class", "class_id", "Class")
    orgs = await organizations_of(info, "class", "class_id", classes)
    await require_permission(info, EDIT_CLASS, sorted({o for o in orgs if o}))
    problems += duplicate_problems(input, "classId", "Class")
    # An empty or missing className (or shortcode) keeps the stored value, without error.
    names = [item.get("className") or None for item in input]
    shortcodes = [(item.get("shortcode") or None) for item in input]
    for index, shortcode in enumerate(shortcodes):
        if shortcode is not None:
            problems += shortcode_problems(index, shortcode)
    shortcodes = [s.upper() if s else None for s in shortcodes]
    problems += repeated_in_input([(o, n) if n else None for o, n in zip(orgs, names, strict=True)], "name")
    problems += repeated_in_input([(o, s) if s else None for o, s in zip(orgs, shortcodes, strict=True)], "shortcode")
    for column, attribute, values in (("class_name", "name", names), ("shortcode", "shortcode", shortcodes)):
        taken = await taken_in_organizations(info, column, list(zip(orgs, values, strict=True)))
        for index, (class_id, org, value) in enumerate(zip(classes, orgs, values, strict=True)):
            if value and taken.get((org, value), set()) - {class_id}:
                problems.append(InputProblem(
                    DUPLICATE_CHILD_ENTITY,
                    f"On index {index}, Class {value} already exists for Organization {org}.",
                    "Class", attribute, index))
    raise_if_any(reporting_order(problems))
    conn = await context_of(info).db.connection()
    async with conn.transaction():
        await conn.execute(
            "UPDATE class c SET class_name = coalesce(x.n, c.class_name), shortcode = coalesce(x.s, c.shortcode), "
            "updated_at = now() FROM unnest(%s::uuid[], %s::varchar[], %s::varchar[]) AS x(id, n, s) "
            "WHERE c.class_id = x.id",
            [classes, names, shortcodes],
        )
    return {"classes": await class_rows(info, classes)}


# --- deleteClasses ---


@mutation.field("deleteClasses")
async def resolve_delete_classes(_: Any, info: Any, input: list[dict]) -> dict:
    """A soft delete: status inactive and deleted_at; roster and school links stay, the name stays
    taken, reads still return the class (status inactive). A second delete: ERR_NON_EXISTENT_ENTITY."""
    check_input_length(input)
    classes = require_uuids(item["id"] for item in input)
    problems, _ = await missing_parent_problems(info, input, "id", "class", "class_id", "Class")
    orgs = await organizations_of(info, "class", "class_id", classes)
    await require_permission(info, DELETE_CLASS, sorted({o for o in orgs if o}))
    problems += duplicate_problems(input, "id", "Class")
    raise_if_any(reporting_order(problems))
    conn = await context_of(info).db.connection()
    async with conn.transaction():
        cur = await conn.execute(
            "UPDATE class SET status = 'inactive', deleted_at = now(), updated_at = now() "
            "WHERE class_id = ANY(%s::uuid[]) AND status = 'active'",
            [classes],
        )
        if cur.rowcount != len(set(classes)):
            # A concurrent delete got there first: as the real service, the second one is refused.
            raise_if_any([missing("Class", item["id"], index) for index, item in enumerate(input)][:1])
    return {"classes": await class_rows(info, classes)}


BINDABLES = [mutation]
