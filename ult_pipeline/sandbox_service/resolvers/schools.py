"""Schools and school memberships: reads, createSchools, addUsersToSchools,
addClassesToSchools."""

from __future__ import annotations

from typing import Any

from ariadne import MutationType, ObjectType, QueryType

from .. import entities as e
from ..context import context_of
from ..errors import (
    NON_EXISTENT_CHILD_ENTITY,
    InputProblem,
    check_input_length,
    missing,
    raise_if_any,
)
from ..filters import as_uuid
from ..paging import fetch_nodes
from .common import (
    aliases,
    connection,
    existing_ids,
    in_input_order,
    membership_fields,
    nodes,
    optional_node,
    require_permission,
    root_fields,
)
from .create import create_in_organizations
from .membership_input import (
    already_linked_problems,
    duplicate_problems,
    inner_length_problems,
    missing_parent_problems,
    missing_user_problems,
    non_member_problems,
    organizations_of,
    role_problems,
    unique_canonical,
)
from .organizations import membership_permissions

query = QueryType()
mutation = MutationType()
school_node = ObjectType("SchoolConnectionNode")
legacy_school = ObjectType("School")
school_membership_node = ObjectType("SchoolMembershipConnectionNode")
legacy_school_membership = ObjectType("SchoolMembership")

aliases(school_node, {"name": "school_name", "shortCode": "shortcode", "organizationId": "organization_id"})
aliases(school_membership_node, {"userId": "user_id", "schoolId": "school_id", "joinTimestamp": "join_timestamp"})


root_fields(query, e.SCHOOL, connection_field="schoolsConnection", node_field="schoolNode", legacy_field="school", legacy_arg="school_id")


def _school_classes_clause(school_id: str) -> tuple[str, list]:
    return (
        'EXISTS (SELECT 1 FROM school_classes_class x WHERE x."classClassId" = c.class_id '
        'AND x."schoolSchoolId" = %s::uuid)',
        [school_id],
    )


@school_node.field("schoolMembershipsConnection")
async def resolve_school_memberships(school: dict, info: Any, **args: Any) -> dict:
    return await connection(info, e.SCHOOL_MEMBERSHIP, args, [("sm.school_id = %s::uuid", [school["id"]])])


@school_node.field("classesConnection")
async def resolve_school_classes(school: dict, info: Any, **args: Any) -> dict:
    return await connection(info, e.CLASS, args, [_school_classes_clause(school["id"])])


@legacy_school.field("organization")
async def resolve_school_organization(school: dict, info: Any) -> dict | None:
    return await optional_node(info, e.ORGANIZATION, school["organization_id"])


@legacy_school.field("classes")
async def resolve_legacy_school_classes(school: dict, info: Any) -> list[dict]:
    return await nodes(info, e.CLASS, [_school_classes_clause(school["id"])], scoped=True)


@legacy_school.field("memberships")
async def resolve_legacy_school_memberships(school: dict, info: Any) -> list[dict]:
    return await nodes(info, e.SCHOOL_MEMBERSHIP, [("sm.school_id = %s::uuid", [school["id"]])], scoped=True)


@legacy_school.field("membership")
async def resolve_legacy_school_membership(school: dict, info: Any, user_id: str) -> dict | None:
    rows = await nodes(
        info,
        e.SCHOOL_MEMBERSHIP,
        [("sm.school_id = %s::uuid AND sm.user_id = %s::uuid", [school["id"], as_uuid(user_id) or e.NO_ID])],
    )
    return rows[0] if rows else None


def _school_membership_roles_clause(membership: dict) -> tuple[str, list]:
    return (
        'r.role_id IN (SELECT rs."roleRoleId" FROM role_school_memberships_school_membership rs '
        'WHERE rs."schoolMembershipUserId" = %s::uuid AND rs."schoolMembershipSchoolId" = %s::uuid)',
        [membership["user_id"], membership["school_id"]],
    )


membership_fields(school_membership_node, legacy_school_membership, parent_field="school", parent=e.SCHOOL,
                  parent_key="school_id", roles_clause=_school_membership_roles_clause)


@legacy_school_membership.field("checkAllowed")
async def resolve_school_check_allowed(membership: dict, info: Any, permission_name: str) -> bool:
    school = await optional_node(info, e.SCHOOL, membership["school_id"])
    if school is None:
        return False
    return permission_name in await membership_permissions(info, membership["user_id"], school["organization_id"])


# --- createSchools ---


@mutation.field("createSchools")
async def resolve_create_schools(_: Any, info: Any, input: list[dict]) -> dict:
    return {"schools": await create_in_organizations(
        info, input, permission="create_school_20220", entity=e.SCHOOL, table="school", id_column="school_id",
        name_column="school_name", shortcode_key="shortCode",
    )}


# --- addUsersToSchools ---


