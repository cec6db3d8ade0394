"""A worker's read cache as the request pipeline uses it: `serve` answers a cacheable read from the
store or reads it and keeps it; `synced` holds a write's answer until the cache no
longer has what the write changed. Every step before (credentials, scope, rate limit, revision) has
run for a cached answer as for any other; only the handler is skipped."""

from __future__ import annotations

from starlette.responses import Response

from service.cache.follower import Follower, Ticket
from service.cache.store import Entry, Store
from service.changes.listener import Listener
from service.context import Context, Handler, ReadTags
from service.errors import ApiError


class CachedResponse(Response):
    """An answer kept as its handler rendered it: its body and its headers."""

    def __init__(self, entry: Entry) -> None:
        self.status_code = 200
        self.body = entry.body
        self.background = None
        self.raw_headers = entry.response_headers()


class ReadCache:
    """Off (`enabled` False) with RELATIONS_CACHE_BYTES=0: every read runs its handler."""

    def __init__(self, listener: Listener, *, limit_bytes: int, max_lag_ms: int) -> None:
        self.enabled = limit_bytes > 0
        self.store = Store(limit_bytes)
        self.follower = Follower(self.store, listener, max_lag_ms=max_lag_ms)
        self.bypassed = 0

    async def serve(self, ctx: Context, tags_of: ReadTags, call_next: Handler) -> Response:
        if not self.enabled or not self.follower.fresh(ctx.min_revision):
            self.bypassed += 1
            return await call_next(ctx)
        try:
            tags = tags_of(ctx)
        except ApiError:  # a malformed path: the handler answers it
            return await call_next(ctx)
        key = self._key(ctx)
        entry = self.store.get(key)
        if entry is not None:
            return CachedResponse(entry)
        ticket = self.follower.ticket()
        # A replica only once it has replayed every change the cache has applied (else the primary).
        with ctx.db.reading(max(self.follower.through, ctx.min_revision or 0)):
            response = await call_next(ctx)
        if response.status_code == 200 and self.follower.current(ctx.project, tags, ticket):
            body = getattr(response, "body", None)
            if isinstance(body, bytes):
                self.store.put(key, Entry.of(ctx.project, tags, body, response.raw_headers))
        return response

    def ticket(self) -> Ticket | None:
        """Taken before a write runs: its answer may be kept for a read only if still current after."""
        return self.follower.ticket() if self.enabled else None

    def written(self, ctx: Context, response: Response, ticket: Ticket | None) -> None:
        """Right after the commit of a write that named the tags it touched (sync_cache): drop them, and
        keep its answer for the GET of its path when that is the GET's answer (`ctx.answers_read`: a
        relation's PUT answers the relation as its GET does, for the same Accept, scheme and Host) and
        no other change to what it shows was dropped since `ticket`: the answer is then the newest
        committed state of it. The poll that sees this write's own change spares the entry (same
        transaction id); any later change drops it."""
        assert ctx.touched is not None
        read = ctx.answers_read
        self.follower.drop(ctx.project, ctx.touched, xid=read[1] if read else None)
        body = getattr(response, "body", None)
        if read is None or response.status_code != 200 or not isinstance(body, bytes):
            return
        tags, xid = read
        if self.follower.current(ctx.project, tags, ticket, xid=xid):
            headers = [(name, value) for name, value in response.raw_headers if name == b"content-type"]
            self.store.put(self._key(ctx, query=""), Entry.of(ctx.project, tags, body, headers, xid=xid))

    def mark(self) -> int | None:
        """Right after a write's commit: the poll `synced` will wait for (None: nothing to wait for)."""
        return self.follower.mark() if self.enabled else None

    async def synced(self, project: str, mark: int) -> None:
        await self.follower.synced(project, mark)

    async def run(self) -> None:
        if self.enabled:
            await self.follower.run()

    @staticmethod
    def _key(ctx: Context, *, query: str | None = None) -> str:
        """Everything an answer depends on besides the database: the project, the path and query as
        sent, the representation asked for, and what the base of its links comes from (scheme and
        Host, after the trusted proxies' headers were applied; RELATIONS_PUBLIC_URL is fixed). One
        string (a tuple of six took 270 bytes an entry), its parts apart by a NUL, which no header
        value, path or project alias can hold."""
        scope = ctx.request.scope
        headers = ctx.headers
        accept = headers.get("accept") or "*/*"  # (none is any, RFC 9110)
        if query is None:
            query = scope["query_string"].decode("latin-1")
        return f"{ctx.project}\0{scope['path']}\0{query}\0{accept}\0{scope['scheme']}\0{headers.get('host')}"
