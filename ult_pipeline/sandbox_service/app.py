"""The Starlette app: routes under /user, auth before GraphQL, knobs and telemetry."""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from ariadne import graphql, make_executable_schema
from graphql import GraphQLEnumType, GraphQLSchema, OperationDefinitionNode, OperationType
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..user_service_schema import schema_sdl
from .auth import AuthError, TokenCache, authenticate
from .body_limit import payload_too_large, read_limited_body
from .bootstrap import bootstrap
from .config import ServiceConfig
from .context import RequestContext
from .db import RequestDb, create_pool
from .document_cache import DocumentCache, request_operation_name
from .errors import APIInputError, InternalServerError, PermissionDenied
from .knobs import extra_delay_seconds, hold
from .resolvers import bindables
from .scope import ScopeCache
from .telemetry import CONTENT_TYPE, Telemetry

ROUTE_PREFIX = "/user"
logger = logging.getLogger("ult_pipeline.sandbox_service")
graphql_logger = logging.getLogger("ult_pipeline.sandbox_service.graphql")


class _ExpectedErrorFilter(logging.Filter):
    """Refused input and permissions are answers, not failures: no tracebacks for them."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else record.msg
        original = getattr(error, "original_error", None)
        expected = (APIInputError, InternalServerError, PermissionDenied)
        return not (isinstance(error, expected) or isinstance(original, expected))


graphql_logger.addFilter(_ExpectedErrorFilter())


def unauthorized(message: str) -> JSONResponse:
    return JSONResponse({"code": "UNAUTHORIZED", "message": message}, status_code=401)


def _enums_accept_hide_suggestions(schema: GraphQLSchema) -> None:
    """ariadne replaces each enum's `parse_value` with a one-argument function, but graphql-core
    calls it with `hide_suggestions` too: every enum given in a query's variables (a filter's
    `operator` in `$filter`) was refused, where the real service accepts it."""
    for type_def in schema.type_map.values():
        patched = vars(type_def).get("parse_value") if isinstance(type_def, GraphQLEnumType) else None
        if patched is not None:
            def parse_value(value: Any, *_ignored: Any, _patched: Any = patched) -> Any:
                return _patched(value)

            type_def.parse_value = parse_value  # type: ignore[method-assign]


def create_app(config: ServiceConfig) -> Starlette:
    schema = make_executable_schema(schema_sdl(), *bindables())
    _enums_accept_hide_suggestions(schema)
    documents = DocumentCache(schema)
    tokens = TokenCache()
    scopes = ScopeCache()
    telemetry = Telemetry(config.no_telemetry)
    pool = create_pool(config)
    state = {"ready": False}

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await pool.open(wait=True, timeout=15.0)
        try:
            async with pool.connection() as conn:
                await bootstrap(conn, config.db_schema)
            state["ready"] = True
            logger.info("sandbox user-service ready (schema %s)", config.db_schema)
            yield
        finally:
            state["ready"] = False
            await pool.close()

    async def health(_request: Request) -> Response:
        if not state["ready"]:
            return JSONResponse({"status": "fail"}, status_code=503)
        return JSONResponse({"status": "pass"})

    async def version(_request: Request) -> Response:
        return JSONResponse({"version": config.version})

    async def metrics(_request: Request) -> Response:
        return Response(telemetry.render(), media_type=CONTENT_TYPE)

    async def graphql_endpoint(request: Request) -> Response:
        started = time.perf_counter()
        # Express's json parser runs before anything else in the real service: a body over its
        # limit never reaches auth or GraphQL (body_limit.py).
        raw = await read_limited_body(request)
        if raw is None:
            telemetry.record("payload_too_large", time.perf_counter() - started, True)
            return payload_too_large()
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = None
        operation = request_operation_name(body, documents)
        response, had_errors = await _handle(request, body)
        handling = time.perf_counter() - started
        delay = extra_delay_seconds(operation, handling, config.latency_ms, config.latency_pct)
        await hold(delay)
        telemetry.record(operation, time.perf_counter() - started, had_errors)
        return response

    async def _handle(request: Request, body: Any) -> tuple[Response, bool]:
        try:
            identity = authenticate(
                request.headers.get("authorization"), request.cookies.get("access"), config.api_key, tokens
            )
        except AuthError as refusal:
            return unauthorized(refusal.message), True
        if not isinstance(body, dict):
            return JSONResponse({"errors": [{"message": "POST body must be a JSON object"}]}, status_code=400), True
        context = RequestContext(identity, RequestDb(pool), scopes, roster_writes=config.roster_writes)
        try:
            _, result = await graphql(
                schema,
                body,
                context_value=context,
                query_parser=documents.parse_hook,
                query_validator=documents.validate_hook,
                logger=graphql_logger,
            )
        finally:
            await context.close()
            if _has_mutation(body, documents):
                # Memberships and roles may have changed: no scope may outlive a write.
                scopes.clear()
        _warn_deprecated(body, documents)
        status = 200 if "data" in result else 400
        return JSONResponse(result, status_code=status), "errors" in result

    routes = [
        Route(f"{ROUTE_PREFIX}/", graphql_endpoint, methods=["POST"]),
        # Clients also post to the prefix without the slash; answer rather than redirect.
        Route(ROUTE_PREFIX, graphql_endpoint, methods=["POST"]),
        Route(f"{ROUTE_PREFIX}/health", health, methods=["GET"]),
        Route(f"{ROUTE_PREFIX}/version", version, methods=["GET"]),
        Route(f"{ROUTE_PREFIX}/metrics", metrics, methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.telemetry = telemetry
    app.state.config = config
    return app


def _has_mutation(body: dict, documents: DocumentCache) -> bool:
    query = body.get("query")
    entry = documents.find(query) if isinstance(query, str) else None
    if entry is None:
        return False
    return any(
        isinstance(d, OperationDefinitionNode) and d.operation == OperationType.MUTATION
        for d in entry.document.definitions
    )


def _warn_deprecated(body: dict, documents: DocumentCache) -> None:
    query = body.get("query")
    entry = documents.find(query) if isinstance(query, str) else None
    if entry is not None and entry.deprecated_fields:
        logger.warning("deprecated fields used: %s", ", ".join(entry.deprecated_fields))
