"""Organizations and organization memberships: reads, createOrganizations,
addUsersToOrganizations."""

from __future__ import annotations

import uuid
from typing import Any

from ariadne import MutationType, ObjectType, QueryType

from .. import entities as e
from ..context import context_of
from ..errors import (
    INVALID_MAX_LENGTH,
    USER_ALREADY_OWNS_ORGANIZATION,
    InputProblem,
    PermissionDenied,
    check_input_length,
    duplicates,
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
    require_permission,
    root_fields,
)
from .membership_input import (
    already_linked_problems,
    duplicate_problems,
    inner_length_problems,
    missing_parent_problems,
    missing_user_problems,
    new_shortcode,
    role_problems,
    unique_canonical,
)

MAX_ORGANIZATION_NAME = 30
ORGANIZATION_ADMIN = "Organization Admin"

query = QueryType()
mutation = MutationType()
organization_node = ObjectType("OrganizationConnectionNode")
legacy_organization = ObjectType("Organization")
membership_node = ObjectType("OrganizationMembershipConnectionNode")
legacy_membership = ObjectType("OrganizationMembership")

aliases(organization_node, {"name": "organization_name"})
aliases(
    membership_node,
    {"userId": "user_id", "organizationId": "organization_id", "shortCode": "shortcode", "joinTimestamp": "join_timestamp"},
)


root_fields(query, e.ORGANIZATION, connection_field="organizationsConnection", node_field="organizationNode", legacy_field="organization", legacy_arg="organization_id")


@query.field("organizations")
async def resolve_legacy_organizations(_: Any, info: Any, organization_ids: list[str] | None = None) -> list[dict]:
    extra = [("o.organization_id = ANY(%s::uuid[])", [unique_canonical(organization_ids)])] if organization_ids else []
    return await nodes(info, e.ORGANIZATION, extra, scoped=True)


@organization_node.field("contactInfo")
def resolve_org_contact_info(org: dict, _info: Any) -> dict:
    return {"address1": org.get("address1"), "address2": org.get("address2"), "phone": org.get("phone")}


@organization_node.field("owners")
async def resolve_owners(org: dict, info: Any) -> list[dict]:
    return await context_of(info).db.fetch_all(
        'SELECT u.user_id::text AS id, u.email FROM organization_ownership oo JOIN "user" u '
        "ON u.user_id = oo.user_id WHERE oo.organization_id = %s::uuid",
        [org["id"]],
    )


def _of_org(column: str, org_id: str) -> tuple[str, list]:
    return f"{column} = %s::uuid", [org_id]


@organization_node.field("organizationMembershipsConnection")
async def resolve_org_memberships(org: dict, info: Any, **args: Any) -> dict:
    return await connection(info, e.ORGANIZATION_MEMBERSHIP, args, [_of_org("om.organization_id", org["id"])])


@organization_node.field("schoolsConnection")
async def resolve_org_schools(org: dict, info: Any, **args: Any) -> dict:
    return await connection(info, e.SCHOOL, args, [_of_org('s."organizationOrganizationId"', org["id"])])


@organization_node.field("classesConnection")
async def resolve_org_classes(org: dict, info: Any, **args: Any) -> dict:
    return await connection(info, e.CLASS, args, [_of_org('c."organizationOrganizationId"', org["id"])])


@organization_node.field("rolesConnection")
async def resolve_org_roles(org: dict, info: Any, **args: Any) -> dict:
    return await connection(
        info, e.ROLE, args, [('r.system_role OR r."organizationOrganizationId" = %s::uuid', [org["id"]])]
    )


# --- deprecated Organization ---


@legacy_organization.field("owner")
@legacy_organization.field("primary_contact")
async def resolve_legacy_owner(org: dict, info: Any) -> dict | None:
    rows = await nodes(
        info,
        e.USER,
        [("u.user_id IN (SELECT user_id FROM organization_ownership WHERE organization_id = %s::uuid)", [org["id"]])],
    )
    return rows[0] if rows else None


@legacy_organization.field("memberships")
async def resolve_legacy_org_memberships(org: dict, info: Any) -> list[dict]:
    return await nodes(info, e.ORGANIZATION_MEMBERSHIP, [_of_org("om.organization_id", org["id"])], scoped=True)


@legacy_organization.field("schools")
async def resolve_legacy_org_schools(org: dict, info: Any) -> list[dict]:
    return await nodes(info, e.SCHOOL, [_of_org('s."organizationOrganizationId"', org["id"])], scoped=True)


@legacy_organization.field("classes")
@legacy_organization.field("getClasses")
async def resolve_legacy_org_classes(org: dict, info: Any) -> list[dict]:
    return await nodes(info, e.CLASS, [_of_org('c."organizationOrganizationId"', org["id"])], scoped=True)


@legacy_organization.field("roles")
async def resolve_legacy_org_roles(org: dict, info: Any) -> list[dict]:
    return await nodes(info, e.ROLE, [('r.system_role OR r."organizationOrganizationId" = %s::uuid', [org["id"]])])


