"""App assembly: routes, error handlers, middleware and the lifespan that owns the database pool."""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp

from service import cursors, docs, health, messages, metrics
from service.auth import Authenticator
from service.bulk.routes import routes as bulk_routes
from service.cache.service import ReadCache
from service.changes.listener import NOTIFY_AFTER_COMMIT, Listener
from service.changes.retention import prune_forever as prune_changes_forever
from service.changes.routes import routes as change_routes
from service.child_lists.routes import routes as child_list_routes
from service.db import Database
from service.endpoint import assemble
from service.errors import ApiError, MethodNotAllowed, NotFound
from service.hal import route_templates
from service.idempotency.service import prune_forever
from service.middleware import (
    Cors,
    Observe,
    RefuseNul,
    TrailingSlash,
    TrustedProxies,
    error_response,
)
from service.rate_limits.service import RateLimits
from service.relation_types.routes import routes as relation_type_routes
from service.relations.routes import routes as relation_routes
from service.schema import DatabaseUnreachable, migrate, when_reachable
from service.settings import Settings
from service.webhooks.routes import routes as webhook_routes
from service.webhooks.signing import SecretBox

log = logging.getLogger("service")


async def api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc, request.scope)


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own answers (unknown route, wrong method) in our envelope."""
    assert isinstance(exc, HTTPException)
    error: ApiError
    if exc.status_code == 405:
        # The router's answer: the matched route's methods (no two routes match one path).
        allow = ", ".join(sorted((exc.headers or {}).get("Allow", "").split(", ")))
        error = MethodNotAllowed(
            messages.METHOD_NOT_ALLOWED.format(method=request.method, path=request.url.path[:200]),
            headers={"Allow": allow},
        )
    elif exc.status_code == 404:
        error = NotFound(messages.ROUTE_NOT_FOUND.format(path=request.url.path[:200]))
    else:
        error = ApiError(str(exc.detail), headers=exc.headers)
        error.status = exc.status_code  # type: ignore[misc]
    return error_response(error, request.scope)


async def crash(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(ApiError(), request.scope)


def api_routes() -> list[BaseRoute]:
    """Every route. No request matches two of them (endpoint.assemble), so their order changes no
    answer; the API's hot reads come first only because Starlette tries routes in order."""
    return assemble(
        [
            *relation_routes,
            *change_routes,
            *relation_type_routes,
            *child_list_routes,
            *bulk_routes,
            *webhook_routes,
            *health.routes,
            *metrics.routes,
            *docs.routes(),
        ]
    )


class App(Starlette):
    """Starlette with the request id, access log and metrics outside even its error middleware, so a
    crash's 500 is counted, logged and carries X-Request-Id like every other answer; proxy headers are
    applied before anything reads the URL."""

    def __init__(self, *args: object, settings: Settings, **kwargs: object) -> None:
        self._settings = settings
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def build_middleware_stack(self) -> ASGIApp:
        inner = super().build_middleware_stack()
        proxied = TrustedProxies(TrailingSlash(inner), trusted=self._settings.trusted_proxies)
        return Observe(proxied, log_requests=self._settings.access_log)


class _Stdout(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stdout is at the time (test runners swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stdout
        super().emit(record)


def configure_access_log(enabled: bool) -> None:
    """One JSON line per request on logger `service.access`, to stdout (unless already configured)."""
    access = logging.getLogger("service.access")
    if not enabled or access.handlers:
        return
    handler = _Stdout()
    handler.setFormatter(logging.Formatter("%(message)s"))
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    access.propagate = False


async def start_database(url: str, db: Database, *, wait_seconds: int) -> None:
    """Migrate and open the pool, waiting up to `wait_seconds` for a database that is not there yet
    (a worker restarted during an outage); then give up with a message that names the cause."""

    async def attempt() -> None:
        await migrate(url)
        await db.connect()

    try:
        await when_reachable(attempt, wait_seconds=wait_seconds)
    except DatabaseUnreachable as error:
        hint = messages.PGBOUNCER_HINT if "unsupported startup parameter" in str(error) else ""
        raise RuntimeError(f"cannot start: the database is unreachable ({error}){hint}") from None


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    if not settings.database_url:
        raise RuntimeError("DATABASE_URL is not set (`relations serve` starts an embedded PostgreSQL)")
    db = Database(
        settings.database_url,
        read_urls=settings.database_read_urls,
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        statement_timeout_ms=settings.statement_timeout_ms,
        session=NOTIFY_AFTER_COMMIT,
        pgbouncer=settings.pgbouncer == "transaction",
        max_lag_ms=settings.replica_max_lag_ms,
        replica_retry_seconds=settings.replica_retry_seconds,
        listen_url=settings.database_listen_url,
    )

    listener = Listener(db)
    read_cache = ReadCache(listener, limit_bytes=settings.cache_bytes, max_lag_ms=settings.replica_max_lag_ms)
    rate_limits = RateLimits(db, default=settings.rate_limit, failures=settings.auth_failure_limit)

    # A key too short is refused here, at start-up; no key at all only switches webhooks off (503).
    box = SecretBox(settings.secret_key) if settings.secret_key else None

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        assert settings.database_url
        await start_database(settings.database_url, db, wait_seconds=settings.startup_wait_seconds)
        app.state.cursors = await cursors.load(db)
        chores = [
            asyncio.create_task(prune_forever(db, hours=settings.idempotency_hours)),
            asyncio.create_task(rate_limits.prune_forever()),
            asyncio.create_task(listener.run()),
            asyncio.create_task(read_cache.run()),
            asyncio.create_task(
                prune_changes_forever(db, retention_seconds=settings.changes_retention_seconds)
            ),
        ]
        if db.replicas:
            await db.sample_once()  # know the replicas before the first request
            chores.append(asyncio.create_task(db.sample_replicas()))
        if metrics.multiprocess_mode():
            chores.append(asyncio.create_task(metrics.keep_current(db, read_cache)))
        # Start-up objects (modules, routes, settings) never die: out of the collector's way, so its
        # full collections stay short (they set the p99 under load).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            for chore in chores:
                chore.cancel()
            await asyncio.gather(*chores, return_exceptions=True)
            await db.disconnect()
            metrics.worker_stopped()

    configure_access_log(settings.access_log)
    metrics.configure(settings.metrics_dir)
    routes = api_routes()
    middleware = [Middleware(RefuseNul)]
    if settings.cors_origins:
        middleware.insert(0, Middleware(Cors, origins=settings.cors_origins))
    app = App(
        routes=routes,
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers={ApiError: api_error, HTTPException: http_error, Exception: crash},
        settings=settings,
    )
    # Never a redirect built from the Host header: TrailingSlash has already dropped trailing slashes,
    # and any other path that matches no route is a 404 in the envelope.
    app.router.redirect_slashes = False
    app.state.settings = settings
    app.state.db = db
    app.state.authenticator = Authenticator(settings, db)
    app.state.rate_limits = rate_limits
    app.state.changes_listener = listener
    app.state.read_cache = read_cache
    app.state.secret_box = box
    app.state.link_templates = route_templates(routes)
    return app
