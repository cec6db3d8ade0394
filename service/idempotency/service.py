"""One mechanism for every authenticated write (POST, PUT, PATCH, DELETE): the pipeline's idempotency
step (service/pipeline.py), after the body is read and before the handler.

With an `Idempotency-Key` header, the key is claimed (a row of `idempotency_key`, per project) in the
same transaction as the handler's work and its stored answer, so either all of it commits or none:
- the same key, method, path, query and body again → the first answer (status, body, headers such as
  Location and ETag) with `Idempotent-Replayed: true`, and nothing is done twice;
- the same key for another request → 422 ValidationFailed (details.errors["Idempotency-Key"]);
- two requests with one key at once: the second waits on the first's claim (a unique-index wait in
  PostgreSQL, so across workers) and then replays its answer; if it waits past the statement timeout it
  gets 503 with Retry-After, and its retry replays;
- only successes are kept: a request that failed did nothing, and a retry with the key runs again;
- keys are kept `idempotency_hours` (24) and then pruned; an expired key is simply new.
Without the header a write costs one header lookup more."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re

from starlette.requests import Request
from starlette.responses import Response

from service import messages
from service.context import Context, Handler
from service.db import Database
from service.errors import ApiError, BadRequest, ValidationFailed
from service.idempotency import queries

log = logging.getLogger("service.idempotency")

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
PRUNE_EVERY_SECONDS = 600
_SANE_KEY = re.compile(r"[\x21-\x7e]{1,255}")
_NOT_STORED = frozenset({"content-length", "x-request-id"})


class _Unstored(Exception):
    """Carries a non-success answer out of the transaction, so the key's claim is rolled back."""

    def __init__(self, response: Response) -> None:
        self.response = response


def request_hash(request: Request, body: bytes) -> bytes:
    digest = hashlib.sha256()
    for part in (
        request.method.encode(),
        request.url.path.encode(),
        request.url.query.encode(),
        request.headers.get("content-type", "").encode("latin-1"),
    ):
        digest.update(len(part).to_bytes(8, "big") + part)
    digest.update(body)
    return digest.digest()


async def idempotent(ctx: Context, call_next: Handler) -> Response:
    """The pipeline step: `call_next` at most once per `Idempotency-Key`; the operation's
    `invalid_message` heads the 422 for a reused key."""
    key = ctx.request.headers.get(HEADER)
    if key is None:
        return await call_next(ctx)
    if not _SANE_KEY.fullmatch(key):
        raise BadRequest(messages.IDEMPOTENCY_KEY_INVALID)
    return await _once(ctx, call_next, key)


async def _once(ctx: Context, handler: Handler, key: str) -> Response:
    digest = request_hash(ctx.request, ctx.body)
    hours: int = ctx.request.app.state.settings.idempotency_hours
    try:
        async with ctx.db.transaction():
            if await queries.claim(ctx.db, project=ctx.project, key=key, request_hash=digest, hours=hours):
                return await _run_and_store(ctx, handler, key)
            first = await queries.find(ctx.db, project=ctx.project, key=key)
    except _Unstored as unstored:
        return unstored.response
    if first is None:  # pruned between the two statements: as good as new
        return await _once(ctx, handler, key)
    if bytes(first["request_hash"]) != digest:
        raise ValidationFailed(
            ctx.operation.invalid_message, errors={HEADER: [messages.IDEMPOTENCY_KEY_REUSED]}
        )
    headers = queries.stored_headers(first)
    headers[REPLAYED_HEADER] = "true"
    return Response(bytes(first["body"]), status_code=first["status"], headers=headers)


async def _run_and_store(ctx: Context, handler: Handler, key: str) -> Response:
    response = await handler(ctx)
    body = getattr(response, "body", None)
    if not 200 <= response.status_code < 300 or not isinstance(body, bytes):
        raise _Unstored(response)
    headers = {
        name.decode("latin-1"): value.decode("latin-1")
        for name, value in response.raw_headers
        if name.decode("latin-1").lower() not in _NOT_STORED
    }
    await queries.store(
        ctx.db, project=ctx.project, key=key, status=response.status_code, headers=headers, body=body
    )
    return response


async def prune_forever(db: Database, *, hours: int) -> None:
    """Background task of each worker: drop expired keys every few minutes (the claim ignores them
    anyway, so this only keeps the table small)."""
    while True:
        try:
            removed = await queries.prune(db, hours=hours)
            if removed:
                log.info("pruned %d expired idempotency keys", removed)
        except ApiError as error:  # database away: try again next round
            log.warning("could not prune idempotency keys: %s", error.message)
        await asyncio.sleep(PRUNE_EVERY_SECONDS)
