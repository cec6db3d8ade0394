"""HTTP handlers of SPEC §11: GET /relation/export streams NDJSON from one snapshot; POST
/relation/import streams an NDJSON upload into one transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from service import messages
from service.auth import READ, TYPES_WRITE, WRITE
from service.bodies import media_type
from service.bulk import service
from service.endpoint import ApiRoute, Context, api_route
from service.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

NDJSON = "application/x-ndjson"
IMPORT_ROUTE = "relations:import"


class ExportResponse(StreamingResponse):
    """Streams the export, then ends its snapshot's transaction, however the stream ended. A failure
    midway aborts the connection (no final chunk), so a cut-off export never looks complete."""

    def __init__(self, chunks: AsyncIterator[bytes], resources: AsyncExitStack) -> None:
        super().__init__(chunks, media_type=NDJSON)
        self.resources = resources

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.resources.aclose()


async def export_relations(ctx: Context) -> Response:
    alias = ctx.request.query_params.get("relationType") or None
    resources = AsyncExitStack()
    chunks = await resources.enter_async_context(service.exporting(ctx.db, project=ctx.project, alias=alias))
    return ExportResponse(chunks, resources)


async def upload(request: Request, *, limit: int) -> AsyncIterator[bytes]:
    """The body as it arrives, cut off with 413 as soon as it passes `limit` (the route streams its
    body, so this is its one size limit). An upload that ends early (the client went away, or sent less
    than its Content-Length) is an error, so the import stores nothing."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(messages.BODY_TOO_LARGE.format(limit=limit))
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(messages.BODY_TOO_LARGE.format(limit=limit))
            yield chunk
    except ClientDisconnect:
        raise BadRequest(messages.IMPORT_DISCONNECTED) from None
    if size == 0:
        raise BadRequest(messages.EMPTY_BODY)


async def import_relations(ctx: Context) -> Response:
    found = media_type(ctx.request)
    if found != NDJSON:
        raise UnsupportedMediaType(messages.IMPORT_MEDIA_TYPE)
    outcome = await service.import_lines(
        ctx.db,
        project=ctx.project,
        chunks=upload(ctx.request, limit=ctx.request.app.state.settings.import_max_bytes),
        may_change_types=TYPES_WRITE in ctx.principal.scopes,
    )
    return ctx.hal(outcome.body())


# `export` and `import` become reserved words by being declared here (service/reserved.py).
routes: list[ApiRoute] = [
    api_route("/relation/export", export_relations, method="GET", name="relations:export", scope=READ),
    # The upload streams: no Idempotency-Key (a replay would need the whole body to compare).
    api_route(
        "/relation/import", import_relations, method="POST", name=IMPORT_ROUTE, scope=WRITE, streams_body=True
    ),
]
