"""User writes as the real service 4.5.0 does them (MUTATIONS.md): updateUsers, membership status
(remove / reactivate / delete users from organizations and schools) and roles on a membership
(add / remove organization and school roles).

Like the other list-input mutations: outer length, malformed UUIDs (PostgreSQL's message, as the
real service passes it on), permission, every element validated and every bad element reported,
then one transaction; any problem writes nothing. Nothing here is idempotent:
a repeated remove, reactivate, delete, role add or role remove is refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ariadne import MutationType

from .. import entities as e
from ..context import context_of
from ..errors import (
    DUPLICATE_INPUT_ATTRIBUTE_VALUE,
    INVALID_MAX_LENGTH,
    InputProblem,
    check_input_length,
    duplicate_child,
    missing,
    missing_child,
    raise_if_any,
)
from ..filters import as_uuid
from ..paging import fetch_nodes
from .class_writes import reporting_order, require_uuids
from .common import existing_ids, in_input_order, require_permission
from .membership_input import (
    duplicate_problems,
    inner_length_problems,
    missing_parent_problems,
    organizations_of,
    role_problems,
    unique_canonical,
)

REQUIRES_AT_LEAST_ONE = "ERR_REQUIRES_AT_LEAST_ONE"
INVALID_EMAIL = "ERR_INVALID_EMAIL"
INVALID_DATE = "ERR_INVALID_DATE"
INVALID_MIN_LENGTH = "ERR_INVALID_MIN_LENGTH"
DUPLICATE_ENTITY = "ERR_DUPLICATE_ENTITY"
CANNOT_APPLY_CHANGE_TO_SELF = "ERR_USER_CANNOT_APPLY_CHANGE_TO_SELF"

EDIT_USERS = "edit_users_40330"

mutation = MutationType()


# --- updateUsers ---

# UpdateUserInput field -> "user" column, in the order of the UPDATE below.
USER_COLUMNS: dict[str, str] = {
    "givenName": "given_name",
    "familyName": "family_name",
    "email": "email",
    "phone": "phone",
    "username": "username",
    "dateOfBirth": "date_of_birth",
    "gender": "gender",
    "avatar": "avatar",
    "alternateEmail": "alternate_email",
    "alternatePhone": "alternate_phone",
}
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MONTH_YEAR = re.compile(r"^(0[1-9]|1[0-2])-\d{4}$")
GENDER_MIN, GENDER_MAX = 3, 16


def _problem(code: str, index: int, entity: str, attribute: str, text: str) -> InputProblem:
    return InputProblem(code, f"On index {index}, {text}", entity, attribute, index)


def _email(value: Any) -> str | None:
    """Emails are stored trimmed and lower-cased (as createUsers); empty means "keep"."""
    return str(value).strip().lower() if value else None


def _field_problems(index: int, item: dict) -> list[InputProblem]:
    problems = []
    if not any(item.get(name) is not None for name in (*USER_COLUMNS, "primaryUser")):
        problems.append(_problem(
            REQUIRES_AT_LEAST_ONE, index, "User", "id",
            f"UpdateUserInput requires at least one of {', '.join([*USER_COLUMNS, 'primaryUser'])}.",
        ))
    for name in ("email", "alternateEmail"):
        value = item.get(name)
        if value and not EMAIL.match(str(value).strip()):
            problems.append(_problem(INVALID_EMAIL, index, "User", name, f"User {name} {value} is not a valid email."))
    birth = item.get("dateOfBirth")
    if birth and not MONTH_YEAR.match(birth):
        problems.append(_problem(INVALID_DATE, index, "User", "dateOfBirth",
                                 f"User dateOfBirth {birth} must be a date in MM-YYYY format."))
    gender = item.get("gender")
    if gender and len(gender) < GENDER_MIN:
        problems.append(_problem(INVALID_MIN_LENGTH, index, "User", "gender",
                                 f"User gender must not be less than {GENDER_MIN} characters."))
    elif gender and len(gender) > GENDER_MAX:
        problems.append(_problem(INVALID_MAX_LENGTH, index, "User", "gender",
                                 f"User gender must not be greater than {GENDER_MAX} characters."))
    return problems


def _merged(stored: dict, item: dict) -> dict:
    """The row after the update: empty or missing fields keep the stored value."""
    row = dict(stored)
    for name, column in USER_COLUMNS.items():
        value = _email(item.get(name)) if name in ("email", "alternateEmail") else item.get(name)
        if value:
            row[column] = value
    return row


async def _taken_identity_problems(info: Any, items: list[tuple[int, str, dict]]) -> list[InputProblem]:
    """ERR_DUPLICATE_ENTITY: another user already has the same given and family name with the
    same email, phone or username."""
    if not items:
        return []
    rows = await context_of(info).db.fetch_all(
        'SELECT x.i FROM "user" u JOIN unnest(%s::int[], %s::uuid[], %s::varchar[], '
        "%s::varchar[], %s::varchar[], %s::varchar[], %s::varchar[]) AS x(i, id, g, f, m, p, n) "
        "ON u.given_name = x.g AND u.family_name = x.f AND u.user_id <> x.id "
        "AND (u.email = x.m OR u.phone = x.p OR u.username = x.n) WHERE u.status = 'active'",
        [
            [index for index, _, _ in items],
            [user for _, user, _ in items],
            *([row.get(column) for _, _, row in items] for column in ("given_name", "family_name", "email",
                                                                       "phone", "username")),
        ],
    )
    clashes = {row["i"] for row in rows}
    return [
        _problem(DUPLICATE_ENTITY, index, "User", "id",
                 f"User {row.get('given_name')} {row.get('family_name')} already exists.")
        for index, _, row in items
        if index in clashes
    ]


@mutation.field("updateUsers")
async def resolve_update_users(_: Any, info: Any, input: list[dict]) -> dict:
    check_input_length(input)
    require_uuids(item["id"] for item in input)
    # In *any* organization; the targets are not checked (MUTATIONS.md).
    await require_permission(info, EDIT_USERS, None)
    ids = [as_uuid(item["id"]) for item in input]
    problems = duplicate_problems(input, "id", "User")
    ctx = context_of(info)
    stored = {
        row["id"]: row
        for row in await fetch_nodes(ctx.db, e.USER, [
            ("u.user_id = ANY(%s::uuid[]) AND u.status = 'active'", [[i for i in ids if i]]),
        ])
    }
    merged: list[tuple[int, str, dict]] = []
    for index, (item, user) in enumerate(zip(input, ids, strict=True)):
        if user not in stored:
            problems.append(missing("User", item["id"], index, "id"))
        field_problems = _field_problems(index, item)
        problems += field_problems
        if user in stored and not field_problems:
            merged.append((index, user, _merged(stored[user], item)))
    problems += await _taken_identity_problems(info, merged)
    raise_if_any(reporting_order(problems))
    columns = [
        list(ids),
        *([_email(item.get(name)) if name in ("email", "alternateEmail") else (item.get(name) or None)
           for item in input] for name in USER_COLUMNS),
        [item.get("primaryUser") for item in input],
    ]
    assignments = ", ".join(f"{column} = coalesce(x.{column}, u.{column})" for column in USER_COLUMNS.values())
    casts = ", ".join(["%s::uuid[]", *["%s::varchar[]"] * len(USER_COLUMNS), "%s::boolean[]"])
    conn = await ctx.db.connection()
    async with conn.transaction():
        await conn.execute(
            f'UPDATE "user" u SET {assignments}, "primary" = coalesce(x.primary_user, u."primary"), '
            f"updated_at = now() FROM unnest({casts}) AS x(id, {', '.join(USER_COLUMNS.values())}, primary_user) "
            "WHERE u.user_id = x.id",
            columns,
        )
    rows = await fetch_nodes(ctx.db, e.USER, [("u.user_id = ANY(%s::uuid[])", [ids])])
    return {"users": in_input_order(rows, unique_canonical(ids))}


# --- membership status: remove / reactivate / delete users from organizations and schools ---


@dataclass(frozen=True)
class Parent:
    """Where memberships live: an organization or a school."""

    entity: e.Entity
    key: str  # input field: organizationId / schoolId
    table: str
    id_column: str
    membership_table: str
    result: str  # the mutation result's list field


ORGANIZATION = Parent(e.ORGANIZATION, "organizationId", "organization", "organization_id", "organization_membership",
                      "organizations")
SCHOOL = Parent(e.SCHOOL, "schoolId", "school", "school_id", "school_membership", "schools")


async def _existing_parents(info: Any, input: list[dict], parent: Parent) -> tuple[list[InputProblem], list[str | None]]:
    """ERR_NON_EXISTENT_ENTITY for unknown or inactive parents, and each element's parent id
    (None where it was refused)."""
    problems, parents = await missing_parent_problems(
        info, input, parent.key, parent.table, parent.id_column, parent.entity.name
    )
    refused = {p.index for p in problems}
    return problems, [None if index in refused else p for index, p in enumerate(parents)]


async def _parent_orgs(info: Any, parent: Parent, parents: list[str | None]) -> list[str | None]:
    if parent is ORGANIZATION:
        return list(parents)
    return await organizations_of(info, parent.table, parent.id_column, parents)


async def _memberships(info: Any, parent: Parent, pairs: Iterable[tuple[str, str]], statuses: tuple[str, ...]) -> set:
    """The (user, parent) pairs among `pairs` whose membership has one of `statuses`."""
    pairs = list(pairs)
    if not pairs:
        return set()
    rows = await context_of(info).db.fetch_all(
        f"SELECT user_id::text AS u, {parent.id_column}::text AS p FROM {parent.membership_table} "
        f"WHERE (user_id, {parent.id_column}) IN (SELECT * FROM unnest(%s::uuid[], %s::uuid[])) "
        "AND status = ANY(%s::varchar[])",
        [[u for u, _ in pairs], [p for _, p in pairs], list(statuses)],
    )
    return {(row["u"], row["p"]) for row in rows}


async def _change_status(info: Any, input: list[dict], parent: Parent, permission: str,
                         from_statuses: tuple[str, ...], to_status: str) -> dict:
    check_input_length(input)
    require_uuids([*(item[parent.key] for item in input), *(u for item in input for u in item["userIds"])])
    parent_problems, parents = await _existing_parents(info, input, parent)
    orgs = await _parent_orgs(info, parent, parents)
    await require_permission(info, permission, [o for o in orgs if o])
    overall = inner_length_problems(input, ("userIds",)) + duplicate_problems(input, parent.key, parent.entity.name)
    skipped = {p.index for p in overall}
    problems = overall + parent_problems
    ctx = context_of(info)
    caller = None if (await ctx.scope()).is_admin else ctx.user_id
    checked = [
        (index, item, parent_id) for index, (item, parent_id) in enumerate(zip(input, parents, strict=True))
        if index not in skipped and parent_id
    ]
    wanted_users = unique_canonical([u for _, item, _ in checked for u in item["userIds"]])
    found_users = await existing_ids(info, '"user"', "user_id", wanted_users)
    wanted = {(as_uuid(u), parent_id) for _, item, parent_id in checked for u in item["userIds"] if as_uuid(u)}
    in_state = await _memberships(info, parent, wanted, from_statuses)
    for index, item, parent_id in checked:
        for user in item["userIds"]:
            canonical = as_uuid(user)
            if canonical not in found_users:
                problems.append(missing("User", user, index, "userIds"))
            elif caller is not None and canonical == caller:
                problems.append(_problem(CANNOT_APPLY_CHANGE_TO_SELF, index, "User", "userIds",
                                         f"User {user} cannot apply this change to themselves."))
            elif (canonical, parent_id) not in in_state:
                problems.append(missing_child("User", user, parent.entity.name, item[parent.key], index))
    raise_if_any(reporting_order(problems))
    pairs = [(user, parent_id) for _, item, parent_id in checked for user in unique_canonical(item["userIds"])]
    deleted = ", deleted_at = now()" if to_status == "deleted" else ""
    conn = await ctx.db.connection()
    async with conn.transaction():
        await conn.execute(
            f"UPDATE {parent.membership_table} SET status = %s{deleted} "
            f"WHERE (user_id, {parent.id_column}) IN (SELECT * FROM unnest(%s::uuid[], %s::uuid[]))",
            [to_status, [u for u, _ in pairs], [p for _, p in pairs]],
        )
    entity = parent.entity
    rows = await fetch_nodes(ctx.db, entity, [(f"{entity.id_expr} = ANY(%s::uuid[])", [parents])])
    return {parent.result: in_input_order(rows, [p for p in parents if p])}


ACTIVE, INACTIVE, DELETED = "active", "inactive", "deleted"
# (mutation, where, permission, from statuses, to status)
STATUS_CHANGES = (
    ("removeUsersFromOrganizations", ORGANIZATION, "deactivate_user_40883", (ACTIVE,), INACTIVE),
    ("reactivateUsersFromOrganizations", ORGANIZATION, "reactivate_user_40884", (INACTIVE,), ACTIVE),
    ("deleteUsersFromOrganizations", ORGANIZATION, "delete_users_40440", (ACTIVE, INACTIVE), DELETED),
    ("removeUsersFromSchools", SCHOOL, "deactivate_my_school_user_40885", (ACTIVE,), INACTIVE),
    ("reactivateUsersFromSchools", SCHOOL, "reactivate_my_school_user_40886", (INACTIVE,), ACTIVE),
    ("deleteUsersFromSchools", SCHOOL, "delete_my_school_users_40441", (ACTIVE, INACTIVE), DELETED),
)


def _status_resolver(parent: Parent, permission: str, from_statuses: tuple[str, ...], to_status: str) -> Any:
    async def resolve(_: Any, info: Any, input: list[dict]) -> dict:
        return await _change_status(info, input, parent, permission, from_statuses, to_status)

    return resolve


for _name, _parent, _permission, _from, _to in STATUS_CHANGES:
    mutation.set_field(_name, _status_resolver(_parent, _permission, _from, _to))


# --- roles on a membership: add / remove organization and school roles ---


@dataclass(frozen=True)
class RoleLink:
    parent: Parent
    table: str
    user_column: str
    parent_column: str


ORGANIZATION_ROLES = RoleLink(ORGANIZATION, "role_memberships_organization_membership",
                              "organizationMembershipUserId", "organizationMembershipOrganizationId")
SCHOOL_ROLES = RoleLink(SCHOOL, "role_school_memberships_school_membership",
                        "schoolMembershipUserId", "schoolMembershipSchoolId")


async def _held_roles(info: Any, link: RoleLink, triples: list[tuple[str, str, str]]) -> set:
    if not triples:
        return set()
    rows = await context_of(info).db.fetch_all(
        f'SELECT "roleRoleId"::text AS r, "{link.user_column}"::text AS u, "{link.parent_column}"::text AS p '
        f'FROM {link.table} WHERE ("roleRoleId", "{link.user_column}", "{link.parent_column}") IN '
        "(SELECT * FROM unnest(%s::uuid[], %s::uuid[], %s::uuid[]))",
        [[r for r, _, _ in triples], [u for _, u, _ in triples], [p for _, _, p in triples]],
    )
    return {(row["r"], row["u"], row["p"]) for row in rows}


async def _change_roles(info: Any, input: list[dict], link: RoleLink, *, add: bool) -> dict:
    check_input_length(input)
    parent = link.parent
    require_uuids([*(item[parent.key] for item in input), *(item["userId"] for item in input),
                   *(r for item in input for r in item["roleIds"])])
    parent_problems, parents = await _existing_parents(info, input, parent)
    orgs = await _parent_orgs(info, parent, parents)
    await require_permission(info, EDIT_USERS, [o for o in orgs if o])
    problems = inner_length_problems(input, ("roleIds",))
    seen: set = set()
    for index, (item, parent_id) in enumerate(zip(input, parents, strict=True)):
        pair = (parent_id or item[parent.key], as_uuid(item["userId"]) or item["userId"])
        if pair in seen:
            problems.append(_problem(
                DUPLICATE_INPUT_ATTRIBUTE_VALUE, index, "User", "userId",
                f"{parent.entity.name} {item[parent.key]} and User {item['userId']} appear more than once.",
            ))
        seen.add(pair)
    skipped = {p.index for p in problems}
    problems += parent_problems
    users = [as_uuid(item["userId"]) for item in input]
    found_users = await existing_ids(info, '"user"', "user_id", [u for u in users if u])
    members = await _memberships(
        info, parent, [(u, p) for u, p in zip(users, parents, strict=True) if u and p], (ACTIVE,)
    )
    role_refusals = await role_problems(info, input, "roleIds", orgs)
    problems += role_refusals
    refused_roles = set(role_refusals)
    triples = [
        (as_uuid(r), user, parent_id)
        for item, user, parent_id in zip(input, users, parents, strict=True)
        for r in item["roleIds"] if as_uuid(r) and user and parent_id
    ]
    held = await _held_roles(info, link, triples)  # type: ignore[arg-type]
    changes: list[tuple[str, str, str]] = []
    for index, (item, user, parent_id) in enumerate(zip(input, users, parents, strict=True)):
        if index in skipped or not parent_id:
            continue
        if user not in found_users:
            problems.append(missing("User", item["userId"], index, "userId"))
            continue
        if (user, parent_id) not in members:
            problems.append(missing_child("User", item["userId"], parent.entity.name, item[parent.key], index))
            continue
        membership = f"{parent.entity.name}Membership"
        for role in unique_canonical(item["roleIds"]):
            if any(missing("Role", r, index, "roleIds") in refused_roles
                   for r in item["roleIds"] if as_uuid(r) == role):
                continue
            if add and (role, user, parent_id) in held:
                problems.append(duplicate_child("Role", role, membership, f"{user}/{parent_id}", index))
            elif not add and (role, user, parent_id) not in held:
                problems.append(missing_child("Role", role, membership, f"{user}/{parent_id}", index))
            else:
                changes.append((role, user, parent_id))
    raise_if_any(reporting_order(problems))
    columns = [[r for r, _, _ in changes], [u for _, u, _ in changes], [p for _, _, p in changes]]
    target = f'("roleRoleId", "{link.user_column}", "{link.parent_column}")'
    ctx = context_of(info)
    conn = await ctx.db.connection()
    async with conn.transaction():
        if add:
            await conn.execute(
                f"INSERT INTO {link.table} {target} SELECT * FROM unnest(%s::uuid[], %s::uuid[], %s::uuid[]) "
                "ON CONFLICT DO NOTHING",
                columns,
            )
        else:
            await conn.execute(
                f"DELETE FROM {link.table} WHERE {target} IN "
                "(SELECT * FROM unnest(%s::uuid[], %s::uuid[], %s::uuid[]))",
                columns,
            )
    rows = await fetch_nodes(ctx.db, e.USER, [("u.user_id = ANY(%s::uuid[])", [users])])
    return {"users": in_input_order(rows, unique_canonical(users))}


ROLE_CHANGES = (
    ("addOrganizationRolesToUsers", ORGANIZATION_ROLES, True),
    ("removeOrganizationRolesFromUsers", ORGANIZATION_ROLES, False),
    ("addSchoolRolesToUsers", SCHOOL_ROLES, True),
    ("removeSchoolRolesFromUsers", SCHOOL_ROLES, False),
)


def _roles_resolver(link: RoleLink, add: bool) -> Any:
    async def resolve(_: Any, info: Any, input: list[dict]) -> dict:
        return await _change_roles(info, input, link, add=add)

    return resolve


for _name, _link, _add in ROLE_CHANGES:
    mutation.set_field(_name, _roles_resolver(_link, _add))


BINDABLES = [mutation]
