"""Roles and permissions: rolesConnection, permissionsConnection and node lookups."""

from __future__ import annotations

from typing import Any

from ariadne import ObjectType, QueryType

from .. import entities as e
from .common import aliases, connection, node_by_id, nodes, optional_node, root_fields

query = QueryType()
role_node = ObjectType("RoleConnectionNode")
legacy_role = ObjectType("Role")
permission_node = ObjectType("PermissionsConnectionNode")

aliases(role_node, {"name": "role_name", "description": "role_description", "system": "system_role"})
aliases(
    permission_node,
    {
        "name": "permission_name",
        "category": "permission_category",
        "group": "permission_group",
        "level": "permission_level",
        "description": "permission_description",
    },
)


def _role_permissions_clause(role_id: str) -> tuple[str, list]:
    return (
        'EXISTS (SELECT 1 FROM permission_roles_role x WHERE x."permissionPermissionId" = p.permission_id '
        'AND x."roleRoleId" = %s::uuid)',
        [role_id],
    )


root_fields(query, e.ROLE, connection_field="rolesConnection", node_field="roleNode", legacy_field="role", legacy_arg="role_id")


@query.field("roles")
async def resolve_legacy_roles(_: Any, info: Any) -> list[dict]:
    return await nodes(info, e.ROLE, [], scoped=True)


@query.field("permissionsConnection")
async def resolve_permissions_connection(_: Any, info: Any, **args: Any) -> dict:
    return await connection(info, e.PERMISSION, args)


@query.field("permissionNode")
async def resolve_permission_node(_: Any, info: Any, id: str) -> dict:
    return await node_by_id(info, e.PERMISSION, id)


@role_node.field("permissionsConnection")
async def resolve_role_permissions_connection(role: dict, info: Any, **args: Any) -> dict:
    return await connection(info, e.PERMISSION, args, [_role_permissions_clause(role["id"])])


@permission_node.field("rolesConnection")
async def resolve_permission_roles_connection(permission: dict, info: Any, **args: Any) -> dict:
    return await connection(
        info,
        e.ROLE,
        args,
        [(
            'EXISTS (SELECT 1 FROM permission_roles_role x WHERE x."roleRoleId" = r.role_id '
            'AND x."permissionPermissionId" = %s)',
            [permission["id"]],
        )],
    )


@legacy_role.field("permissions")
async def resolve_legacy_role_permissions(role: dict, info: Any) -> list[dict]:
    return await nodes(info, e.PERMISSION, [_role_permissions_clause(role["id"])])


@legacy_role.field("permission")
async def resolve_legacy_role_permission(role: dict, info: Any, permission_name: str) -> dict | None:
    rows = await nodes(
        info, e.PERMISSION, [_role_permissions_clause(role["id"]), ("p.permission_name = %s", [permission_name])]
    )
    return rows[0] if rows else None


@legacy_role.field("organization")
async def resolve_legacy_role_organization(role: dict, info: Any) -> dict | None:
    return await optional_node(info, e.ORGANIZATION, role.get("organization_id"))


@legacy_role.field("memberships")
async def resolve_legacy_role_memberships(role: dict, info: Any) -> list[dict]:
    return await nodes(
        info,
        e.ORGANIZATION_MEMBERSHIP,
        [(
            'EXISTS (SELECT 1 FROM role_memberships_organization_membership x WHERE x."roleRoleId" = %s::uuid '
            'AND x."organizationMembershipUserId" = om.user_id '
            'AND x."organizationMembershipOrganizationId" = om.organization_id)',
            [role["id"]],
        )],
        scoped=True,
    )


BINDABLES = [query, role_node, legacy_role, permission_node]
