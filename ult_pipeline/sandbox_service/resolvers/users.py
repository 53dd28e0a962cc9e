"""Users: usersConnection, userNode, the User types, createUsers."""

from __future__ import annotations

import uuid
from typing import Any

from ariadne import MutationType, ObjectType, QueryType

from .. import entities as e
from ..context import context_of
from ..errors import check_input_length
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

query = QueryType()
mutation = MutationType()
user_node = ObjectType("UserConnectionNode")
legacy_user = ObjectType("User")

aliases(
    user_node,
    {"givenName": "given_name", "familyName": "family_name", "dateOfBirth": "date_of_birth"},
)


root_fields(query, e.USER, connection_field="usersConnection", node_field="userNode")


@user_node.field("contactInfo")
def resolve_contact_info(user: dict, _info: Any) -> dict:
    return {"email": user.get("email"), "phone": user.get("phone"), "username": user.get("username")}


@user_node.field("alternateContactInfo")
def resolve_alternate_contact_info(user: dict, _info: Any) -> dict:
    return {"email": user.get("alternate_email"), "phone": user.get("alternate_phone"), "username": None}


@user_node.field("organizationMembershipsConnection")
async def resolve_org_memberships(user: dict, info: Any, **args: Any) -> dict:
    return await connection(info, e.ORGANIZATION_MEMBERSHIP, args, [("om.user_id = %s::uuid", [user["id"]])])


@user_node.field("schoolMembershipsConnection")
async def resolve_school_memberships(user: dict, info: Any, **args: Any) -> dict:
    return await connection(info, e.SCHOOL_MEMBERSHIP, args, [("sm.user_id = %s::uuid", [user["id"]])])


def studying_clause(user_id: str) -> tuple[str, list]:
    return (
        'EXISTS (SELECT 1 FROM user_classes_studying_class x WHERE x."classClassId" = c.class_id '
        'AND x."userUserId" = %s::uuid)',
        [user_id],
    )


def teaching_clause(user_id: str) -> tuple[str, list]:
    return (
        'EXISTS (SELECT 1 FROM user_classes_teaching_class x WHERE x."classClassId" = c.class_id '
        'AND x."userUserId" = %s::uuid)',
        [user_id],
    )


@user_node.field("classesStudyingConnection")
async def resolve_classes_studying(user: dict, info: Any, **args: Any) -> dict:
    return await connection(info, e.CLASS, args, [studying_clause(user["id"])])


@user_node.field("classesTeachingConnection")
async def resolve_classes_teaching(user: dict, info: Any, **args: Any) -> dict:
    return await connection(info, e.CLASS, args, [teaching_clause(user["id"])])


@user_node.field("organizations")
async def resolve_user_organizations(user: dict, info: Any) -> list[dict]:
    rows = await context_of(info).db.fetch_all(
        "SELECT o.organization_id::text AS id, o.organization_name AS name, o.status, "
        'om.join_timestamp AS "joinDate", om.status AS "userStatus", om.shortcode AS "userShortCode" '
        "FROM organization_membership om JOIN organization o ON o.organization_id = om.organization_id "
        "WHERE om.user_id = %s::uuid ORDER BY o.organization_id",
        [user["id"]],
    )
    return rows


@user_node.field("schools")
async def resolve_user_schools(user: dict, info: Any) -> list[dict]:
    return await context_of(info).db.fetch_all(
        'SELECT s.school_id::text AS id, s.school_name AS name, s."organizationOrganizationId"::text '
        'AS "organizationId", s.status, sm.status AS "userStatus" FROM school_membership sm '
        "JOIN school s ON s.school_id = sm.school_id WHERE sm.user_id = %s::uuid ORDER BY s.school_id",
        [user["id"]],
    )


@user_node.field("roles")
async def resolve_user_roles(user: dict, info: Any) -> list[dict]:
    return await context_of(info).db.fetch_all(
        'SELECT r.role_id::text AS id, r.role_name AS name, rm."organizationMembershipOrganizationId"::text '
        'AS "organizationId", NULL AS "schoolId", r.status FROM role_memberships_organization_membership rm '
        'JOIN role r ON r.role_id = rm."roleRoleId" WHERE rm."organizationMembershipUserId" = %s::uuid '
        'UNION ALL SELECT r.role_id::text, r.role_name, NULL, rs."schoolMembershipSchoolId"::text, r.status '
        'FROM role_school_memberships_school_membership rs JOIN role r ON r.role_id = rs."roleRoleId" '
        'WHERE rs."schoolMembershipUserId" = %s::uuid',
        [user["id"], user["id"]],
    )


