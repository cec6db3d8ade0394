"""HTTP handlers for `/relation/parent/{guid}/{alias}`: read and edit one parent's ordered child list."""

from __future__ import annotations

import asyncio
import re
import uuid
import weakref
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.responses import Response

from service import jsonapi, messages
from service.auth import READ, TYPES_WRITE, WRITE
from service.bodies import JSON_API, media_type, path_guid, read_body, read_json
from service.child_lists import planner, queries
from service.child_lists.bodies import (
    Edit,
    Item,
    read_delete,
    read_json_api,
    read_patch,
    read_post,
    read_put,
)
from service.child_lists.planner import Plan, Window, WindowTooSmall
from service.cursors import MIN_POSITION, ListKey, PageStart, Slice
from service.db import Record
from service.endpoint import ApiRoute, Context, api_route
from service.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    PreconditionFailed,
    RelationTypeNotFound,
    UnsupportedMediaType,
    invalid_relation,
    invalid_relation_type,
)
from service.fields import alias_problem
from service.hal import Paging, link_header
from service.relation_types import queries as type_queries
from service.relation_types.model import UNKNOWN, RelationTypeFields, object_type_problem
from service.relations.model import represent_page

PATH = "/relation/parent/{guid}/{alias}"
BACKENDLESS = re.compile(r"(?P<alias>[^:]+):(?P<object_type>[^:]+):(?P<cardinality>[1nN])")
# A window bigger than this is read as the whole list instead.
WINDOW_LIMIT = 2000


@dataclass(frozen=True)
class TypeSpec:
    """The path's alias; Backendless' `name:ObjectType:1|n` also says what to create if it is missing."""

    alias: str
    child_object_type: str | None = None
    cardinality: str | None = None


def read_alias(raw: str) -> TypeSpec:
    found = BACKENDLESS.fullmatch(raw)
    if found is None:
        if alias_problem(raw):
            raise RelationTypeNotFound(raw[:100])
        return TypeSpec(raw)
    alias, object_type = found["alias"], found["object_type"]
    problem = alias_problem(alias)
    if problem:
        raise invalid_relation_type("alias", problem)
    if object_type != UNKNOWN:
        object_type = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", object_type).upper()
    if object_type_problem(object_type):
        raise invalid_relation_type("childObjectType", messages.OBJECT_TYPE_INVALID)
    return TypeSpec(alias, object_type, "one" if found["cardinality"] == "1" else "many")


def check_spec(spec: TypeSpec, row: Record) -> None:
    if spec.cardinality is None:
        return
    if (row["cardinality"], row["child_object_type"]) != (spec.cardinality, spec.child_object_type):
        raise invalid_relation_type(
            "relationTypeAlias",
            messages.LIST_TYPE_MISMATCH.format(
                alias=spec.alias,
                cardinality=row["cardinality"],
                child_object_type=row["child_object_type"],
            ),
        )


async def type_for_edit(ctx: Context, spec: TypeSpec, parent: uuid.UUID) -> Record:
    """The relation type, held for the transaction, and the list's lock; a Backendless alias creates
    the type when missing."""
    row = await queries.type_and_lock(ctx.db, project=ctx.project, alias=spec.alias, parent=parent)
    if row is None and spec.cardinality is not None:
        if TYPES_WRITE not in ctx.principal.scopes:
            raise Forbidden()
        fields = RelationTypeFields(
            alias=spec.alias,
            name=spec.alias,
            child_object_type=spec.child_object_type or UNKNOWN,
            cardinality=spec.cardinality,
        )
        await type_queries.insert(ctx.db, project=ctx.project, fields=fields)
        row = await queries.type_and_lock(ctx.db, project=ctx.project, alias=spec.alias, parent=parent)
    if row is None:
        raise RelationTypeNotFound(spec.alias)
    check_spec(spec, row)
    return row


def _type_name(name: str) -> str:
    name = name.lower().replace("-", "").replace("_", "")
    return name[:-1] if name.endswith("s") else name