# --- memberships (both types) ---


async def membership_permissions(info: Any, user_id: str, organization_id: str) -> frozenset[str]:
    """Permission ids a user holds in an organization, from org roles and school roles."""
    ctx = context_of(info)
    if user_id == ctx.user_id:
        return (await ctx.scope()).org_permissions.get(organization_id, frozenset())
    key = ("permissions", user_id, organization_id)
    if key not in ctx.memo:
        rows = await ctx.db.fetch_all(
            'SELECT DISTINCT prr."permissionPermissionId" AS p FROM permission_roles_role prr '
            'WHERE prr."roleRoleId" IN ('
            'SELECT rm."roleRoleId" FROM role_memberships_organization_membership rm '
            'WHERE rm."organizationMembershipUserId" = %s::uuid AND rm."organizationMembershipOrganizationId" = %s::uuid '
            'UNION SELECT rs."roleRoleId" FROM role_school_memberships_school_membership rs '
            'JOIN school sc ON sc.school_id = rs."schoolMembershipSchoolId" '
            'WHERE rs."schoolMembershipUserId" = %s::uuid AND sc."organizationOrganizationId" = %s::uuid)',
            [user_id, organization_id, user_id, organization_id],
        )
        ctx.memo[key] = frozenset(row["p"] for row in rows)
    return ctx.memo[key]


def _membership_roles_clause(membership: dict) -> tuple[str, list]:
    return (
        "r.role_id IN (SELECT rm.\"roleRoleId\" FROM role_memberships_organization_membership rm "
        'WHERE rm."organizationMembershipUserId" = %s::uuid AND rm."organizationMembershipOrganizationId" = %s::uuid)',
        [membership["user_id"], membership["organization_id"]],
    )


membership_fields(membership_node, legacy_membership, parent_field="organization", parent=e.ORGANIZATION,
                  parent_key="organization_id", roles_clause=_membership_roles_clause)


@legacy_membership.field("checkAllowed")
async def resolve_check_allowed(membership: dict, info: Any, permission_name: str) -> bool:
    return permission_name in await membership_permissions(info, membership["user_id"], membership["organization_id"])


@legacy_membership.field("schoolMemberships")
async def resolve_membership_school_memberships(membership: dict, info: Any, permission_name: str | None = None) -> list[dict]:
    if permission_name and permission_name not in await membership_permissions(
        info, membership["user_id"], membership["organization_id"]
    ):
        return []
    return await nodes(
        info,
        e.SCHOOL_MEMBERSHIP,
        [(
            "sm.user_id = %s::uuid AND sm.school_id IN (SELECT school_id FROM school "
            'WHERE "organizationOrganizationId" = %s::uuid)',
            [membership["user_id"], membership["organization_id"]],
        )],
    )


@legacy_membership.field("classesTeaching")
async def resolve_membership_classes_teaching(membership: dict, info: Any) -> list[dict]:
    return await nodes(
        info,
        e.CLASS,
        [(
            'c."organizationOrganizationId" = %s::uuid AND EXISTS (SELECT 1 FROM user_classes_teaching_class x '
            'WHERE x."classClassId" = c.class_id AND x."userUserId" = %s::uuid)',
            [membership["organization_id"], membership["user_id"]],
        )],
    )


# --- createOrganizations ---


