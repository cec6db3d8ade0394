"""Routes of the API: one wrapper does, in SPEC §2's order, the version check (400), authentication
(401), then project and scope (403), then the rate limit (429), and hands the handler a Context.
Routing itself answers unknown paths (404) and wrong methods (405) before any of this."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service import messages
from service.auth import TYPES_WRITE, Authenticator, Principal
from service.cursors import Cursors, ListKey, PageStart, Slice
from service.db import Database, Record
from service.errors import BadRequest, Forbidden
from service.hal import Edges, HalResponse, Links, Paging, link_header, links_for, paged
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
        )

    def paged(
        self, *, key: str, items: Sequence[Mapping[str, Any]], window: PageStart, page: Slice, key_of: KeyOf
    ) -> dict[str, Any]:
        """The HAL body of one page of a list, with cursor links after and before it."""
        edges = None
        if page.rows:
            cursors: Cursors = self.request.app.state.cursors
            edges = Edges(key_of(page.rows[0]), key_of(page.rows[-1]), page.more, cursors)
        return paged(
            self.request, self.links, key=key, items=items, total=page.total, window=window, edges=edges
        )

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


Handler = Callable[[Context], Awaitable[Response]]
# The key of a list's row in the list's order (what a cursor continues after).
KeyOf = Callable[[Record], ListKey]


# The headers the checks read, picked in one pass over the raw list: building Starlette's Headers and
# looking each one up cost more than the rest of a by-id read's Python. First occurrence wins, as in
# Headers.get.
CHECKED_HEADERS = frozenset({b"authorization", b"api-key", b"api-version", b"accept", b"umb-project-alias"})


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


def api_route(path: str, handler: Handler, *, method: str, name: str, scope: str) -> ApiRoute:
    """An authenticated API route for one method, requiring `scope`. Writes honour `Idempotency-ListKey`."""
    run = handler
    if method in WRITE_METHODS:
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
        return await run(Context(request, principal, project))

    endpoint.__name__ = handler.__name__
    endpoint.__doc__ = handler.__doc__
    return ApiRoute(path, endpoint, method=method, name=name, scope=scope)
