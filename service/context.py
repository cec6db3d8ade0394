"""What a handler is given: one `Context` per API request, filled by the pipeline's steps
(service/pipeline.py) in their order — the credential's principal and project, then the body, read
once — and read by the handler."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from service import messages
from service.auth import Principal
from service.bodies import parse_json
from service.db import Database, Reading
from service.errors import BadRequest
from service.hal import HalResponse, Links, Paging, links_for

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


@dataclass(frozen=True)
class Operation:
    """One method of a route: its handler, name (for links and logs), the scope it needs, the message
    heading a 422 about its Idempotency-Key, and — for edits that must not run at once — the queue it
    waits in before it takes a database connection (a key within the project, from the path).

    `streams_body`: the handler reads `ctx.request.stream()` itself, with a limit of its own (a bulk
    import); the pipeline then neither reads the body nor honours `Idempotency-Key`, whose replay
    needs the whole body to compare. `idempotency` False: the pipeline does not honour
    `Idempotency-Key` either, because a replay would store the answer (one that carries a secret)."""

    method: str
    handler: Handler
    name: str
    scope: str
    invalid_message: str = messages.RELATION_INVALID
    queue: Callable[[Context], Hashable] | None = None
    streams_body: bool = False
    idempotency: bool = True
