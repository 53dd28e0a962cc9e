"""Shared pieces: scalars, connection and node lookups with the caller's scope."""

from __future__ import annotations

import datetime
from collections.abc import Awaitable, Callable
from typing import Any

from ariadne import ObjectType, ScalarType
from graphql import GraphQLError

from .. import entities as e
from ..context import context_of
from ..entities import Clause, Entity
from ..errors import NON_EXISTENT_ENTITY
from ..filters import as_uuid, filter_clause
from ..paging import fetch_nodes, fetch_page, page_request
from ..scope import Scope

uuid_scalar = ScalarType("UUID")


@uuid_scalar.value_parser
def parse_uuid(value: Any) -> str:
    canonical = as_uuid(value)
    if canonical is None:
        raise GraphQLError(f"Invalid UUID: {value!r}")
    return canonical


date_scalar = ScalarType("Date")


@date_scalar.serializer
def serialize_date(value: Any) -> Any:
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    return value


page_size_scalar = ScalarType("PageSize")


@page_size_scalar.value_parser
def parse_page_size(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise GraphQLError(f"PageSize must be an integer, got {value!r}")
    return value


BINDABLES: list = [uuid_scalar, date_scalar, page_size_scalar]


def visibility(scope: Scope, entity: Entity) -> Clause | None:
    if entity is e.USER:
        return scope.users()
    if entity is e.ORGANIZATION:
        return scope.organizations()
    if entity is e.SCHOOL:
        return scope.schools_predicate()
    if entity is e.CLASS:
        return scope.classes()
    if entity is e.ROLE:
        return scope.roles()
    if entity is e.ORGANIZATION_MEMBERSHIP:
        return scope.organization_memberships()
    if entity is e.SCHOOL_MEMBERSHIP:
        return scope.school_memberships()
    return None


async def connection(info: Any, entity: Entity, args: dict, extra: list[Clause | None] | None = None) -> dict:
    """A connection field, top-level (`directionArgs`) or nested (`count`, `cursor`)."""
    ctx = context_of(info)
    direction_args = args.get("directionArgs") or {}
    page = page_request(
        entity,
        direction=args.get("direction"),
        count=direction_args.get("count", args.get("count")),
        cursor=direction_args.get("cursor", args.get("cursor")),
        sort=args.get("sort"),
    )
    scope = await ctx.scope()
    conditions = [visibility(scope, entity), filter_clause(entity, args.get("filter")), *(extra or [])]
    return await fetch_page(ctx.db, entity, conditions, page)


def non_existent(entity: Entity, entity_id: Any) -> GraphQLError:
    return GraphQLError(
        f"{entity.name} {entity_id} doesn't exist or is inactive.",
        extensions={"code": NON_EXISTENT_ENTITY, "entity": entity.name, "entityName": str(entity_id)},
    )


async def node_by_id(info: Any, entity: Entity, entity_id: Any, *, scoped: bool = True) -> dict:
    """The node the caller may see, or ERR_NON_EXISTENT_ENTITY like the real node loaders."""
    ctx = context_of(info)
    key = as_uuid(entity_id) if entity.id_cast == "uuid" else entity_id
    if key is None:
        raise non_existent(entity, entity_id)
    conditions = [(f"{entity.id_expr} = %s::{entity.id_cast}", [key])]
    if scoped:
        conditions.append(visibility(await ctx.scope(), entity))
    rows = await fetch_nodes(ctx.db, entity, conditions, limit=1)
    if not rows:
        raise non_existent(entity, entity_id)
    return rows[0]


async def optional_node(info: Any, entity: Entity, entity_id: Any) -> dict | None:
    """An unscoped related row (deprecated fields), None when absent."""
    if entity_id is None:
        return None
    memo = context_of(info).memo
    key = (entity.name, str(entity_id))
    if key not in memo:
        rows = await fetch_nodes(
            context_of(info).db, entity, [(f"{entity.id_expr} = %s::{entity.id_cast}", [str(entity_id)])], limit=1
        )
        memo[key] = rows[0] if rows else None
    return memo[key]


async def nodes(info: Any, entity: Entity, extra: list[Clause | None], *, scoped: bool = False) -> list[dict]:
    ctx = context_of(info)
    conditions = list(extra)
    if scoped:
        conditions.append(visibility(await ctx.scope(), entity))
    return await fetch_nodes(ctx.db, entity, conditions)


def aliases(object_type: ObjectType, mapping: dict[str, str]) -> None:
    """Expose row column `source` under GraphQL field `name`."""
    for name, source in mapping.items():
        object_type.set_field(name, _getter(source))


def root_fields(query: ObjectType, entity: Entity, *, connection_field: str, node_field: str,
                legacy_field: str | None = None, legacy_arg: str | None = None) -> None:
    """An entity's root queries: its connection (`organizationsConnection`), its node by id
    (`organizationNode`) and, where the legacy API has one, its legacy lookup by id (`organization`)."""

    async def resolve_connection(_: Any, info: Any, **args: Any) -> dict:
        return await connection(info, entity, args)

    async def resolve_node(_: Any, info: Any, id: str) -> dict:
        return await node_by_id(info, entity, id)

    async def resolve_legacy(_: Any, info: Any, **args: Any) -> dict | None:
        wanted = as_uuid(args[legacy_arg]) or e.NO_ID
        rows = await nodes(info, entity, [(f"{entity.id_expr} = %s::uuid", [wanted])], scoped=True)
        return rows[0] if rows else None

    query.set_field(connection_field, resolve_connection)
    query.set_field(node_field, resolve_node)
    if legacy_field:
        query.set_field(legacy_field, resolve_legacy)


def membership_fields(node: ObjectType, legacy: ObjectType, *, parent_field: str, parent: Entity, parent_key: str,
                      roles_clause: Callable[[dict], Clause]) -> None:
    """The fields an organization or school membership has in both its shapes (the connection node
    and the legacy type): its user, its parent, and its roles (a connection, or a list)."""

    async def resolve_user(membership: dict, info: Any) -> dict | None:
        return await optional_node(info, e.USER, membership["user_id"])

    async def resolve_parent(membership: dict, info: Any) -> dict | None:
        return await optional_node(info, parent, membership[parent_key])

    async def resolve_roles_connection(membership: dict, info: Any, **args: Any) -> dict:
        return await connection(info, e.ROLE, args, [roles_clause(membership)])

    async def resolve_roles(membership: dict, info: Any) -> list[dict]:
        return await nodes(info, e.ROLE, [roles_clause(membership)])

    for shape in (node, legacy):
        shape.set_field("user", resolve_user)
        shape.set_field(parent_field, resolve_parent)
    node.set_field("rolesConnection", resolve_roles_connection)
    legacy.set_field("roles", resolve_roles)


def _getter(source: str) -> Callable[..., Any]:
    def resolve(obj: dict, _info: Any, **_kwargs: Any) -> Any:
        return obj.get(source)

    return resolve


AsyncResolver = Callable[..., Awaitable[Any]]


async def require_permission(info: Any, permission: str, organization_ids: list[str] | None, *,
                             api_key_allowed: bool = True) -> None:
    """The API key may do anything (unless `api_key_allowed` is False: the super-admin role
    lacks that permission, e.g. moveTeachersToClass); a user needs `permission` in each
    organization (or, with `organization_ids=None`, in at least one)."""
    from ..errors import PermissionDenied

    ctx = context_of(info)
    scope = await ctx.scope()
    if scope.is_admin:
        if api_key_allowed:
            return
        lacking = ", ".join(sorted({str(o) for o in organization_ids or [] if o})) or "any"
        raise PermissionDenied(
            f"User({ctx.user_id or 'undefined'}) does not have Permission({permission}) in Organizations({lacking})"
        )
    if organization_ids is None:
        if scope.orgs_with(permission):
            return
        lacking = "any"
    else:
        missing = sorted({o for o in organization_ids if not scope.has_permission(str(o), permission)})
        if not missing:
            return
        lacking = ", ".join(missing)
    raise PermissionDenied(
        f"User({ctx.user_id}) does not have Permission({permission}) in Organizations({lacking})"
    )


def in_input_order(rows: list[dict], ids: list[str], key: str = "id") -> list[dict]:
    by_id = {row[key]: row for row in rows}
    return [by_id[i] for i in ids if i in by_id]


async def existing_ids(info: Any, table: str, id_column: str, ids: list[str]) -> set[str]:
    """Which of `ids` (canonical UUID text) exist and are active in `table`."""
    valid = [i for i in ids if i is not None]
    if not valid:
        return set()
    rows = await context_of(info).db.fetch_all(
        f"SELECT {id_column}::text AS id FROM {table} WHERE {id_column} = ANY(%s::uuid[]) AND status = 'active'",
        [valid],
    )
    return {row["id"] for row in rows}


def canonical_ids(values: list[Any]) -> list[str | None]:
    return [as_uuid(v) for v in values]