@mutation.field("addUsersToSchools")
async def resolve_add_users_to_schools(_: Any, info: Any, input: list[dict]) -> dict:
    check_input_length(input)
    raise_if_any(inner_length_problems(input, ("schoolRoleIds", "userIds")))
    problems = duplicate_problems(input, "schoolId", "School")
    parent_problems, schools = await missing_parent_problems(info, input, "schoolId", "school", "school_id", "School")
    problems += parent_problems
    orgs = await organizations_of(info, "school", "school_id", schools)
    await require_permission(info, "edit_school_20330", [o or "" for o in orgs if o])
    problems += await missing_user_problems(info, input, "userIds")
    problems += await role_problems(info, input, "schoolRoleIds", orgs)
    problems += await non_member_problems(info, input, "userIds", orgs, "School", "schoolId")
    problems += await already_linked_problems(
        info, input, "userIds", schools, table="school_membership", child_column="user_id",
        parent_column="school_id", entity="User", parent_entity="School", parent_key="schoolId", active_only=True,
    )
    raise_if_any(problems)
    member_rows: tuple[list, list] = ([], [])
    role_rows: tuple[list, list, list] = ([], [], [])
    for item, school in zip(input, schools, strict=True):
        for user in unique_canonical(item["userIds"]):
            member_rows[0].append(user)
            member_rows[1].append(school)
            for role in unique_canonical(item.get("schoolRoleIds") or []):
                role_rows[0].append(role)
                role_rows[1].append(user)
                role_rows[2].append(school)
    conn = await context_of(info).db.connection()
    async with conn.transaction():
        await conn.execute(
            'INSERT INTO school_membership (user_id, school_id, "userUserId", "schoolSchoolId") '
            "SELECT u, s, u, s FROM unnest(%s::uuid[], %s::uuid[]) AS x(u, s) "
            # An inactive member is "added" without change, as in the real service.
            "ON CONFLICT (user_id, school_id) DO NOTHING",
            list(member_rows),
        )
        await conn.execute(
            'INSERT INTO role_school_memberships_school_membership ("roleRoleId", "schoolMembershipUserId", '
            '"schoolMembershipSchoolId") SELECT * FROM unnest(%s::uuid[], %s::uuid[], %s::uuid[]) '
            "ON CONFLICT DO NOTHING",
            list(role_rows),
        )
    rows = await fetch_nodes(context_of(info).db, e.SCHOOL, [("s.school_id = ANY(%s::uuid[])", [schools])])
    return {"schools": in_input_order(rows, [s for s in schools if s])}


# --- addClassesToSchools ---


@mutation.field("addClassesToSchools")
async def resolve_add_classes_to_schools(_: Any, info: Any, input: list[dict]) -> dict:
    check_input_length(input)
    raise_if_any(inner_length_problems(input, ("classIds",)))
    problems = duplicate_problems(input, "schoolId", "School")
    parent_problems, schools = await missing_parent_problems(info, input, "schoolId", "school", "school_id", "School")
    problems += parent_problems
    orgs = await organizations_of(info, "school", "school_id", schools)
    await require_permission(info, "edit_school_20330", [o or "" for o in orgs if o])
    wanted = unique_canonical([c for item in input for c in item["classIds"]])
    found = await existing_ids(info, "class", "class_id", wanted)
    class_orgs = dict(zip(wanted, await organizations_of(info, "class", "class_id", wanted), strict=True))
    pairs: tuple[list, list] = ([], [])
    for index, (item, school, org) in enumerate(zip(input, schools, orgs, strict=True)):
        for class_id in item["classIds"]:
            canonical = as_uuid(class_id)
            if canonical not in found:
                problems.append(missing("Class", class_id, index, "classIds"))
            elif org and class_orgs.get(canonical) != org:
                problems.append(
                    InputProblem(
                        NON_EXISTENT_CHILD_ENTITY,
                        f"On index {index}, Class {class_id} doesn't exist for Organization {org}.",
                        "Class",
                        "id",
                        index,
                    )
                )
            else:
                pairs[0].append(school)
                pairs[1].append(canonical)
    problems += await already_linked_problems(
        info, input, "classIds", schools, table="school_classes_class", child_column="classClassId",
        parent_column="schoolSchoolId", entity="Class", parent_entity="School", parent_key="schoolId",
    )
    raise_if_any(problems)
    conn = await context_of(info).db.connection()
    async with conn.transaction():
        await conn.execute(
            'INSERT INTO school_classes_class ("schoolSchoolId", "classClassId") '
            "SELECT * FROM unnest(%s::uuid[], %s::uuid[]) ON CONFLICT DO NOTHING",
            list(pairs),
        )
    rows = await fetch_nodes(context_of(info).db, e.SCHOOL, [("s.school_id = ANY(%s::uuid[])", [schools])])
    return {"schools": in_input_order(rows, [s for s in schools if s])}


BINDABLES = [query, mutation, school_node, legacy_school, school_membership_node, legacy_school_membership]
