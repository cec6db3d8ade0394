"""Routes of the API: one wrapper does, in SPEC §2's order, the version check (400), authentication
(401), then project and scope (403), then the rate limit (429), and hands the handler a Context.
Routing itself answers unknown paths (404) and wrong methods (405) before any of this."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service import messages, revisions
from service.auth import TYPES_WRITE, Authenticator, Principal
from service.db import Database, Reading
from service.errors import BadRequest, Forbidden
from service.hal import HalResponse, Links, Paging, links_for
from service.idempotency.service import idempotent
from service.projects.service import valid_project_alias
from service.rate_limits.service import RateLimits

# Every pattern of the service is used with fullmatch: `$` would also accept a final newline.
SUPPORTED_VERSION = re.compile(r"2(\.\d+)?")
_ACCEPT_VERSION = re.compile(r";\s*v\s*=\s*([^;,\s]+)")
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass
class Context:
    """What a handler needs: the request, the project it acts on, and the database."""

    request: Request
    principal: Principal
    project: str
    # `Relations-Min-Revision` of a read (SPEC §12), parsed; None when not given.
    min_revision: int | None = None

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
        """Marks the statements of a block as this request's reads (GET handlers are in one already;
        a response streamed after its handler returned enters one itself)."""
        return self.db.reading(self.min_revision)

    def paging(self) -> Paging:
        return Paging.from_request(self.request)

    def hal(self, content: Any, status: int = 200, headers: dict[str, str] | None = None) -> HalResponse:
        return HalResponse(content, status_code=status, headers=headers)


Handler = Callable[[Context], Awaitable[Response]]


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


def requested_version(request: Request, headers: Mapping[str, str]) -> str | None:
    version = headers.get("api-version") or query_value(request, "api-version")
    if version is None:
        found = _ACCEPT_VERSION.search(headers.get("accept", ""))
        version = found.group(1) if found else None
    return version


def check_version(request: Request, headers: Mapping[str, str]) -> None:
    version = requested_version(request, headers)
    if version is not None and not SUPPORTED_VERSION.fullmatch(version.strip(" \t")):
        raise BadRequest(messages.INVALID_VERSION.format(version=version[:32]))


def requested_project(request: Request, headers: Mapping[str, str], principal: Principal) -> str:
    """`Umb-Project-Alias` from header or query, else the credential's; another project → 403.

    When both forms are given, each must name the credential's project: an ambiguous request is
    refused rather than resolved in either direction."""
    given = [
        alias
        for alias in (headers.get("umb-project-alias"), query_value(request, "Umb-Project-Alias"))
        if alias  # an empty value counts as absent
    ]
    for alias in given:
        if not valid_project_alias(alias) or alias != principal.project:
            raise Forbidden()
    return principal.project


class ApiRoute(Route):
    """A route behind the version, credential, project and scope checks; `scope` is what it needs."""

    def __init__(self, path: str, endpoint: Callable[..., Any], *, method: str, name: str, scope: str):
        super().__init__(path, endpoint, methods=[method], name=name)
        self.scope = scope


async def answer_write(run: Handler, ctx: Context) -> Response:
    """A write, on the primary; a success answers the revision that covers it (SPEC §12)."""
    response = await run(ctx)
    if 200 <= response.status_code < 300:
        revision = await ctx.db.committed()
        if revision is not None:
            response.headers[revisions.HEADER] = revisions.render(revision)
    return response


async def answer_read(run: Handler, ctx: Context, headers: Mapping[str, str]) -> Response:
    """A read, on a replica that is fresh enough (`Relations-Min-Revision`), else on the primary."""
    given = headers.get("relations-min-revision")
    if given is not None:
        ctx.min_revision = revisions.parse_header(given)
    with ctx.db.reading(ctx.min_revision):
        return await run(ctx)


def api_route(
    path: str, handler: Handler, *, method: str, name: str, scope: str, idempotency: bool = True
) -> ApiRoute:
    """An authenticated API route for one method, requiring `scope`. Writes honour `Idempotency-Key`
    unless `idempotency` is False (a streamed body cannot be kept for a replay), and answer
    `Relations-Revision`; reads honour `Relations-Min-Revision`."""
    run = handler
    writes = method in WRITE_METHODS
    if writes and idempotency:
        invalid = messages.RELATION_TYPE_INVALID if scope == TYPES_WRITE else messages.RELATION_INVALID
        run = idempotent(handler, invalid_message=invalid)

    async def endpoint(request: Request) -> Response:
        headers = checked_headers(request)
        check_version(request, headers)
        authenticator: Authenticator = request.app.state.authenticator
        limits: RateLimits = request.app.state.rate_limits
        # Failed authentications are limited per client address before they reach the database.
        principal = await limits.authenticate(request, authenticator, headers)
        project = requested_project(request, headers, principal)
        if scope not in principal.scopes:
            raise Forbidden()
        await limits.admit(request, principal)  # SPEC §13: 429 after 401/403, before the request
        request.state.project = project
        ctx = Context(request, principal, project)
        if writes:
            return await answer_write(run, ctx)
        return await answer_read(run, ctx, headers)

    endpoint.__name__ = handler.__name__
    endpoint.__doc__ = handler.__doc__
    return ApiRoute(path, endpoint, method=method, name=name, scope=scope)
