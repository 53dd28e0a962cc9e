"""The connection pool and the per-request database handle."""

from __future__ import annotations

import asyncio
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from .config import ServiceConfig, validate_schema_name


def connection_kwargs(db_schema: str) -> dict[str, Any]:
    """Every pooled connection reads in autocommit and sees only the configured schema."""
    validate_schema_name(db_schema)
    return {
        "autocommit": True,
        "row_factory": dict_row,
        # Set at connect time: no extra round trip per connection, none per request.
        "options": f"-c search_path={db_schema}",
    }


def create_pool(config: ServiceConfig) -> AsyncConnectionPool:
    return AsyncConnectionPool(
        config.dsn,
        min_size=min(2, config.pool_size),
        max_size=config.pool_size,
        kwargs=connection_kwargs(config.db_schema),
        open=False,
        name="ult-sandbox",
        timeout=10.0,
    )


class RequestDb:
    """One pooled connection per request, taken on first use and returned at the end.

    Resolvers may run concurrently; psycopg serializes them on the connection's lock.
    """

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool
        self._context_manager: Any = None
        self._conn: AsyncConnection | None = None
        self._lock = asyncio.Lock()

    async def connection(self) -> AsyncConnection:
        if self._conn is None:
            async with self._lock:
                if self._conn is None:
                    manager = self._pool.connection()
                    self._conn = await manager.__aenter__()
                    self._context_manager = manager
        return self._conn

    async def fetch_all(self, query: str, params: Any = None) -> list[dict[str, Any]]:
        conn = await self.connection()
        cur = await conn.execute(query, params)
        return await cur.fetchall()

    async def fetch_one(self, query: str, params: Any = None) -> dict[str, Any] | None:
        conn = await self.connection()
        cur = await conn.execute(query, params)
        return await cur.fetchone()

    async def close(self) -> None:
        if self._context_manager is not None:
            manager, self._context_manager, self._conn = self._context_manager, None, None
            await manager.__aexit__(None, None, None)
