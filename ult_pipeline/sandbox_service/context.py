"""Per-request state handed to resolvers: who is calling, the DB handle, lazy scope."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from .auth import Identity
from .db import RequestDb
from .filters import as_uuid
from .scope import ADMIN_SCOPE, Scope, ScopeCache, load_scope

# Stands in for a token whose `id` is not a UUID: it matches no row.
NO_USER = "00000000-0000-0000-0000-000000000000"


@dataclass
class RequestContext:
    identity: Identity
    db: RequestDb
    scope_cache: ScopeCache | None = None
    # The service's `--roster-writes` knob (knobs.py): "locked" or "unlocked".
    roster_writes: str = "locked"
    _scope_task: asyncio.Future | None = None
    # Small per-request memo (e.g. permission sets of other users' memberships).
    memo: dict[Any, Any] = field(default_factory=dict)

    @property
    def user_id(self) -> str | None:
        if self.identity.user_id is None:
            return None
        return as_uuid(self.identity.user_id) or NO_USER

    async def scope(self) -> Scope:
        if self.identity.is_admin:
            return ADMIN_SCOPE
        if self._scope_task is None:
            self._scope_task = asyncio.ensure_future(self._load_scope(self.user_id or NO_USER))
        return await self._scope_task

    async def _load_scope(self, user_id: str) -> Scope:
        if self.scope_cache is None:
            return await load_scope(self.db, user_id)
        cached = self.scope_cache.get(user_id, time.monotonic())
        if cached is not None:
            return cached
        scope = await load_scope(self.db, user_id)
        self.scope_cache.put(user_id, scope, time.monotonic())
        return scope

    async def close(self) -> None:
        if self._scope_task is not None and not self._scope_task.done():
            self._scope_task.cancel()
        await self.db.close()


def context_of(info: Any) -> RequestContext:
    return info.context
