"""What a handler is given: one `Context` per API request, filled by the pipeline's steps
(service/pipeline.py) in their order — the credential's principal and project, then the body, read
once — and read by the handler."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from service import messages
from service.auth import Principal
from service.bodies import parse_json
from service.cursors import Cursors, ListKey, PageStart, Slice
from service.db import Database, Reading, Record
from service.errors import BadRequest
from service.hal import Edges, HalResponse, Links, Paging, link_header, links_for, paged

_UNPARSED = object()


class Context:
    """The request, the project it acts on, its body, and the database."""

    principal: Principal  # set by the credentials step
    project: str  # set by the project step

    def __init__(self, request: Request, operation: Operation, headers: dict[str, str]) -> None:
        self.request = request
        self.operation = operation
        # The headers the checks read, picked in one pass (service.pipeline.checked_headers).
        self.headers = headers
        # The raw body, read once and size-limited by the body step (b"" for a request without one).
        self.body = b""
        # `Relations-Min-Revision` of a read (SPEC §12), parsed by the read's revision step.
        self.min_revision: int | None = None
        # The read cache's poll that will have seen a write's commit (set right after it: wake_readers),
        # and — when its handler knows them all — the tags the write touched (service/cache/tags.py).
        self.cache_mark: int | None = None
        self.touched: frozenset[tuple[str, object]] | None = None
        # Set by a write whose answer is also what a GET of its path answers (a relation's PUT): that
        # GET's tags and the write's transaction id. The read cache keeps the answer for the GET
        # (service/cache/service.py).
        self.answers_read: tuple[frozenset[tuple[str, object]], int] | None = None
        self._json: Any = _UNPARSED

    @property
    def db(self) -> Database:
        db: Database = self.request.app.state.db
        return db

    @cached_property
    def links(self) -> Links:
        return links_for(self.request)

    @property
    def path(self) -> dict[str, Any]:
        return self.request.path_params

    def reading(self) -> Reading:
        """Marks the statements of a block as this request's reads: GET handlers are in one already;
        a response streamed after its handler returned (a feed) enters one itself."""
        return self.db.reading(self.min_revision)

    def paging(self) -> Paging:
        return Paging.from_request(self.request)

    def hal(self, content: Any, status: int = 200, headers: dict[str, str] | None = None) -> HalResponse:
        return HalResponse(content, status_code=status, headers=headers)

    def window(
        self,
        name: str,
        start: ListKey,
        *filters: object,
        first_page: bool = False,
        paging: Paging | None = None,
    ) -> PageStart:
        """Where this request's page of the list `name` (with `filters`) starts. `start` is a key
        before the list's first item; a cursor is read against this list, page size and project.
        `first_page`: the list's first page, whatever the query asks (an edit's answer); `paging`: the
        page and size as the route read them (else `?page=`, `?pageSize=`)."""
        paging = paging or self.paging()
        if first_page:
            paging = Paging(1, paging.page_size)
        scope = "\n".join(
            (self.project, name, self.request.scope["path"], repr(filters), str(paging.page_size))
        )
        cursors: Cursors = self.request.app.state.cursors
        return PageStart.of(
            page=paging.page,
            page_size=paging.page_size,
            cursor=paging.cursor,
            cursors=cursors,
            scope=scope,
            start=start,
            parameter=paging.cursor_parameter,
        )

    def paged(
        self, *, key: str, items: Sequence[Mapping[str, Any]], window: PageStart, page: Slice, key_of: KeyOf
    ) -> dict[str, Any]:
        """The HAL body of one page of a list, with cursor links after and before it."""
        edges = self.edges(page, key_of)
        return paged(
            self.request, self.links, key=key, items=items, total=page.total, window=window, edges=edges
        )

    def edges(self, page: Slice, key_of: KeyOf) -> Edges | None:
        """What a page's cursor links are made of (None for an empty page)."""
        if not page.rows:
            return None
        cursors: Cursors = self.request.app.state.cursors
        return Edges(key_of(page.rows[0]), key_of(page.rows[-1]), page.more, cursors)

    def page(
        self,
        *,
        key: str,
        items: Sequence[Mapping[str, Any]],
        window: PageStart,
        page: Slice,
        key_of: KeyOf,
        headers: dict[str, str] | None = None,
    ) -> HalResponse:
        """`paged` as a response, its links also in a `Link` header."""
        body = self.paged(key=key, items=items, window=window, page=page, key_of=key_of)
        return self.hal(
            body, headers={**(headers or {}), "Link": link_header(self.request, self.links, body)}
        )

    def json(self, *, allow: tuple[str, ...] = ()) -> Any:
        """The body as JSON, parsed once (`allow`: media types accepted besides the JSON ones)."""
        if self._json is _UNPARSED:
            self._json = parse_json(self.body, self.request.headers.get("content-type", ""), allow=allow)
        return self._json

    def json_object(self) -> dict[str, Any]:
        body = self.json()
        if not isinstance(body, dict):
            raise BadRequest(messages.BODY_NOT_OBJECT)
        return body


Handler = Callable[[Context], Awaitable[Response]]
# The key of a list's row in the list's order (what a cursor continues after).
KeyOf = Callable[[Record], ListKey]


# What a cacheable read's answer depends on (service/cache/tags.py), from its path.
ReadTags = Callable[[Context], frozenset[tuple[str, object]]]


@dataclass(frozen=True)
class Operation:
    """One method of a route: its handler, name (for links and logs), the scope it needs, the message
    heading a 422 about its Idempotency-Key, and — for edits that must not run at once — the queue it
    waits in before it takes a database connection (a key within the project, from the path).

    `streams_body`: the handler reads `ctx.request.stream()` itself, with a limit of its own (a bulk
    import); the pipeline then neither reads the body nor honours `Idempotency-Key`, whose replay
    needs the whole body to compare. `idempotency` False: the pipeline does not honour
    `Idempotency-Key` either, because a replay would store the answer (one that carries a secret).
    `cache` (reads only): the tags the answer depends on, from the path (service/cache/tags.py); the
    worker's read cache may then answer it. `relational` False (writes only): the write changes no
    relation or relation type (a webhook's), so nothing the read cache or the change feed holds
    depends on it: it neither waits for the cache nor wakes the feed."""

    method: str
    handler: Handler
    name: str
    scope: str
    invalid_message: str = messages.RELATION_INVALID
    queue: Callable[[Context], Hashable] | None = None
    streams_body: bool = False
    idempotency: bool = True
    cache: ReadTags | None = None
    relational: bool = True