def check_json_api(method: str, edit: Edit, row: Record) -> None:
    """`data` of the right shape for the cardinality, and every `type` the child object type (409).

    `null` outside a PATCH is never right (400); a single identifier is a well-formed document that
    only the type's stored cardinality rules out (422, like the other cardinality checks)."""
    if edit.single and not edit.types and method != "PATCH":
        raise BadRequest(messages.JSON_API_NULL)
    if edit.single and row["cardinality"] == "many":
        raise invalid_relation("data", messages.JSON_API_TO_MANY)
    expected = row["child_object_type"]
    if expected == UNKNOWN:
        return
    for given in edit.types:
        if _type_name(given) != _type_name(expected):
            raise Conflict(
                messages.JSON_API_TYPE_MISMATCH.format(
                    type=given[:100], expected=expected, alias=row["alias"]
                )
            )


def check_if_match(header: str | None, current: str) -> None:
    """`If-Match`: a list of ETags or `*`; a weak tag (a proxy's rewrite) compares by its opaque part."""
    if header is None:
        return
    tags = [tag.strip().removeprefix("W/") for tag in header.split(",")]
    if "*" not in tags and current not in tags:
        raise PreconditionFailed(messages.LIST_CHANGED)


# --- applying an edit ---


@dataclass(frozen=True)
class Target:
    project: str
    alias: str
    parent: uuid.UUID
    one: bool


async def replace(ctx: Context, target: Target, edit: Edit) -> Plan:
    """set, and every edit of a cardinality-one list: computed on the whole (short) list."""
    rows = await queries.whole(ctx.db, project=target.project, alias=target.alias, parent=target.parent)
    items: list[Item]
    if edit.kind == "set":
        items = planner.first_of_each(edit.items)
        if target.one:
            items = items and [edit.items[-1]]
    elif edit.kind == "add":
        items = planner.collapse(edit.items, edit.source)
        if len(items) > 1:
            raise invalid_relation(
                edit.source, messages.LIST_ONE_ADD_SEVERAL.format(alias=target.alias, count=len(items))
            )
        present = [Item(row.child) for row in rows]
        if items and present and all(item.id != items[0].id for item in present):
            raise invalid_relation(edit.source, messages.CARDINALITY_ONE_TAKEN.format(alias=target.alias))
        items = present or items
    else:  # connect on a cardinality-one list: the last id given wins
        planner.collapse(edit.items, edit.source)
        gone = set(edit.disconnect)
        last = edit.items[-1] if edit.items else None
        items = (
            [Item(last.id, comment=last.comment)]
            if last
            else [Item(r.child) for r in rows if r.child not in gone]
        )
    return planner.plan_replace(rows, items)


async def connect(ctx: Context, target: Target, edit: Edit) -> Plan:
    """connect/disconnect and add on a window of the list around what the request mentions."""
    items = planner.collapse(edit.items, edit.source)
    anchors = {item.position.anchor for item in items if item.position.anchor is not None}
    mentioned = {item.id for item in items} | set(edit.disconnect) | anchors
    radius = len(items) + len(edit.disconnect) + 2
    kinds = {item.position.kind for item in items}
    start = radius + 1 if "start" in kinds else 0
    end = radius + 1 if "end" in kinds or (anchors and not edit.strict) else 0
    where: dict[str, Any] = {"project": target.project, "alias": target.alias, "parent": target.parent}

    def plan(window: Window) -> Plan:
        return planner.plan_connect(
            window,
            items,
            edit.disconnect,
            strict=edit.strict,
            add_only=edit.kind == "add",
            key=edit.source,
        )

    if (2 * len(anchors) + 2) * radius > WINDOW_LIMIT:
        result = plan(Window.whole(await queries.whole(ctx.db, **where)))
    else:
        window = await queries.window(
            ctx.db,
            **where,
            mentioned=list(mentioned),
            focus=list(anchors),
            radius=radius,
            start=start,
            end=end,
        )
        try:
            result = plan(window)
        except WindowTooSmall:
            result = plan(Window.whole(await queries.whole(ctx.db, **where)))
    if result.intervals:
        counts = await queries.count_between(ctx.db, **where, intervals=result.intervals)
        result.moved = result.moved_with(counts)
    return result


