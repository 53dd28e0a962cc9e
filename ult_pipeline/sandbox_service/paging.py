"""Relay-style connections: keyset pages, opaque base64 cursors, totalCount."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from graphql import GraphQLError

from .db import RequestDb
from .entities import Clause, Entity

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 50


@dataclass(frozen=True)
class PageRequest:
    direction: str = "FORWARD"
    count: int = DEFAULT_PAGE_SIZE
    cursor: list | None = None
    sort_exprs: tuple[str, ...] = ()
    descending: bool = False


def encode_cursor(values: list) -> str:
    text = json.dumps([None if v is None else str(v) for v in values], separators=(",", ":"))
    return base64.b64encode(text.encode()).decode()


def decode_cursor(cursor: str) -> list:
    try:
        values = json.loads(base64.b64decode(cursor.encode(), validate=True))
    except (ValueError, TypeError):
        raise GraphQLError("Invalid cursor", extensions={"code": "ERR_INVALID_CURSOR"}) from None
    if not isinstance(values, list):
        raise GraphQLError("Invalid cursor", extensions={"code": "ERR_INVALID_CURSOR"})
    return values


def _sort_fields(sort: Any) -> tuple[list[str], bool]:
    """A sort input ({field, order}) or a bare sort enum value -> (fields, descending)."""
    if sort is None:
        return [], False
    if isinstance(sort, str):
        return [sort], False
    fields = sort.get("field") or []
    if isinstance(fields, str):
        fields = [fields]
    return list(fields), sort.get("order") == "DESC"


def page_request(
    entity: Entity,
    *,
    direction: str | None = None,
    count: int | None = None,
    cursor: str | None = None,
    sort: Any = None,
) -> PageRequest:
    size = DEFAULT_PAGE_SIZE if count is None else count
    if not 0 <= size <= MAX_PAGE_SIZE:
        raise GraphQLError(f"count must be between 0 and {MAX_PAGE_SIZE}, got {size}")
    fields, descending = _sort_fields(sort)
    sort_exprs = []
    for name in fields:
        expr = entity.sort_fields.get(name)
        if expr is None:
            raise GraphQLError(f"The sandbox cannot sort {entity.name} by {name!r}")
        sort_exprs.append(expr)
    decoded = decode_cursor(cursor) if cursor else None
    if decoded is not None and len(decoded) != len(sort_exprs) + 1:
        raise GraphQLError("Invalid cursor for this sort", extensions={"code": "ERR_INVALID_CURSOR"})
    return PageRequest(direction or "FORWARD", size, decoded, tuple(sort_exprs), descending)


def _where(conditions: list[Clause | None]) -> Clause:
    present = [c for c in conditions if c is not None]
    if not present:
        return "TRUE", []
    params: list = []
    for _, p in present:
        params.extend(p)
    return " AND ".join(f"({sql})" for sql, _ in present), params


def empty_connection() -> dict:
    return {
        "totalCount": 0,
        "pageInfo": {"hasNextPage": False, "hasPreviousPage": False, "startCursor": "", "endCursor": ""},
        "edges": [],
    }


async def fetch_page(
    db: RequestDb, entity: Entity, conditions: list[Clause | None], page: PageRequest
) -> dict:
    """One page plus the total of all rows matching `conditions`, in one query."""
    keys = [*page.sort_exprs, entity.id_expr]
    casts = ["text"] * len(page.sort_exprs) + [entity.id_cast]
    where_sql, params = _where(conditions)
    backward = page.direction == "BACKWARD"
    ascending = page.descending == backward
    key_columns = ", ".join(f"{expr} AS _k{i}" for i, expr in enumerate(keys))
    key_names = ", ".join(f"t._k{i}" for i in range(len(keys)))
    query = (
        f"SELECT * FROM (SELECT {entity.select}, {key_columns}, count(*) OVER () AS _total "
        f"FROM {entity.source} WHERE {where_sql}) t"
    )
    all_params = list(params)
    if page.cursor is not None:
        placeholders = ", ".join(f"%s::{cast}" for cast in casts)
        query += f" WHERE ({key_names}) {'>' if ascending else '<'} ({placeholders})"
        all_params.extend(page.cursor)
    direction_sql = "ASC" if ascending else "DESC"
    query += " ORDER BY " + ", ".join(f"t._k{i} {direction_sql}" for i in range(len(keys)))
    query += " LIMIT %s"
    all_params.append(page.count + 1)
    rows = await db.fetch_all(query, all_params)
    if rows:
        total = rows[0]["_total"]
    elif page.cursor is None:
        total = 0
    else:
        counted = await db.fetch_one(f"SELECT count(*) AS n FROM {entity.source} WHERE {where_sql}", params)
        total = counted["n"] if counted else 0
    has_more = len(rows) > page.count
    rows = rows[: page.count]
    if backward:
        rows.reverse()
    edges = [
        {"cursor": encode_cursor([row[f"_k{i}"] for i in range(len(keys))]), "node": row} for row in rows
    ]
    return {
        "totalCount": total,
        "pageInfo": {
            "hasNextPage": (page.cursor is not None) if backward else has_more,
            "hasPreviousPage": has_more if backward else (page.cursor is not None),
            "startCursor": edges[0]["cursor"] if edges else "",
            "endCursor": edges[-1]["cursor"] if edges else "",
        },
        "edges": edges,
    }


async def fetch_nodes(
    db: RequestDb, entity: Entity, conditions: list[Clause | None], limit: int | None = None
) -> list[dict]:
    """All matching rows (for by-id lookups and the deprecated list fields)."""
    where_sql, params = _where(conditions)
    query = f"SELECT {entity.select} FROM {entity.source} WHERE {where_sql} ORDER BY {entity.id_expr}"
    if limit is not None:
        query += " LIMIT %s"
        params = [*params, limit]
    return await db.fetch_all(query, params)
