"""HTTP handlers for `/relation/parent/{guid}/{alias}`: read one parent's ordered child list, and edit it
through service.py (one call)."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

from starlette.responses import Response

from service import jsonapi, messages
from service.auth import READ, TYPES_WRITE, WRITE
from service.bodies import JSON_API, media_type, path_guid
from service.cache import tags
from service.child_lists import queries, service
from service.child_lists.bodies import Edit, read_delete, read_json_api, read_patch, read_post, read_put
from service.child_lists.service import ListEdit, check_spec, read_alias
from service.cursors import ListKey, PageStart, Slice
from service.db import Record
from service.endpoint import ApiRoute, Context, operation
from service.errors import RelationTypeNotFound, UnsupportedMediaType
from service.hal import link_header
from service.relation_types import queries as type_queries
from service.relations.model import represent_page

PATH = "/relation/parent/{guid}/{alias}"


# A list is read (and its cursors made) as GET reads it; an edit answers that list's first page.
LIST_NAME = "child-lists:get"


def by_position(row: Record) -> ListKey:
    return (row["position"], row["id"])


def json_api_list(
    ctx: Context, row: Record, parent: uuid.UUID, page: Slice, window: PageStart
) -> dict[str, Any]:
    related = ctx.links.href("relations:list-by-parent", guid=parent)
    return jsonapi.linkage(
        ctx.request,
        ctx.links,
        children=[str(child["child"]) for child in page.rows],
        object_type=row["child_object_type"],
        one=row["cardinality"] == "one",
        total=page.total,
        window=window,
        edges=ctx.edges(page, by_position),
        related=f"{related}?{urlencode({'relationType': row['alias']})}",
    )


async def get_list(ctx: Context) -> Response:
    parent = path_guid(ctx.path["guid"])
    spec = read_alias(ctx.path["alias"])
    json_api = jsonapi.negotiate(ctx.request)  # else HAL, as for every other Accept
    if json_api:
        jsonapi.refuse_parameters(ctx.request)
    # JSON:API's `page[number]`/`page[size]` (by offset) and `page[after]`/`page[before]` (cursors)
    # beside `page`, `pageSize` and `cursor`, in either representation.
    paging = jsonapi.paging(ctx.request)
    row = await type_queries.get(ctx.db, project=ctx.project, alias=spec.alias)
    if row is None:
        raise RelationTypeNotFound(spec.alias)
    check_spec(spec, row)
    # A to-one linkage is one identifier, never paged.
    one = json_api and row["cardinality"] == "one"
    window = ctx.window(LIST_NAME, queries.START, paging=paging, first_page=one)
    jsonapi.check_direction(paging, window)
    page, etag = await queries.page(
        ctx.db, project=ctx.project, alias=spec.alias, parent=parent, window=window
    )
    headers = {"ETag": etag, "Vary": "Accept"}
    if json_api:
        return jsonapi.JsonApiResponse(json_api_list(ctx, row, parent, page, window), headers=headers)
    items = represent_page(ctx.links, page.rows)
    return ctx.page(
        key="relations", items=items, window=window, page=page, key_of=by_position, headers=headers
    )


def read_edit(ctx: Context) -> tuple[Edit, bool]:
    """The request's edit, and whether it came as JSON:API."""
    method = ctx.request.method
    json_api = media_type(ctx.request) == JSON_API
    jsonapi.negotiate(ctx.request)  # 406 by JSON:API's rule; the answer's form follows the body's
    if json_api:
        jsonapi.check_content_type(ctx.request)
    if json_api and method == "PUT":
        raise UnsupportedMediaType(messages.JSON_API_PUT)
    if method == "DELETE" and not ctx.body.strip() and not json_api:  # JSON:API always names what to remove
        return read_delete(None), False
    body = ctx.json(allow=(JSON_API,))
    if json_api:
        return read_json_api(method, body), True
    jsonapi.refuse_json_api_as_json(body)
    readers = {"PATCH": read_patch, "PUT": read_put, "POST": read_post, "DELETE": read_delete}
    return readers[method](body), False


def list_of(ctx: Context) -> tuple[str, uuid.UUID]:
    """The list a request edits: its edits queue together (service/pipeline.py: wait_in_queue)."""
    return read_alias(ctx.path["alias"]).alias, path_guid(ctx.path["guid"])


async def edit_list(ctx: Context) -> Response:
    parent = path_guid(ctx.path["guid"])
    spec = read_alias(ctx.path["alias"])
    edit, json_api = read_edit(ctx)
    window = ctx.window(LIST_NAME, queries.START, first_page=True)
    done = await service.edit_list(
        ctx.db,
        ListEdit(
            project=ctx.project,
            spec=spec,
            parent=parent,
            edit=edit,
            method=ctx.request.method,
            json_api=json_api,
            if_match=ctx.request.headers.get("if-match"),
            page_size=window.page_size,
            may_create_types=TYPES_WRITE in ctx.principal.scopes,
        ),
    )
    if json_api:
        return Response(status_code=204, headers={"ETag": done.etag})
    if jsonapi.negotiate(ctx.request):  # a Strapi or Backendless edit from a JSON:API client
        linkage = json_api_list(ctx, done.list_type, parent, done.page, window)
        linkage["meta"]["changes"] = done.changes
        return jsonapi.JsonApiResponse(linkage, headers={"ETag": done.etag})
    items = represent_page(ctx.links, done.page.rows)
    body = ctx.paged(key="relations", items=items, window=window, page=done.page, key_of=by_position)
    body["_changes"] = done.changes
    return ctx.hal(body, headers={"ETag": done.etag, "Link": link_header(ctx.request, ctx.links, body)})


def _edit(method: str) -> Any:
    return operation(
        edit_list, method=method, name=f"child-lists:{method.lower()}", scope=WRITE, queue=list_of
    )


routes: list[ApiRoute] = [
    ApiRoute(
        PATH,
        [
            operation(get_list, method="GET", name="child-lists:get", scope=READ, cache=tags.parent),
            *(_edit(method) for method in ("PATCH", "PUT", "POST", "DELETE")),
        ],
    )
]
