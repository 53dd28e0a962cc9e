"""The caller's own views: myUser (current) and me / my_users (deprecated)."""

from __future__ import annotations

from typing import Any

from ariadne import ObjectType, QueryType

from .. import entities as e
from ..context import context_of
from ..filters import as_uuid
from .common import connection, node_by_id, nodes, optional_node
from .organizations import membership_permissions

query = QueryType()
my_user = ObjectType("MyUser")


@query.field("myUser")
def resolve_my_user(_: Any, _info: Any) -> dict:
    # MyUser's fields all work from the caller's identity in the context.
    return {}


@query.field("me")
async def resolve_me(_: Any, info: Any) -> dict | None:
    user_id = context_of(info).user_id
    if user_id is None:
        return None
    return await optional_node(info, e.USER, user_id)


def _profiles_clause(info: Any) -> tuple[str, list] | None:
    """Username takes precedence over email, as the real service documents."""
    identity = context_of(info).identity
    if identity.username:
        return "u.username = %s", [identity.username]
    if identity.email:
        return "lower(u.email) = lower(%s)", [identity.email]
    return None


@query.field("my_users")
async def resolve_my_users(_: Any, info: Any) -> list[dict]:
    clause = _profiles_clause(info)
    return [] if clause is None else await nodes(info, e.USER, [clause])


@my_user.field("node")
async def resolve_node(_: Any, info: Any) -> dict | None:
    user_id = context_of(info).user_id
    if user_id is None:
        return None
    return await node_by_id(info, e.USER, user_id, scoped=False)


@my_user.field("profiles")
async def resolve_profiles(_: Any, info: Any) -> list[dict]:
    clause = _profiles_clause(info)
    return [] if clause is None else await nodes(info, e.USER, [clause])


async def _permissions_in_organization(info: Any, organization_id: str) -> frozenset[str] | None:
    """None stands for "everything" (the API key)."""
    ctx = context_of(info)
    if ctx.identity.is_admin:
        return None
    org = as_uuid(organization_id)
    if org is None or ctx.user_id is None:
        return frozenset()
    return await membership_permissions(info, ctx.user_id, org)


async def _permissions_in_school(info: Any, school_id: str) -> frozenset[str] | None:
    ctx = context_of(info)
    if ctx.identity.is_admin:
        return None
    school = await optional_node(info, e.SCHOOL, as_uuid(school_id))
    if school is None or ctx.user_id is None:
        return frozenset()
    return await membership_permissions(info, ctx.user_id, school["organization_id"])


def _statuses(held: frozenset[str] | None, permission_ids: list[str]) -> list[dict]:
    return [{"permissionId": p, "allowed": held is None or p in held} for p in permission_ids]


@my_user.field("hasPermissionsInOrganization")
async def resolve_has_permissions_in_org(_: Any, info: Any, organizationId: str, permissionIds: list[str]) -> list[dict]:
    return _statuses(await _permissions_in_organization(info, organizationId), permissionIds)


@my_user.field("hasPermissionsInSchool")
async def resolve_has_permissions_in_school(_: Any, info: Any, schoolId: str, permissionIds: list[str]) -> list[dict]:
    return _statuses(await _permissions_in_school(info, schoolId), permissionIds)


def _held_clause(held: frozenset[str] | None) -> tuple[str, list] | None:
    return None if held is None else ("p.permission_id = ANY(%s::varchar[])", [sorted(held)])


@my_user.field("permissionsInOrganization")
async def resolve_permissions_in_org(_: Any, info: Any, organizationId: str, **args: Any) -> dict:
    held = await _permissions_in_organization(info, organizationId)
    return await connection(info, e.PERMISSION, args, [_held_clause(held)])


@my_user.field("permissionsInSchool")
async def resolve_permissions_in_school(_: Any, info: Any, schoolId: str, **args: Any) -> dict:
    held = await _permissions_in_school(info, schoolId)
    return await connection(info, e.PERMISSION, args, [_held_clause(held)])


def _orgs_granting(scope: Any, permission_ids: list[str], operator: str | None) -> list[str]:
    need = set(permission_ids)
    if operator == "OR":
        return sorted(o for o, perms in scope.org_permissions.items() if need & perms)
    return sorted(o for o, perms in scope.org_permissions.items() if need <= perms)


@my_user.field("organizationsWithPermissions")
async def resolve_orgs_with_permissions(
    _: Any, info: Any, permissionIds: list[str], operator: str | None = None, **args: Any
) -> dict:
    scope = await context_of(info).scope()
    extra = None if scope.is_admin else ("o.organization_id = ANY(%s::uuid[])", [_orgs_granting(scope, permissionIds, operator)])
    return await connection(info, e.ORGANIZATION, args, [extra])


@my_user.field("schoolsWithPermissions")
async def resolve_schools_with_permissions(
    _: Any, info: Any, permissionIds: list[str], operator: str | None = None, **args: Any
) -> dict:
    scope = await context_of(info).scope()
    extra = None
    if not scope.is_admin:
        orgs = set(_orgs_granting(scope, permissionIds, operator))
        mine = sorted({school for school, org in scope.schools if org in orgs})
        extra = ("s.school_id = ANY(%s::uuid[])", [mine])
    return await connection(info, e.SCHOOL, args, [extra])


BINDABLES = [query, my_user]
