"""Classes: reads. Writes: class_writes.py (create/update/delete), rosters.py (add/remove/move)."""

from __future__ import annotations

from typing import Any

from ariadne import MutationType, ObjectType, QueryType

from .. import entities as e
from .common import (
    aliases,
    connection,
    nodes,
    optional_node,
    root_fields,
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


BINDABLES = [query, mutation, class_node, legacy_class]
