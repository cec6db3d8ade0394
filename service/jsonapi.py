"""JSON:API 1.1 where the child lists speak it: media-type negotiation (415, 406), the error document
every non-2xx answer to a JSON:API request gets, and the resource-linkage document of a list read.

A request speaks JSON:API when its Content-Type is `application/vnd.api+json` (whatever its parameters)
or its Accept prefers that media type; only such requests see anything of this module."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

from service import messages
from service.cursors import PageStart, Position
from service.errors import ApiError, BadRequest, NotAcceptable, UnsupportedMediaType, ValidationFailed
from service.hal import MAX_PAGE_SIZE, PAGING, Edges, Links, Paging, _positive_int, around, request_path
from service.idempotency.service import HEADER as IDEMPOTENCY_KEY

JSON_API = "application/vnd.api+json"
JSONAPI_MEMBER = {"version": "1.1"}
# Extensions this server applies (none); `profile` values are ignored, as JSON:API says they may be.
SUPPORTED_EXTENSIONS: frozenset[str] = frozenset()
ALLOWED_PARAMETERS = frozenset({"ext", "profile"})

# One media range of a header: commas and semicolons inside quoted strings do not split.
_ITEM = re.compile(r'(?:[^,"]|"(?:\\.|[^"\\])*")+')
_PARAMETER = re.compile(r';\s*([^=;\s]+)\s*=\s*("(?:\\.|[^"\\])*"|[^;]*)')


class JsonApiResponse(Response):
    media_type = JSON_API

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


# --- media types ---


@dataclass(frozen=True)
class MediaRange:
    media_type: str  # lower-case `type/subtype`
    parameters: Mapping[str, str]  # lower-case names, unquoted values; without `q`
    q: float

    @property
    def is_json_api(self) -> bool:
        return self.media_type == JSON_API

    @property
    def supported(self) -> bool:
        """A JSON:API instance this server can honour: no parameter but `ext` and `profile`, and no
        extension it does not apply."""
        return set(self.parameters) <= ALLOWED_PARAMETERS and not unsupported_extensions(self.parameters)


def parse_media_range(text: str) -> MediaRange:
    media_type = text.split(";", 1)[0].strip().lower()
    parameters: dict[str, str] = {}
    q = 1.0
    for name, raw in _PARAMETER.findall(text):
        value = raw.strip()
        if value.startswith('"') and value.endswith('"') and len(value) >= 2:
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        if name.lower() == "q":
            try:
                q = min(max(float(value), 0.0), 1.0)
            except ValueError:
                q = 0.0
        else:
            parameters[name.lower()] = value
    return MediaRange(media_type, parameters, q)


def media_ranges(header: str) -> list[MediaRange]:
    return [parse_media_range(item) for item in _ITEM.findall(header) if item.strip()]


def unsupported_extensions(parameters: Mapping[str, str]) -> list[str]:
    return [ext for ext in parameters.get("ext", "").split() if ext not in SUPPORTED_EXTENSIONS]


def check_content_type(request: Request) -> None:
    """415 for `application/vnd.api+json` with a parameter other than `ext`/`profile`, or an `ext`
    this server does not apply (JSON:API 1.1, "Server Responsibilities")."""
    found = parse_media_range(request.headers.get("content-type", ""))
    if not found.is_json_api:
        return
    others = sorted(set(found.parameters) - ALLOWED_PARAMETERS)
    if others:
        parameters = "; ".join(f"{name}={found.parameters[name]}" for name in others)
        raise UnsupportedMediaType(
            messages.JSON_API_CONTENT_TYPE_PARAMETERS.format(parameters=parameters[:200]),
            source={"header": "Content-Type"},
        )
    extensions = unsupported_extensions(found.parameters)
    if extensions:
        raise UnsupportedMediaType(
            messages.JSON_API_EXTENSION_UNSUPPORTED.format(ext=extensions[0][:200]),
            source={"header": "Content-Type"},
        )


def _prefers(ranges: Sequence[MediaRange], json_api: Iterable[MediaRange]) -> bool:
    """Whether the best of `json_api` weighs at least as much as every other range (a tie goes to
    JSON:API: naming it at all is the stronger signal than a `*/*` beside it)."""
    best = max((found.q for found in json_api), default=0.0)
    others = max((found.q for found in ranges if not found.is_json_api), default=0.0)
    return best > 0 and best >= others


def negotiate(request: Request) -> bool:
    """True when the answer is to be JSON:API, False for HAL (SPEC §2: any other Accept gets HAL, no
    406). 406 only by JSON:API's rule: Accept names the JSON:API media type, always with parameters or
    extensions this server does not support."""
    accept = request.headers.get("accept", "")
    if "vnd.api+json" not in accept.lower():  # the usual request, answered without parsing
        return False
    ranges = media_ranges(accept)
    instances = [found for found in ranges if found.is_json_api and found.q > 0]  # q=0: "not this"
    usable = [found for found in instances if found.supported]
    if instances and not usable:
        raise NotAcceptable(messages.JSON_API_NOT_ACCEPTABLE, source={"header": "Accept"})
    return _prefers(ranges, usable)


def speaks_json_api(scope: Scope) -> bool:
    """Whether an error to this request is a JSON:API error document: a JSON:API Content-Type, or an
    Accept that prefers JSON:API (with any parameters: a 406 or 415 about them is JSON:API too)."""
    content_type = accept = ""
    for name, value in scope.get("headers", ()):
        if name == b"content-type" and not content_type:
            content_type = value.decode("latin-1")
        elif name == b"accept" and not accept:
            accept = value.decode("latin-1")
    if content_type.split(";", 1)[0].strip().lower() == JSON_API:
        return True
    if "vnd.api+json" not in accept.lower():
        return False
    ranges = media_ranges(accept)
    return _prefers(ranges, [found for found in ranges if found.is_json_api])


def refuse_json_api_as_json(body: Any) -> None:
    """A `{"data": …}` document sent as plain JSON would be read as a Strapi edit and refused for its
    unknown key; name the media type it needs instead."""
    if isinstance(body, dict) and "data" in body:
        raise UnsupportedMediaType(messages.JSON_API_AS_JSON, source={"header": "Content-Type"})


# --- the error document ---


def pointer(field: str) -> str | None:
    """`data[2].type` (a ValidationFailed field of a JSON:API body) as the JSON Pointer `/data/2/type`;
    None for fields that are not in a JSON:API body (a header, a path's alias)."""
    if field != "data" and not field.startswith(("data[", "data.")):
        return None
    return "/" + re.sub(r"\[(\d+)\]", r"/\1", field).replace(".", "/")


def title_of(code: str) -> str:
    """`ValidationFailed` → "Validation failed": fixed per code, unlike the reason phrases of
    `http.HTTPStatus`, which change between Python versions."""
    return re.sub(r"(?<!^)(?=[A-Z])", " ", code).capitalize()


def error_objects(error: ApiError) -> list[dict[str, Any]]:
    """One error object per problem: a ValidationFailed per field and message, anything else one.
    `title` is the code in words (the same for every occurrence, as JSON:API wants it); `detail` is
    the sentence the envelope's `message` carries, or for a field the field's message, with the
    envelope's field name and heading message under `meta`."""
    status, title = str(error.status), title_of(error.code)
    if not isinstance(error, ValidationFailed):
        found: dict[str, Any] = {
            "status": status,
            "code": error.code,
            "title": title,
            "detail": error.message,
        }
        if error.source:
            found["source"] = dict(error.source)
        return [found]
    objects = []
    for field, problems in error.errors.items():
        where = pointer(field)
        for problem in problems:
            item: dict[str, Any] = {"status": status, "code": error.code, "title": title, "detail": problem}
            if where is not None:
                item["source"] = {"pointer": where}
            elif field == IDEMPOTENCY_KEY:
                item["source"] = {"header": field}
            item["meta"] = {"field": field, "message": error.message}
            objects.append(item)
    return objects


def error_response(error: ApiError) -> Response:
    document = {"errors": error_objects(error), "jsonapi": JSONAPI_MEMBER}
    return JsonApiResponse(document, status_code=error.status, headers=error.headers or None)


# --- reading a list: paging and the linkage document ---

PAGE_PARAMETERS = {"page[number]": "page", "page[size]": "pageSize"}
# The cursor pagination profile's: the page after a next link's cursor, or before a prev link's.
AFTER, BEFORE = "page[after]", "page[before]"
CURSOR_PARAMETERS = (AFTER, BEFORE)
# Parameters of JSON:API's own that a relationship's linkage cannot honour: 400, as JSON:API says.
REFUSED_PARAMETERS = ("include", "sort")


def refuse_parameters(request: Request) -> None:
    """`include` and `sort` on a JSON:API read: 400, as JSON:API says for what a server cannot honour."""
    for name in REFUSED_PARAMETERS:
        if name in request.query_params:
            raise BadRequest(
                messages.JSON_API_PARAMETER_UNSUPPORTED.format(name=name), source={"parameter": name}
            )


def paging(request: Request) -> Paging:
    """`page[number]`/`page[size]` (JSON:API's page-based strategy) beside our `page`/`pageSize`, and
    the cursor pagination profile's `page[after]`/`page[before]` beside our `cursor`; given both,
    JSON:API's spelling wins (OpenAPI cannot say "not both", so neither do we). Any other `page[…]`
    is 400, and so are `page[after]` and `page[before]` together (no range pagination)."""
    query = request.query_params
    for name in query:
        if name.startswith("page[") and name not in PAGE_PARAMETERS and name not in CURSOR_PARAMETERS:
            raise BadRequest(
                messages.JSON_API_PAGE_PARAMETER.format(name=name[:100]), source={"parameter": name[:100]}
            )
    given = Paging.from_request(request)
    number = _page_value(query.get("page[number]"), "page[number]", given.page, None)
    size = _page_value(query.get("page[size]"), "page[size]", given.page_size, MAX_PAGE_SIZE)
    cursors = [name for name in CURSOR_PARAMETERS if name in query]
    if len(cursors) > 1:
        raise BadRequest(messages.JSON_API_RANGE_PAGINATION, source={"parameter": "page[before]"})
    if cursors:
        return Paging(number, size, query[cursors[0]], cursors[0])
    return Paging(number, size, given.cursor)


def check_direction(paging: Paging, window: PageStart) -> None:
    """A `page[after]` cursor is a next link's (it reads forward), a `page[before]` one a prev link's."""
    name = paging.cursor_parameter
    if window.cursor is not None and name in CURSOR_PARAMETERS and window.forward != (name == AFTER):
        raise BadRequest(messages.JSON_API_CURSOR_DIRECTION.format(name=name), source={"parameter": name})


def _page_value(raw: str | None, name: str, default: int, limit: int | None) -> int:
    message = messages.JSON_API_INVALID_PAGE_SIZE if limit else messages.JSON_API_INVALID_PAGE_NUMBER
    try:
        return _positive_int(raw, default, limit, message)
    except BadRequest:
        raise BadRequest(message, source={"parameter": name}) from None


def paging_links(
    request: Request, links: Links, *, window: PageStart, edges: Edges | None, total: int
) -> dict[str, str | None]:
    """`first`, `prev`, `next` of a page (null where there is none, as the cursor pagination profile
    has them), keeping the request's other parameters: `next` and `prev` carry the cursors HAL's
    links carry (service.hal.around), as `page[after]` and `page[before]`; `first` is page 1."""
    path = links.base + request_path(request)
    dropped = {"page", "pageSize", *PAGING, *PAGE_PARAMETERS}
    kept = [(name, value) for name, value in request.query_params.multi_items() if name not in dropped]

    def href(name: str, value: str) -> str:
        return f"{path}?{urlencode([(name, value), ('page[size]', str(window.page_size)), *kept])}"

    def cursor(name: str, position: Position | None) -> str | None:
        if edges is None or position is None:
            return None
        return href(name, edges.cursors.make(window.scope, position))

    found = around(window, edges, -(-total // window.page_size))
    prev = cursor(BEFORE, found.prev)
    if found.prev_page is not None:
        prev = href("page[number]", str(found.prev_page))
    return {"first": href("page[number]", "1"), "prev": prev, "next": cursor(AFTER, found.next)}


def type_name(object_type: str) -> str:
    """A relation type's child object type as a JSON:API type: lower case, `_` → `-`, singular as
    stored (`DOCUMENT` → `document`, `ORDER_ITEM` → `order-item`, `Unknown` → `unknown`). SPEC §6's
    409 rule compares ignoring case, `-`, `_` and a plural `s`, so each name read here is accepted
    back, and so is its plural (`documents`)."""
    return object_type.lower().replace("_", "-")


def self_href(request: Request, links: Links) -> str:
    query = request.scope.get("query_string", b"").decode("latin-1")
    return links.base + request_path(request) + (f"?{query}" if query else "")


def linkage(
    request: Request,
    links: Links,
    *,
    children: Sequence[str],
    object_type: str,
    one: bool,
    total: int,
    window: PageStart,
    edges: Edges | None,
    related: str,
) -> dict[str, Any]:
    """A relationship's resource linkage: `data` (identifiers in list order; for cardinality one an
    identifier or null, unpaged), `links` (`self`, `related`, the paging links), `meta.total`."""
    kind = type_name(object_type)
    identifiers = [{"type": kind, "id": child} for child in children]
    document_links: dict[str, str | None] = {"self": self_href(request, links), "related": related}
    data: Any = identifiers
    if one:
        data = identifiers[0] if identifiers else None
    else:
        document_links |= paging_links(request, links, window=window, edges=edges, total=total)
    return {"data": data, "links": document_links, "meta": {"total": total}, "jsonapi": JSONAPI_MEMBER}
