"""App assembly: routes, error handlers, middleware and the lifespan that owns the database pool."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from service import health, messages
from service.auth import Authenticator
from service.db import Database
from service.errors import ApiError, MethodNotAllowed, NotFound
from service.hal import HalResponse, route_templates
from service.relation_types.routes import routes as relation_type_routes
from service.relations.routes import alias_routes
from service.relations.routes import routes as relation_routes
from service.schema import migrate
from service.settings import Settings

log = logging.getLogger("service")


def render_error(error: ApiError) -> Response:
    return HalResponse(error.body(), status_code=error.status, headers=error.headers or None)


async def api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return render_error(exc)


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own answers (unknown route, wrong method) in our envelope."""
    assert isinstance(exc, HTTPException)
    error: ApiError
    if exc.status_code == 405:
        error = MethodNotAllowed(
            messages.METHOD_NOT_ALLOWED.format(method=request.method, path=request.url.path[:200]),
            headers=exc.headers,
        )
    elif exc.status_code == 404:
        error = NotFound(messages.ROUTE_NOT_FOUND.format(path=request.url.path[:200]))
    else:
        error = ApiError(str(exc.detail), headers=exc.headers)
        error.status = exc.status_code  # type: ignore[misc]
    return render_error(error)


async def crash(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return render_error(ApiError())


def api_routes() -> list[BaseRoute]:
    return [*health.routes, *relation_routes, *relation_type_routes, *alias_routes]


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    if not settings.database_url:
        raise RuntimeError("DATABASE_URL is not set (`relations serve` starts an embedded PostgreSQL)")
    db = Database(
        settings.database_url,
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        statement_timeout_ms=settings.statement_timeout_ms,
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        assert settings.database_url
        await migrate(settings.database_url)
        await db.connect()
        try:
            yield
        finally:
            await db.disconnect()

    routes = api_routes()
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={ApiError: api_error, HTTPException: http_error, Exception: crash},
    )
    app.state.settings = settings
    app.state.db = db
    app.state.authenticator = Authenticator(settings, db)
    app.state.link_templates = route_templates(routes)
    return app
