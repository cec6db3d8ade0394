"""The request pipeline: every API request passes these steps, in SPEC §2's order, before its handler.

    route (404/405)          Starlette's router, before any step (service/endpoint.py: ApiRoute)
    version (400)            check_version
    credentials (401)        authenticate (failed authentications limited per client address, 429)
    project and scope (403)  authorise
    rate limit (429)         rate_limit: the credential's budget (service/rate_limits), before the body
    revision (400)           a read: `Relations-Min-Revision`, and its statements marked as reads
                             (replicas); a write: `Relations-Revision` on its success (SPEC §12)
    (reads)                  cached_read: the worker's read cache answers, or keeps the answer
                               (only operations that name their `cache` tags; service/cache)
    (writes of relations)    wake_readers and announce_write: once the write succeeded, this worker's
                               feed readers wake (and its read cache marks the commit), and after its
                               revision the others are notified; sync_cache: the answer then waits
                               until the read cache no longer holds what the write changed
    body (413)               read_body: the body, read once and size-limited once, into `ctx.body`
    queue                    wait_in_queue: edits of one resource (a child list) queue in this worker
                               before they take a database connection (only routes that name a queue)
    idempotency (400/422)    idempotency.service.idempotent: `Idempotency-Key`, in the work's transaction
    handler

Each step is `async def step(ctx, call_next) -> Response`: it checks, raises an ApiError, or calls the
next. `steps_for` picks the steps an operation needs (a GET has no body, no queue and no key; an
operation that `streams_body` reads its own body and has no key either); `chain`
binds them once, when the route is declared, so a request pays for no lookups."""

from __future__ import annotations

import asyncio
import re
import weakref
from collections.abc import Awaitable, Callable, Hashable

from starlette.requests import Request
from starlette.responses import Response

from service import messages, revisions
from service.auth import Authenticator
from service.bodies import read_limited
from service.cache.service import ReadCache
from service.context import Context, Handler, Operation
from service.errors import BadRequest, Forbidden
from service.idempotency.service import idempotent
from service.projects.service import valid_project_alias
from service.rate_limits.service import RateLimits

Step = Callable[[Context, Handler], Awaitable[Response]]

# Every pattern of the service is used with fullmatch: `$` would also accept a final newline.
SUPPORTED_VERSION = re.compile(r"2(\.\d+)?")
_ACCEPT_VERSION = re.compile(r";\s*v\s*=\s*([^;,\s]+)")
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

# The headers the checks read, picked in one pass over the raw list: building Starlette's Headers and
# looking each one up cost more than the rest of a by-id read's Python. First occurrence wins, as in
# Headers.get.
CHECKED_HEADERS = frozenset(
    {
        b"authorization",
        b"api-key",
        b"api-version",
        b"accept",
        b"umb-project-alias",
        b"relations-min-revision",
        b"host",  # the read cache's key (the base of an answer's links)
    }
)


def checked_headers(request: Request) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, value in request.scope["headers"]:
        if name in CHECKED_HEADERS:
            found.setdefault(name.decode("latin-1"), value.decode("latin-1"))
    return found


def query_value(request: Request, name: str) -> str | None:
    """A query parameter, without parsing an empty query string."""
    return request.query_params.get(name) if request.scope.get("query_string") else None


# --- the steps, in their order ---


def requested_version(ctx: Context) -> str | None:
    version = ctx.headers.get("api-version") or query_value(ctx.request, "api-version")
    if version is None:
        found = _ACCEPT_VERSION.search(ctx.headers.get("accept", ""))
        version = found.group(1) if found else None
    return version


async def check_version(ctx: Context, call_next: Handler) -> Response:
    version = requested_version(ctx)
    if version is not None and not SUPPORTED_VERSION.fullmatch(version.strip(" \t")):
        raise BadRequest(messages.INVALID_VERSION.format(version=version[:32]))
    return await call_next(ctx)


async def authenticate(ctx: Context, call_next: Handler) -> Response:
    authenticator: Authenticator = ctx.request.app.state.authenticator
    limits: RateLimits = ctx.request.app.state.rate_limits
    # Failed authentications are limited per client address before they reach the database.
    ctx.principal = await limits.authenticate(ctx.request, authenticator, ctx.headers)
    return await call_next(ctx)


def requested_project(ctx: Context) -> str:
    """`Umb-Project-Alias` from header or query, else the credential's; another project → 403.

    When both forms are given, each must name the credential's project: an ambiguous request is
    refused rather than resolved in either direction."""
    given = [
        alias
        for alias in (ctx.headers.get("umb-project-alias"), query_value(ctx.request, "Umb-Project-Alias"))
        if alias  # an empty value counts as absent
    ]
    for alias in given:
        if not valid_project_alias(alias) or alias != ctx.principal.project:
            raise Forbidden()
    return ctx.principal.project


async def authorise(ctx: Context, call_next: Handler) -> Response:
    ctx.project = requested_project(ctx)
    if ctx.operation.scope not in ctx.principal.scopes:
        raise Forbidden()
    ctx.request.state.project = ctx.project  # for the access log
    return await call_next(ctx)


async def rate_limit(ctx: Context, call_next: Handler) -> Response:
    """SPEC §13: the credential's budget; 429 after 401/403, before the request is read."""
    limits: RateLimits = ctx.request.app.state.rate_limits
    await limits.admit(ctx.request, ctx.principal)
    return await call_next(ctx)