# --- the deprecated User type ---


def full_name(user: dict) -> str:
    return " ".join(part for part in (user.get("given_name"), user.get("family_name")) if part)


@legacy_user.field("full_name")
@legacy_user.field("user_name")
def resolve_full_name(user: dict, _info: Any) -> str:
    return full_name(user)


@legacy_user.field("memberships")
async def resolve_legacy_memberships(user: dict, info: Any) -> list[dict]:
    return await nodes(info, e.ORGANIZATION_MEMBERSHIP, [("om.user_id = %s::uuid", [user["user_id"]])])


@legacy_user.field("membership")
async def resolve_legacy_membership(user: dict, info: Any, organization_id: str) -> dict | None:
    from ..filters import as_uuid

    org = as_uuid(organization_id)
    if org is None:
        return None
    rows = await nodes(
        info,
        e.ORGANIZATION_MEMBERSHIP,
        [("om.user_id = %s::uuid AND om.organization_id = %s::uuid", [user["user_id"], org])],
    )
    return rows[0] if rows else None


@legacy_user.field("school_memberships")
async def resolve_legacy_school_memberships(user: dict, info: Any) -> list[dict]:
    return await nodes(info, e.SCHOOL_MEMBERSHIP, [("sm.user_id = %s::uuid", [user["user_id"]])])


@legacy_user.field("school_membership")
async def resolve_legacy_school_membership(user: dict, info: Any, school_id: str) -> dict | None:
    from ..filters import as_uuid

    school = as_uuid(school_id)
    if school is None:
        return None
    rows = await nodes(
        info, e.SCHOOL_MEMBERSHIP, [("sm.user_id = %s::uuid AND sm.school_id = %s::uuid", [user["user_id"], school])]
    )
    return rows[0] if rows else None


@legacy_user.field("classesStudying")
async def resolve_legacy_classes_studying(user: dict, info: Any) -> list[dict]:
    return await nodes(info, e.CLASS, [studying_clause(user["user_id"])])


@legacy_user.field("classesTeaching")
async def resolve_legacy_classes_teaching(user: dict, info: Any) -> list[dict]:
    return await nodes(info, e.CLASS, [teaching_clause(user["user_id"])])


@legacy_user.field("organization_ownerships")
async def resolve_ownerships(user: dict, info: Any) -> list[dict]:
    return await context_of(info).db.fetch_all(
        "SELECT user_id::text AS user_id, organization_id::text AS organization_id, status "
        "FROM organization_ownership WHERE user_id = %s::uuid",
        [user["user_id"]],
    )


@legacy_user.field("my_organization")
async def resolve_my_organization(user: dict, info: Any) -> dict | None:
    row = await context_of(info).db.fetch_one(
        'SELECT "myOrganizationOrganizationId"::text AS org FROM "user" WHERE user_id = %s::uuid',
        [user["user_id"]],
    )
    return await optional_node(info, e.ORGANIZATION, row["org"] if row else None)


# --- createUsers ---


def _normalized_email(value: Any) -> str | None:
    if not value:
        return None
    return str(value).strip().lower()


@mutation.field("createUsers")
async def resolve_create_users(_: Any, info: Any, input: list[dict]) -> dict:
    check_input_length(input)
    await require_permission(info, "create_users_40220", None)
    ids = [str(uuid.uuid4()) for _ in input]
    contact = [item.get("contactInfo") or {} for item in input]
    columns = [
        ids,
        [item["givenName"] for item in input],
        [item["familyName"] for item in input],
        [_normalized_email(c.get("email")) for c in contact],
        [c.get("phone") for c in contact],
        [item.get("username") for item in input],
        [item.get("dateOfBirth") for item in input],
        [item["gender"] for item in input],
        [_normalized_email(item.get("alternateEmail")) for item in input],
        [item.get("alternatePhone") for item in input],
    ]
    ctx = context_of(info)
    conn = await ctx.db.connection()
    async with conn.transaction():
        await conn.execute(
            'INSERT INTO "user" (user_id, given_name, family_name, email, phone, username, '
            "date_of_birth, gender, alternate_email, alternate_phone) SELECT * FROM unnest("
            "%s::uuid[], %s::varchar[], %s::varchar[], %s::varchar[], %s::varchar[], %s::varchar[], "
            "%s::varchar[], %s::varchar[], %s::varchar[], %s::varchar[])",
            columns,
        )
    rows = await fetch_nodes(ctx.db, e.USER, [("u.user_id = ANY(%s::uuid[])", [ids])])
    return {"users": in_input_order(rows, ids)}


BINDABLES = [query, mutation, user_node, legacy_user]