@mutation.field("createOrganizations")
async def resolve_create_organizations(_: Any, info: Any, input: list[dict]) -> dict:
    check_input_length(input)
    if not (await context_of(info).scope()).is_admin:
        raise PermissionDenied("createOrganizations needs the API key in the sandbox")
    owners = [as_uuid(item["userId"]) for item in input]
    problems: list[InputProblem] = duplicates([{"userId": o} for o in owners], "userId", "User")
    found = await existing_ids(info, '"user"', "user_id", [o for o in owners if o])
    already = {
        row["id"]
        for row in await context_of(info).db.fetch_all(
            "SELECT user_id::text AS id FROM organization_ownership WHERE status = 'active' "
            "AND user_id = ANY(%s::uuid[])",
            [[o for o in owners if o]],
        )
    }
    for index, (item, owner) in enumerate(zip(input, owners, strict=True)):
        if owner not in found:
            problems.append(missing("User", item["userId"], index, "userId"))
        elif owner in already:
            problems.append(
                InputProblem(
                    USER_ALREADY_OWNS_ORGANIZATION,
                    f"On index {index}, User {owner} already owns an organization; a user may own one.",
                    "User",
                    "userId",
                    index,
                )
            )
        if len(item["organizationName"]) > MAX_ORGANIZATION_NAME:
            problems.append(
                InputProblem(
                    INVALID_MAX_LENGTH,
                    f"On index {index}, Organization organizationName must not be greater than "
                    f"{MAX_ORGANIZATION_NAME} characters.",
                    "Organization",
                    "organizationName",
                    index,
                )
            )
    raise_if_any(problems)
    org_ids = [str(uuid.uuid4()) for _ in input]
    shortcodes = [item.get("shortcode") or new_shortcode() for item in input]
    member_codes = [new_shortcode() for _ in input]
    ctx = context_of(info)
    conn = await ctx.db.connection()
    async with conn.transaction():
        await conn.execute(
            'INSERT INTO organization (organization_id, organization_name, address1, address2, phone, "shortCode", '
            '"primaryContactUserId") SELECT * FROM unnest(%s::uuid[], %s::varchar[], %s::varchar[], '
            "%s::varchar[], %s::varchar[], %s::varchar[], %s::uuid[])",
            [
                org_ids,
                [item["organizationName"] for item in input],
                [item.get("address1") for item in input],
                [item.get("address2") for item in input],
                [item.get("phone") for item in input],
                shortcodes,
                owners,
            ],
        )
        await conn.execute(
            "INSERT INTO organization_ownership (user_id, organization_id) "
            "SELECT * FROM unnest(%s::uuid[], %s::uuid[])",
            [owners, org_ids],
        )
        await conn.execute(
            'INSERT INTO organization_membership (user_id, organization_id, "userUserId", '
            '"organizationOrganizationId", shortcode) SELECT u, o, u, o, s '
            "FROM unnest(%s::uuid[], %s::uuid[], %s::varchar[]) AS x(u, o, s)",
            [owners, org_ids, member_codes],
        )
        await conn.execute(
            'INSERT INTO role_memberships_organization_membership ("roleRoleId", '
            '"organizationMembershipUserId", "organizationMembershipOrganizationId") '
            "SELECT r.role_id, x.u, x.o FROM unnest(%s::uuid[], %s::uuid[]) AS x(u, o) "
            "JOIN role r ON r.role_name = %s AND r.system_role AND r.\"organizationOrganizationId\" IS NULL",
            [owners, org_ids, ORGANIZATION_ADMIN],
        )
        await conn.execute(
            'UPDATE "user" SET "myOrganizationOrganizationId" = x.o FROM unnest(%s::uuid[], %s::uuid[]) '
            "AS x(u, o) WHERE user_id = x.u",
            [owners, org_ids],
        )
    rows = await fetch_nodes(ctx.db, e.ORGANIZATION, [("o.organization_id = ANY(%s::uuid[])", [org_ids])])
    return {"organizations": in_input_order(rows, org_ids)}


# --- addUsersToOrganizations ---


@mutation.field("addUsersToOrganizations")
async def resolve_add_users_to_organizations(_: Any, info: Any, input: list[dict]) -> dict:
    check_input_length(input)
    problems = inner_length_problems(input, ("organizationRoleIds", "userIds"))
    raise_if_any(problems)
    orgs = [as_uuid(item["organizationId"]) for item in input]
    await require_permission(info, "send_invitation_40882", [o or "" for o in orgs])
    problems = duplicate_problems(input, "organizationId", "Organization")
    parent_problems, orgs = await missing_parent_problems(
        info, input, "organizationId", "organization", "organization_id", "Organization"
    )
    problems += parent_problems
    problems += await missing_user_problems(info, input, "userIds")
    problems += await role_problems(info, input, "organizationRoleIds", orgs)
    problems += await already_linked_problems(
        info, input, "userIds", orgs, table="organization_membership", child_column="user_id",
        parent_column="organization_id", entity="User", parent_entity="Organization", parent_key="organizationId",
        active_only=True,
    )
    raise_if_any(problems)
    users_col, orgs_col, codes_col, role_rows = [], [], [], ([], [], [])
    for item, org in zip(input, orgs, strict=True):
        for user in unique_canonical(item["userIds"]):
            users_col.append(user)
            orgs_col.append(org)
            codes_col.append(item.get("shortcode") or new_shortcode())
            for role in unique_canonical(item["organizationRoleIds"]):
                role_rows[0].append(role)
                role_rows[1].append(user)
                role_rows[2].append(org)
    conn = await context_of(info).db.connection()
    async with conn.transaction():
        await conn.execute(
            'INSERT INTO organization_membership (user_id, organization_id, "userUserId", '
            '"organizationOrganizationId", shortcode) SELECT u, o, u, o, s '
            "FROM unnest(%s::uuid[], %s::uuid[], %s::varchar[]) AS x(u, o, s) "
            # An inactive member is "added" without change: the real service leaves it inactive.
            "ON CONFLICT (user_id, organization_id) DO NOTHING",
            [users_col, orgs_col, codes_col],
        )
        await conn.execute(
            'INSERT INTO role_memberships_organization_membership ("roleRoleId", '
            '"organizationMembershipUserId", "organizationMembershipOrganizationId") '
            "SELECT * FROM unnest(%s::uuid[], %s::uuid[], %s::uuid[]) ON CONFLICT DO NOTHING",
            list(role_rows),
        )
    rows = await fetch_nodes(context_of(info).db, e.ORGANIZATION, [("o.organization_id = ANY(%s::uuid[])", [orgs])])
    return {"organizations": in_input_order(rows, [o for o in orgs if o])}


BINDABLES = [query, mutation, organization_node, legacy_organization, membership_node, legacy_membership]