async def read_revision(ctx: Context, call_next: Handler) -> Response:
    """A read sees at least the write whose `Relations-Revision` it carries, on a replica that has
    replayed it (and this worker's own writes), else on the primary."""
    given = ctx.headers.get("relations-min-revision")
    if given is not None:
        ctx.min_revision = revisions.parse_header(given)
    with ctx.db.reading(ctx.min_revision):
        return await call_next(ctx)


async def answer_revision(ctx: Context, call_next: Handler) -> Response:
    """A write's success answers the revision that covers it, once it has committed."""
    response = await call_next(ctx)
    if 200 <= response.status_code < 300:
        revision = await ctx.db.committed()
        if revision is not None:
            response.headers[revisions.HEADER] = revisions.render(revision)
    return response


async def cached_read(ctx: Context, call_next: Handler) -> Response:
    """SPEC §12: from the worker's read cache when it is fresh enough for this read, else the
    handler's answer, kept for the next (service/cache/service.py)."""
    cache: ReadCache = ctx.request.app.state.read_cache
    assert ctx.operation.cache is not None
    return await cache.serve(ctx, ctx.operation.cache, call_next)


async def sync_cache(ctx: Context, call_next: Handler) -> Response:
    """SPEC §12, a worker sees its own writes at once: a write that succeeded answers once the read
    cache no longer holds anything it changed — at once when its handler named every tag it touched
    (`ctx.touched`; its answer may then also be kept for a GET of its path), else after the cache's
    next poll."""
    cache: ReadCache = ctx.request.app.state.read_cache
    ticket = cache.ticket()
    response = await call_next(ctx)
    if ctx.cache_mark is not None:
        if ctx.touched is not None:
            cache.written(ctx, response, ticket)
        else:
            await cache.synced(ctx.project, ctx.cache_mark)
    return response


async def read_body(ctx: Context, call_next: Handler) -> Response:
    ctx.body = await read_limited(ctx.request, limit=ctx.request.app.state.settings.max_body_bytes)
    return await call_next(ctx)


# Edits of one resource queue here, in this worker, before they take a pooled connection: only one of
# them waits on the resource's lock in PostgreSQL (which serialises them across workers), the others
# leave the pool to requests for other resources. Every edit of a queued route waits here first and
# takes its connection after, whatever its headers: two orders would let each side hold what the other
# waits for.
_queues: weakref.WeakValueDictionary[Hashable, asyncio.Lock] = weakref.WeakValueDictionary()


def queue_for(key: Hashable) -> asyncio.Lock:
    queue = _queues.get(key)
    if queue is None:
        queue = _queues[key] = asyncio.Lock()
    return queue


async def wake_readers(ctx: Context, call_next: Handler) -> Response:
    """Right after a write that succeeded (committed: the handler's transaction has ended), the change
    feed's listener wakes this worker's waiting readers (service/changes/listener.py), and the read
    cache marks the commit: its next poll is the one `sync_cache` waits for."""
    response = await call_next(ctx)
    if response.status_code < 300:
        ctx.request.app.state.changes_listener.committed(ctx.project)
        cache: ReadCache = ctx.request.app.state.read_cache
        ctx.cache_mark = cache.mark()
    return response


async def announce_write(ctx: Context, call_next: Handler) -> Response:
    """After the write's revision was read, the listener notifies the other workers and the webhook
    processes (the commit trigger does not, see schema.sql)."""
    response = await call_next(ctx)
    if response.status_code < 300:
        ctx.request.app.state.changes_listener.announce(ctx.project)
    return response


async def wait_in_queue(ctx: Context, call_next: Handler) -> Response:
    assert ctx.operation.queue is not None
    async with queue_for((ctx.project, ctx.operation.queue(ctx))):
        return await call_next(ctx)


# --- assembly ---


def steps_for(operation: Operation) -> list[Step]:
    """The operation's steps, in SPEC §2's order."""
    steps: list[Step] = [check_version, authenticate, authorise, rate_limit]
    if operation.method not in WRITE_METHODS:
        steps.append(read_revision)
        if operation.cache is not None:
            steps.append(cached_read)
        return steps
    # This worker's feed readers wake right after the work; its revision is read next, and only then
    # are the others notified: the after-commit NOTIFY is a statement of its own, and a token past it
    # would wait for WAL no replica has been sent yet. The answer waits last for the read cache. A
    # write that changes no relation (a webhook's) has a revision and nothing else to follow.
    if operation.relational:
        steps += [sync_cache, announce_write, answer_revision, wake_readers]
    else:
        steps.append(answer_revision)
    if not operation.streams_body:
        steps.append(read_body)
        if operation.queue is not None:
            steps.append(wait_in_queue)
        if operation.idempotency:
            steps.append(idempotent)
    return steps


def chain(operation: Operation) -> Handler:
    """The operation's handler behind its steps, bound once."""
    call: Handler = operation.handler
    for step in reversed(steps_for(operation)):
        call = _bind(step, call)
    return call


def _bind(step: Step, call_next: Handler) -> Handler:
    def run(ctx: Context) -> Awaitable[Response]:
        return step(ctx, call_next)

    return run