async def apply_edit(ctx: Context, target: Target, edit: Edit) -> Plan:
    where: dict[str, Any] = {"project": target.project, "alias": target.alias, "parent": target.parent}
    if edit.kind == "clear":
        return Plan(removed=await queries.clear(ctx.db, **where))
    if edit.kind == "remove" or (edit.kind == "connect" and not edit.items and not target.one):
        children = list(dict.fromkeys(edit.disconnect))
        return Plan(removed=await queries.remove_children(ctx.db, **where, children=children))
    if edit.kind == "set" or target.one:
        plan = await replace(ctx, target, edit)
    else:
        plan = await connect(ctx, target, edit)
    await queries.apply(ctx.db, **where, plan=plan)
    return plan


async def insert_at_end(
    ctx: Context, target: Target, edit: Edit, window: PageStart
) -> tuple[Plan, Slice, str] | None:
    """One new child at the start or the end, in one round trip with the answer's page: the usual
    edit. None when the edit is not that (a member to move, several items, cardinality one)."""
    if target.one or edit.kind not in ("connect", "add") or len(edit.items) != 1 or edit.disconnect:
        return None
    (item,) = edit.items
    if item.position.kind not in ("start", "end"):
        return None
    done = await queries.insert_at_end(
        ctx.db,
        project=target.project,
        alias=target.alias,
        parent=target.parent,
        child=item.id,
        comment=item.comment or "",
        at_start=item.position.kind == "start",
        limit=window.page_size,
    )
    if done.inserted:
        return Plan(added=1), done.page, done.etag
    if edit.kind == "add" and done.room:  # a member already: an add leaves it where it is
        return Plan(), done.page, done.etag
    return None


async def perform(
    ctx: Context, target: Target, edit: Edit, window: PageStart, json_api: bool
) -> tuple[Plan, Slice | None, str]:
    """The edit, then the list's first page (none for JSON:API), size and ETag."""
    fast = await insert_at_end(ctx, target, edit, window)
    if fast is not None:
        return fast
    plan = await apply_edit(ctx, target, edit)
    where: dict[str, Any] = {"project": target.project, "alias": target.alias, "parent": target.parent}
    if json_api:
        return plan, None, await queries.current_etag(ctx.db, **where)
    page, etag = await queries.page(ctx.db, **where, window=window)
    return plan, page, etag


# --- handlers ---

# Edits of one list queue here, in this worker, before they take a pooled connection: only one of
# them waits on the list's lock in PostgreSQL (which serialises them across workers), the others
# leave the pool to requests for other lists.
_queues: weakref.WeakValueDictionary[tuple[str, str, uuid.UUID], asyncio.Lock] = weakref.WeakValueDictionary()


def list_queue(project: str, alias: str, parent: uuid.UUID) -> asyncio.Lock:
    key = (project, alias, parent)
    queue = _queues.get(key)
    if queue is None:
        queue = _queues[key] = asyncio.Lock()
    return queue


# A list is read (and its cursors made) as GET reads it; an edit answers that list's first page.
LIST_NAME = "child-lists:get"
START: ListKey = (MIN_POSITION, 0)


def by_position(row: Record) -> ListKey:
    return (row["position"], row["id"])


def json_api_list(
    ctx: Context, row: Record, parent: uuid.UUID, rows: list[Record], total: int, paging: Paging
) -> dict[str, Any]:
    related = ctx.links.href("relations:list-by-parent", guid=parent)
    return jsonapi.linkage(
        ctx.request,
        ctx.links,
        children=[str(child["child"]) for child in rows],
        object_type=row["child_object_type"],
        one=row["cardinality"] == "one",
        total=total,
        paging=paging,
        related=f"{related}?{urlencode({'relationType': row['alias']})}",
    )


