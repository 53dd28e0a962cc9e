"""GraphQL filter inputs (`{field: {operator, value}}`, `AND`, `OR`) -> SQL predicates."""

from __future__ import annotations

import uuid

from graphql import GraphQLError

from .entities import USER, Clause, Column, Entity, Relation


def as_uuid(value: object) -> str | None:
    """The canonical text of a UUID, or None when `value` is not one."""
    if not isinstance(value, str):
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _value_for(kind_or_cast: str, value: object) -> object:
    if kind_or_cast in ("uuid", "uuid_exclusive"):
        canonical = as_uuid(value)
        if canonical is None:
            raise GraphQLError(f"Invalid UUID value: {value!r}", extensions={"code": "ERR_INVALID_UUID"})
        return canonical
    return value


def _column_clause(column: Column, leaf: dict) -> Clause:
    operator = leaf.get("operator")
    value = leaf.get("value")
    if column.kind == "string":
        case_insensitive = leaf.get("caseInsensitive")
        if operator == "contains":
            like = "ILIKE" if case_insensitive is not False else "LIKE"
            return f"{column.expr} {like} %s", [f"%{_escape_like(str(value))}%"]
        if case_insensitive:
            expr, placeholder = f"lower({column.expr})", "lower(%s)"
        else:
            expr, placeholder = column.expr, "%s"
        if operator == "eq":
            return f"{expr} = {placeholder}", [value]
        if operator == "neq":
            return f"{expr} IS DISTINCT FROM {placeholder}", [value]
    elif column.kind == "uuid":
        if operator == "eq":
            return f"{column.expr} = %s::uuid", [_value_for("uuid", value)]
        if operator == "neq":
            return f"{column.expr} IS DISTINCT FROM %s::uuid", [_value_for("uuid", value)]
    elif column.kind == "boolean" and operator == "eq":
        return f"{column.expr} = %s", [bool(value)]
    raise GraphQLError(f"Unsupported filter operator {operator!r} for {column.expr}")


def _relation_clause(relation: Relation, leaf: dict) -> Clause:
    operator = leaf.get("operator")
    value = leaf.get("value")
    occurrences = relation.template.count("<cmp>")
    if operator == "isNull":
        if relation.null_template is None:
            raise GraphQLError("isNull is not supported for this filter")
        return relation.null_template, []
    if operator == "contains":
        cmp, param = "ILIKE %s", f"%{_escape_like(str(value))}%"
    elif operator in ("eq", "neq"):
        cmp, param = f"= %s::{relation.cast}", _value_for(relation.cast, value)
    else:
        raise GraphQLError(f"Unsupported filter operator {operator!r}")
    clause = relation.template.replace("<cmp>", cmp)
    if operator == "neq":
        clause = f"NOT ({clause})"
    return clause, [param] * occurrences


def _user_membership_clause(flt: dict) -> Clause | None:
    """organizationId with organizationUserStatus must match the same membership row."""
    org, status = flt.get("organizationId"), flt.get("organizationUserStatus")
    if not (org and status and org.get("operator") == "eq" and status.get("operator") == "eq"):
        return None
    return (
        'EXISTS (SELECT 1 FROM organization_membership f WHERE f."userUserId" = u.user_id '
        'AND f."organizationOrganizationId" = %s::uuid AND f.status = %s)',
        [_value_for("uuid", org.get("value")), status.get("value")],
    )


def filter_clause(entity: Entity, flt: dict | None) -> Clause | None:
    """The predicate for a filter object; its fields AND together."""
    if not flt:
        return None
    parts: list[str] = []
    params: list = []
    skip: set[str] = set()
    if entity is USER:
        combined = _user_membership_clause(flt)
        if combined is not None:
            parts.append(combined[0])
            params.extend(combined[1])
            skip = {"organizationId", "organizationUserStatus"}
    for key, value in flt.items():
        if value is None or key in skip:
            continue
        if key in ("AND", "OR"):
            subclauses = [c for c in (filter_clause(entity, sub) for sub in value) if c]
            if not subclauses:
                continue
            joiner = " AND " if key == "AND" else " OR "
            parts.append(joiner.join(f"({sql})" for sql, _ in subclauses))
            for _, sub_params in subclauses:
                params.extend(sub_params)
            continue
        handler = entity.filters.get(key)
        if handler is None:
            raise GraphQLError(f"The sandbox does not support filtering {entity.name} on {key!r}")
        sql, leaf_params = (
            _column_clause(handler, value) if isinstance(handler, Column) else _relation_clause(handler, value)
        )
        parts.append(sql)
        params.extend(leaf_params)
    if not parts:
        return None
    return " AND ".join(f"({p})" for p in parts), params
