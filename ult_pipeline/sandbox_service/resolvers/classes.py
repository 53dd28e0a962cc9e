"""Classes: reads, createClasses, addStudentsToClasses, addTeachersToClasses."""

from __future__ import annotations

from typing import Any

from ariadne import MutationType, ObjectType, QueryType

from .. import entities as e
from ..context import context_of
from ..errors import check_input_length, raise_if_any
from ..paging import fetch_nodes
from .common import (
    aliases,
    connection,
    in_input_order,
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
    unique_canonical,
)

query = QueryType()
mutation = MutationType()
class_node = ObjectType("ClassConnectionNode")
legacy_class = ObjectType("Class")

aliases(class_node, {"name": "class_name", "shortCode": "shortcode"})


def _members_clause(join_table: str, class_id: str) -> tuple[str, list]:
    return (
        f'EXISTS (SELECT 1 FROM {join_table} x WHERE x."userUserId" = u.user_id AND x."classClassId" = %s::uuid)',
        [class_id],
    )


def _class_schools_clause(class_id: str) -> tuple[str, list]:
    return (
        'EXISTS (SELECT 1 FROM school_classes_class x WHERE x."schoolSchoolId" = s.school_id '
        'AND x."classClassId" = %s::uuid)',
        [class_id],
    )


root_fields(query, e.CLASS, connection_field="classesConnection", node_field="classNode", legacy_field="class", legacy_arg="class_id")


@query.field("classes")
async def resolve_legacy_classes(_: Any, info: Any) -> list[dict]:
    return await nodes(info, e.CLASS, [], scoped=True)


@class_node.field("studentsConnection")
async def resolve_students(cls: dict, info: Any, **args: Any) -> dict:
    return await connection(info, e.USER, args, [_members_clause("user_classes_studying_class", cls["id"])])


@class_node.field("teachersConnection")
async def resolve_teachers(cls: dict, info: Any, **args: Any) -> dict:
    return await connection(info, e.USER, args, [_members_clause("user_classes_teaching_class", cls["id"])])


@class_node.field("schoolsConnection")
async def resolve_class_schools_connection(cls: dict, info: Any, **args: Any) -> dict:
    return await connection(info, e.SCHOOL, args, [_class_schools_clause(cls["id"])])


@class_node.field("schools")
async def resolve_class_school_summaries(cls: dict, info: Any) -> list[dict]:
    rows = await nodes(info, e.SCHOOL, [_class_schools_clause(cls["id"])], scoped=True)
    return [
        {"id": r["id"], "name": r["school_name"], "organizationId": r["organization_id"], "status": r["status"]}
        for r in rows
    ]


@legacy_class.field("organization")
async def resolve_class_organization(cls: dict, info: Any) -> dict | None:
    return await optional_node(info, e.ORGANIZATION, cls["organization_id"])


@legacy_class.field("schools")
async def resolve_legacy_class_schools(cls: dict, info: Any) -> list[dict]:
    return await nodes(info, e.SCHOOL, [_class_schools_clause(cls["id"])], scoped=True)


@legacy_class.field("students")
async def resolve_legacy_students(cls: dict, info: Any) -> list[dict]:
    return await nodes(info, e.USER, [_members_clause("user_classes_studying_class", cls["id"])], scoped=True)


@legacy_class.field("teachers")
async def resolve_legacy_teachers(cls: dict, info: Any) -> list[dict]:
    return await nodes(info, e.USER, [_members_clause("user_classes_teaching_class", cls["id"])], scoped=True)


# --- createClasses ---


@mutation.field("createClasses")
async def resolve_create_classes(_: Any, info: Any, input: list[dict]) -> dict:
    return {"classes": await create_in_organizations(
        info, input, permission="create_class_20224", entity=e.CLASS, table="class", id_column="class_id",
        name_column="class_name", shortcode_key="shortcode", unique_names=True,
    )}


# --- addStudentsToClasses / addTeachersToClasses ---


async def _add_members(info: Any, input: list[dict], users_key: str, join_table: str, permission: str) -> dict:
    check_input_length(input)
    raise_if_any(inner_length_problems(input, (users_key,)))
    problems = duplicate_problems(input, "classId", "Class")
    parent_problems, classes = await missing_parent_problems(info, input, "classId", "class", "class_id", "Class")
    problems += parent_problems
    orgs = await organizations_of(info, "class", "class_id", classes)
    await require_permission(info, permission, [o or "" for o in orgs if o])
    problems += await missing_user_problems(info, input, users_key)
    problems += await non_member_problems(info, input, users_key, orgs, "Class", "classId")
    problems += await already_linked_problems(
        info, input, users_key, classes, table=join_table, child_column="userUserId", parent_column="classClassId",
        entity="User", parent_entity="Class", parent_key="classId",
    )
    raise_if_any(problems)
    pairs: tuple[list, list] = ([], [])
    for item, class_id in zip(input, classes, strict=True):
        for user in unique_canonical(item[users_key]):
            pairs[0].append(user)
            pairs[1].append(class_id)
    conn = await context_of(info).db.connection()
    async with conn.transaction():
        await conn.execute(
            f'INSERT INTO {join_table} ("userUserId", "classClassId") '
            "SELECT * FROM unnest(%s::uuid[], %s::uuid[]) ON CONFLICT DO NOTHING",
            list(pairs),
        )
    rows = await fetch_nodes(context_of(info).db, e.CLASS, [("c.class_id = ANY(%s::uuid[])", [classes])])
    return {"classes": in_input_order(rows, [c for c in classes if c])}


@mutation.field("addStudentsToClasses")
async def resolve_add_students(_: Any, info: Any, input: list[dict]) -> dict:
    return await _add_members(info, input, "studentIds", "user_classes_studying_class", "add_students_to_class_20225")


@mutation.field("addTeachersToClasses")
async def resolve_add_teachers(_: Any, info: Any, input: list[dict]) -> dict:
    return await _add_members(info, input, "teacherIds", "user_classes_teaching_class", "add_teachers_to_class_20226")


BINDABLES = [query, mutation, class_node, legacy_class]