async def get_list(ctx: Context) -> Response:
    parent = path_guid(ctx.path["guid"])
    spec = read_alias(ctx.path["alias"])
    json_api = jsonapi.negotiate(ctx.request)  # else HAL, as for every other Accept
    if json_api:
        jsonapi.refuse_parameters(ctx.request)
    # JSON:API's page-based `page[number]`/`page[size]` too (by offset); HAL pages also take a cursor.
    paging = jsonapi.paging(ctx.request)
    row = await type_queries.get(ctx.db, project=ctx.project, alias=spec.alias)
    if row is None:
        raise RelationTypeNotFound(spec.alias)
    check_spec(spec, row)
    if json_api:
        if row["cardinality"] == "one":  # to-one linkage is one identifier, never paged
            paging = Paging(1, paging.page_size)
        window = PageStart(paging.page, paging.page_size, True, START, paging.offset, LIST_NAME)
    else:
        window = ctx.window(
            LIST_NAME, START, paging=Paging(paging.page, paging.page_size, ctx.paging().cursor)
        )
    page, etag = await queries.page(
        ctx.db, project=ctx.project, alias=spec.alias, parent=parent, window=window
    )
    headers = {"ETag": etag, "Vary": "Accept"}
    if json_api:
        body = json_api_list(ctx, row, parent, page.rows, page.total, paging)
        return jsonapi.JsonApiResponse(body, headers=headers)
    items = represent_page(ctx.links, page.rows)
    return ctx.page(
        key="relations", items=items, window=window, page=page, key_of=by_position, headers=headers
    )


async def read_edit(ctx: Context) -> tuple[Edit, bool]:
    """The request's edit, and whether it came as JSON:API."""
    method = ctx.request.method
    json_api = media_type(ctx.request) == JSON_API
    jsonapi.negotiate(ctx.request)  # 406 by JSON:API's rule; the answer's form follows the body's
    if json_api:
        jsonapi.check_content_type(ctx.request)
    if json_api and method == "PUT":
        raise UnsupportedMediaType(messages.JSON_API_PUT)
    raw = await read_body(ctx.request)
    ctx.request._body = raw  # read_json reads the same bytes again
    if method == "DELETE" and not raw.strip() and not json_api:  # JSON:API always names what to remove
        return read_delete(None), False
    body = await read_json(ctx.request, allow=(JSON_API,))
    if json_api:
        return read_json_api(method, body), True
    jsonapi.refuse_json_api_as_json(body)
    readers = {"PATCH": read_patch, "PUT": read_put, "POST": read_post, "DELETE": read_delete}
    return readers[method](body), False


async def edit_list(ctx: Context) -> Response:
    parent = path_guid(ctx.path["guid"])
    spec = read_alias(ctx.path["alias"])
    edit, json_api = await read_edit(ctx)
    window = ctx.window(LIST_NAME, START, first_page=True)
    async with list_queue(ctx.project, spec.alias, parent), ctx.db.transaction():
        row = await type_for_edit(ctx, spec, parent)
        if json_api:
            check_json_api(ctx.request.method, edit, row)
        target = Target(ctx.project, row["alias"], parent, row["cardinality"] == "one")
        if_match = ctx.request.headers.get("if-match")
        if if_match is not None:
            current = await queries.current_etag(
                ctx.db, project=ctx.project, alias=target.alias, parent=parent
            )
            check_if_match(if_match, current)
        plan, page, etag = await perform(ctx, target, edit, window, json_api)
    if json_api or page is None:
        return Response(status_code=204, headers={"ETag": etag})
    if jsonapi.negotiate(ctx.request):  # a Strapi or Backendless edit from a JSON:API client
        linkage = json_api_list(ctx, row, parent, page.rows, page.total, Paging(1, window.page_size))
        linkage["meta"]["changes"] = plan.changes
        return jsonapi.JsonApiResponse(linkage, headers={"ETag": etag})
    items = represent_page(ctx.links, page.rows)
    body = ctx.paged(key="relations", items=items, window=window, page=page, key_of=by_position)
    body["_changes"] = plan.changes
    return ctx.hal(body, headers={"ETag": etag, "Link": link_header(ctx.request, ctx.links, body)})


routes: list[ApiRoute] = [
    api_route(PATH, get_list, method="GET", name="child-lists:get", scope=READ),
    api_route(PATH, edit_list, method="PATCH", name="child-lists:patch", scope=WRITE),
    api_route(PATH, edit_list, method="PUT", name="child-lists:put", scope=WRITE),
    api_route(PATH, edit_list, method="POST", name="child-lists:post", scope=WRITE),
    api_route(PATH, edit_list, method="DELETE", name="child-lists:delete", scope=WRITE),
]
