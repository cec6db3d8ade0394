"""GET /relation/changes (SPEC §9): a page of the project's changes after a cursor, held open with
`wait` until a change commits, or as Server-Sent Events with `Accept: text/event-stream`."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from urllib.parse import urlencode

import orjson
from starlette.responses import Response, StreamingResponse

from service import messages
from service.auth import READ
from service.changes import feed
from service.changes.feed import Page
from service.changes.listener import Listener
from service.changes.model import Position
from service.endpoint import Context, api_route
from service.errors import BadRequest, Gone
from service.hal import request_path

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_WAIT_SECONDS = 30.0
EVENT_STREAM = "text/event-stream"
_WAIT = re.compile(r"\d{1,2}(\.\d{1,3})?")


def limit_of(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    text = raw.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 4 or not 1 <= int(text) <= MAX_LIMIT:
        raise BadRequest(messages.CHANGES_LIMIT_INVALID)
    return int(text)


def wait_of(raw: str | None) -> float:
    if raw is None:
        return 0.0
    text = raw.strip()
    if not _WAIT.fullmatch(text) or float(text) > MAX_WAIT_SECONDS:
        raise BadRequest(messages.CHANGES_WAIT_INVALID)
    return float(text)


async def start_of(ctx: Context, since: str | None) -> Position:
    """Where reading starts: after the cursor; `now`: the current end; none: the oldest retained."""
    if since is None or since == "":
        return await feed.first(listener_of(ctx), project=ctx.project)
    if since == "now":
        return await feed.end(listener_of(ctx))
    return Position.from_token(since, ctx.project)


def listener_of(ctx: Context) -> Listener:
    listener: Listener = ctx.request.app.state.changes_listener
    return listener


async def read(ctx: Context, after: Position, limit: int, wait: float) -> Page:
    """A page after `after`; with nothing there, held until a change arrives or `wait` passes."""
    listener = listener_of(ctx)
    deadline = time.monotonic() + wait
    while True:
        ticket = listener.ticket(ctx.project)
        page = await feed.read_project(listener, project=ctx.project, after=after, limit=limit)
        if page.gone:
            raise Gone()
        remaining = deadline - time.monotonic()
        if page.changes or remaining <= 0:
            return page
        await listener.wait(ctx.project, ticket, remaining, held_xmax=page.held_xmax)


def href(ctx: Context, **replace: str) -> str:
    query = [(name, value) for name, value in ctx.request.query_params.multi_items() if name not in replace]
    query += list(replace.items())
    path = ctx.links.base + request_path(ctx.request)
    return f"{path}?{urlencode(query)}" if query else path


async def list_changes(ctx: Context) -> Response:
    query = ctx.request.query_params
    limit = limit_of(query.get("limit"))
    wait = wait_of(query.get("wait"))
    if EVENT_STREAM in ctx.request.headers.get("accept", ""):
        return await stream(ctx, query.get("since"), limit)
    page = await read(ctx, await start_of(ctx, query.get("since")), limit, wait)
    cursor = page.position.token(ctx.project)
    return ctx.hal(
        {
            "cursor": cursor,
            "_links": {"self": {"href": href(ctx)}, "next": {"href": href(ctx, since=cursor)}},
            "_embedded": {"changes": [change.event for change in page.changes]},
        }
    )


def sse_event(cursor: str, event: dict[str, object]) -> bytes:
    return b"id: %s\nevent: %s\ndata: %s\n\n" % (
        cursor.encode(),
        str(event["type"]).encode(),
        orjson.dumps(event),
    )


async def stream(ctx: Context, since: str | None, limit: int) -> Response:
    """Server-Sent Events from `Last-Event-ID` (else `since`): every change as it commits, and a
    comment line when nothing happened for the heartbeat interval. A cursor that is gone is 410 here,
    before the stream starts; if the consumer falls behind the retention while streaming, the stream
    ends and its reconnection gets that 410."""
    resume = ctx.request.headers.get("last-event-id")
    after = await start_of(ctx, resume.strip() if resume else since)
    listener = listener_of(ctx)
    ticket = listener.ticket(ctx.project)
    first = await feed.read_project(listener, project=ctx.project, after=after, limit=limit)
    if first.gone:
        raise Gone()
    heartbeat: float = ctx.request.app.state.settings.changes_heartbeat_seconds

    async def events() -> AsyncIterator[bytes]:
        nonlocal ticket
        page, position = first, after
        quiet_until = time.monotonic() + heartbeat
        yield b": changes of project %s\n\n" % ctx.project.encode()
        while True:
            for change in page.changes:
                yield sse_event(change.position.token(ctx.project), change.event)
            if page.changes:
                position = page.position
                quiet_until = time.monotonic() + heartbeat
            elif (remaining := quiet_until - time.monotonic()) <= 0:
                yield b": keep-alive\n\n"
                quiet_until = time.monotonic() + heartbeat
            else:
                await listener.wait(ctx.project, ticket, remaining, held_xmax=page.held_xmax)
            ticket = listener.ticket(ctx.project)
            page = await feed.read_project(listener, project=ctx.project, after=position, limit=limit)
            if page.gone:
                return

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(events(), media_type=EVENT_STREAM, headers=headers)


routes = [api_route("/relation/changes", list_changes, method="GET", name="changes:list", scope=READ)]
