"""HAL rendering: the one response class, links built from the named routes, and paged lists."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from service import messages
from service.cursors import Cursors, ListKey, PageStart, Position
from service.errors import BadRequest

HAL_JSON = "application/hal+json"
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


class HalResponse(Response):
    media_type = HAL_JSON

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def route_templates(routes: Iterable[BaseRoute], prefix: str = "") -> dict[str, str]:
    """Route name → path with `{param}` placeholders, read once from the routing table."""
    templates: dict[str, str] = {}
    for route in routes:
        if isinstance(route, Route) and route.name:
            # A route of several operations (service.endpoint.ApiRoute) names each of them.
            for name in getattr(route, "names", None) or [route.name]:
                templates[name] = prefix + route.path_format
        elif isinstance(route, Mount):
            templates.update(route_templates(route.routes, prefix + route.path.rstrip("/")))
    return templates


class Links:
    """Absolute hrefs for one request: `base` (RELATIONS_PUBLIC_URL or the request's own) plus a
    named route's path."""

    def __init__(self, base: str, templates: Mapping[str, str]) -> None:
        self.base = base
        self._templates = templates

    def href(self, name: str, **params: object) -> str:
        return self.base + self._templates[name].format(**params)

    def relation(self, relation_id: int) -> str:
        return self.base + self._templates["relations:get"].format(id=relation_id)

    def relation_type(self, alias: str) -> str:
        return self.base + self._templates["relation-types:get"].format(alias=alias)

    def relations_of_type(self, alias: str) -> str:
        return self.base + self._templates["relations:list-by-type"].format(alias=alias)


# A Host header Starlette takes whole as the URL's netloc (a name and a valid port); others go its way.
_PLAIN_HOST = re.compile(r"[A-Za-z0-9.-]+(?::([0-9]{1,5}))?")


def request_base(request: Request) -> str:
    """`scheme://host` of the request's own URL. The usual case is read straight from the scope:
    building `request.url` costs more than the query of a by-id read."""
    scope = request.scope
    scheme = scope.get("scheme", "http")
    for key, value in scope["headers"]:
        if key == b"host":
            host = value.decode("latin-1")
            plain = _PLAIN_HOST.fullmatch(host)
            if plain and scheme in ("http", "https") and int(plain.group(1) or 0) <= 65535:
                return f"{scheme}://{host}"
            break
    url = request.url
    return f"{url.scheme}://{url.netloc}"


def links_for(request: Request) -> Links:
    base = request.app.state.settings.public_url
    if base is None:
        base = request_base(request)
    return Links(base, request.app.state.link_templates)


@dataclass(frozen=True)
class Paging:
    """`?page=`, `?pageSize=` and `?cursor=` as given (a cursor is read against its list later);
    `cursor_parameter` names the parameter the cursor came in, for the error about a bad one."""

    page: int
    page_size: int
    cursor: str | None = None
    cursor_parameter: str = "cursor"

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size

    @classmethod
    def from_request(cls, request: Request) -> Paging:
        query = request.query_params
        return cls(
            page=_positive_int(query.get("page"), 1, None, messages.INVALID_PAGE),
            page_size=_positive_int(
                query.get("pageSize"), DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, messages.INVALID_PAGE_SIZE
            ),
            cursor=query.get("cursor"),  # an empty one is malformed (400), not absent
        )


def _positive_int(raw: str | None, default: int, limit: int | None, message: str) -> int:
    if raw is None:
        return default
    text = raw.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 9:
        raise BadRequest(message)
    value = int(text)
    if value < 1 or (limit is not None and value > limit):
        raise BadRequest(message)
    return value


@dataclass(frozen=True)
class Edges:
    """What the links of a page need beyond its items: the keys of its first and last item, whether
    more items lie beyond it in the direction it was read, and the cursors to write them into."""

    first: ListKey
    last: ListKey
    more: bool
    cursors: Cursors


@dataclass(frozen=True)
class Around:
    """A page's number and where its `next` and `prev` links lead: after its last item and before its
    first (None where there is no such link; `prev_page` for the empty page past the end of `?page=`,
    which keeps a `prev` page link)."""

    page: int
    next: Position | None
    prev: Position | None
    prev_page: int | None


def around(window: PageStart, edges: Edges | None, total_pages: int) -> Around:
    """Where the links of a page lead, whichever representation writes them."""
    page = window.page
    if edges and not window.forward and not edges.more:
        page = 1  # read back to the list's start
    if edges is None:
        past_end = window.cursor is None and 1 < page <= total_pages + 1
        return Around(page, None, None, page - 1 if past_end else None)
    after = Position(True, page + 1, edges.last) if edges.more or not window.forward else None
    backward = (window.cursor is not None or window.offset) if window.forward else edges.more
    before = Position(False, max(page - 1, 1), edges.first) if backward else None
    return Around(page, after, before, None)


def paged(
    request: Request,
    links: Links,
    *,
    key: str,
    items: Sequence[Mapping[str, Any]],
    total: int,
    window: PageStart,
    edges: Edges | None,
) -> dict[str, Any]:
    """A HAL page: the four paging fields, self/page/next/prev links, a link per item under `key`
    (always an array) and the items under `_embedded[key]` (its only key). `next` and `prev` are
    cursor links right after the page's last item and before its first (`edges`, None for an empty
    page); an empty page of `?page=` past the end keeps a `prev` page link."""
    total_pages = math.ceil(total / window.page_size) if total else 0
    found = around(window, edges, total_pages)
    hal_links: dict[str, Any] = {
        "self": {"href": list_href(request, links, window.page, window.cursor)},
        key: [item["_links"]["self"] for item in items],
        "page": {"href": links.base + request_path(request) + "{?page,pageSize}", "templated": True},
    }
    for rel, position in (("next", found.next), ("prev", found.prev)):
        if edges is not None and position is not None:
            cursor = edges.cursors.make(window.scope, position)
            hal_links[rel] = {"href": list_href(request, links, 0, cursor)}
    if found.prev_page is not None:
        hal_links["prev"] = {"href": list_href(request, links, found.prev_page, None)}
    return {
        "_totalItems": total,
        "_totalPages": total_pages,
        "_page": found.page,
        "_pageSize": window.page_size,
        "_links": hal_links,
        "_embedded": {key: list(items)},
    }


def list_href(request: Request, links: Links, page: int, cursor: str | None) -> str:
    """The list's href at `cursor`, else at `page`, keeping the request's other query parameters."""
    query = [(name, value) for name, value in request.query_params.multi_items() if name not in PAGING]
    first = ("cursor", cursor) if cursor is not None else ("page", str(page))
    return f"{links.base}{request_path(request)}?{urlencode([first, *query])}"


# JSON:API's spellings too: the child lists also read them (service/jsonapi.py).
PAGING = frozenset({"page", "cursor", "page[number]", "page[after]", "page[before]"})


def link_header(request: Request, links: Links, body: Mapping[str, Any]) -> str:
    """The page's paging links as RFC 8288 says (`next`, `prev`, `first`)."""
    found = body["_links"]
    parts = [f'<{found[rel]["href"]}>; rel="{rel}"' for rel in ("next", "prev") if rel in found]
    parts.append(f'<{list_href(request, links, 1, None)}>; rel="first"')
    return ", ".join(parts)


def request_path(request: Request) -> str:
    """The request's path as `request.url.path` spells it, without building the URL (which costs
    more than rendering the page's links)."""
    path: str = request.scope["path"]
    return path.replace("?", "%3F").replace("#", "%23").replace("\\", "%5C")


def iso(moment: Any) -> str:
    """Timestamps as `2026-11-23T10:00:00Z` (UTC, seconds), the shape of the Heartcore examples.
    asyncpg gives timestamptz in UTC; C's isoformat costs 1.3 µs where formatting by hand cost 2."""
    text: str = moment.isoformat()
    return text[:19] + "Z"
