"""HTTP handlers for /relation: Heartcore's routes and the extensions of SPEC §5."""

from __future__ import annotations

from starlette.responses import Response

from service import messages
from service.auth import READ, WRITE
from service.bodies import path_guid, query_bool
from service.cache import tags
from service.context import KeyOf
from service.cursors import MIN_POSITION, ListKey, PageStart, Slice
from service.db import Record
from service.endpoint import ApiRoute, Context, api_route
from service.errors import ApiError, BadRequest, RelationNotFound, RelationTypeNotFound, invalid_relation
from service.fields import alias_problem
from service.relation_types import queries as type_queries
from service.relations import model, queries

REFERENCED_LIMIT = 100
MAX_ID = (1 << 63) - 1


def path_id(ctx: Context) -> int:
    """The `{id}` of the path; one too large for any relation is simply not found."""
    relation_id: int = ctx.path["id"]
    if relation_id > MAX_ID:
        raise RelationNotFound(relation_id)
    return relation_id


async def load_relation(ctx: Context) -> Record:
    relation_id = path_id(ctx)
    row = await queries.get(ctx.db, project=ctx.project, relation_id=relation_id)
    if row is None:
        raise RelationNotFound(relation_id)
    return row


def relation_page(ctx: Context, window: PageStart, page: Slice, key_of: KeyOf) -> Response:
    items = model.represent_page(ctx.links, page.rows)
    return ctx.page(key="relations", items=items, window=window, page=page, key_of=key_of)


def by_id(row: Record) -> ListKey:
    return (row["id"],)


def by_type_and_position(row: Record) -> ListKey:
    return (row["type_alias"], row["position"], row["id"])


def by_position(row: Record) -> ListKey:
    return (row["position"], row["id"])


def by_side(row: Record) -> ListKey:
    if row["side"]:
        return (1, "", 0, row["id"])
    return (0, row["type_alias"], row["position"], row["id"])


def relation_type_filter(ctx: Context) -> str | None:
    """`?relationType=alias`: an alias that cannot exist matches nothing rather than erroring."""
    return ctx.request.query_params.get("relationType") or None


async def get_relation(ctx: Context) -> Response:
    return ctx.hal(model.represent(ctx.links, await load_relation(ctx)))


async def list_by_type(ctx: Context) -> Response:
    alias = ctx.path["alias"]
    window = ctx.window("relations:list-by-type", (0,))
    if alias_problem(alias) or await type_queries.get(ctx.db, project=ctx.project, alias=alias) is None:
        raise RelationTypeNotFound(alias)
    page = await queries.by_type(ctx.db, project=ctx.project, alias=alias, window=window)
    return relation_page(ctx, window, page, by_id)


async def list_by_parent(ctx: Context) -> Response:
    parent = path_guid(ctx.path["guid"])
    alias = relation_type_filter(ctx)
    if alias is None:
        window = ctx.window("relations:list-by-parent", ("", MIN_POSITION, 0))
    else:
        window = ctx.window("relations:list-by-parent", (MIN_POSITION, 0), alias)
    page = await queries.by_parent(ctx.db, project=ctx.project, parent=parent, alias=alias, window=window)
    return relation_page(ctx, window, page, by_position if alias else by_type_and_position)


async def list_by_child(ctx: Context) -> Response:
    child = path_guid(ctx.path["guid"])
    alias = relation_type_filter(ctx)
    dependency = query_bool(ctx.request, "dependency")
    window = ctx.window("relations:list-by-child", (0,), alias, dependency)
    page = await queries.by_child(
        ctx.db, project=ctx.project, child=child, alias=alias, dependency=dependency, window=window
    )
    return relation_page(ctx, window, page, by_id)


async def list_related(ctx: Context) -> Response:
    guid = path_guid(ctx.path["guid"])
    alias = relation_type_filter(ctx)
    window = ctx.window("relations:related", (0, "", MIN_POSITION, 0), alias)
    page = await queries.related(ctx.db, project=ctx.project, guid=guid, alias=alias, window=window)
    return relation_page(ctx, window, page, by_side)


async def get_referenced(ctx: Context) -> Response:
    raw = ctx.request.query_params.getlist("id")
    if not raw:
        raise BadRequest(messages.MISSING_IDS)
    if len(raw) > REFERENCED_LIMIT:
        raise BadRequest(messages.TOO_MANY_IDS.format(limit=REFERENCED_LIMIT))
    ids = list(dict.fromkeys(path_guid(value) for value in raw))
    found = await queries.referenced(ctx.db, project=ctx.project, ids=ids)
    return ctx.hal({"referenced": [str(guid) for guid in ids if guid in found]})


# What a create that did not happen answers: the field to blame and why.
APPEND_REFUSALS = {
    "unknown-type": ("relationTypeAlias", messages.RELATION_TYPE_UNKNOWN),
    "taken": ("childId", messages.CARDINALITY_ONE_TAKEN),
    "duplicate": ("childId", messages.RELATION_DUPLICATE),
}


async def create_relation(ctx: Context) -> Response:
    new = model.read_new(ctx.json_object())
    row = await queries.append(
        ctx.db,
        project=ctx.project,
        alias=new.type_alias,
        parent=new.parent,
        child=new.child,
        comment=new.comment,
    )
    if row["outcome"] != "created":
        field, message = APPEND_REFUSALS[row["outcome"]]
        raise invalid_relation(field, message.format(alias=new.type_alias))
    href = ctx.links.relation(row["id"])
    ctx.touched = tags.of_relation(row)
    return ctx.hal(model.represent(ctx.links, row), status=201, headers={"Location": href})


async def update_relation(ctx: Context) -> Response:
    """One statement when the body is good and matches (the common case); else the stored relation is
    read to answer as a check against it would: 404 when there is none, then the body's problems."""
    relation_id = path_id(ctx)
    body = ctx.json_object()
    try:
        update = model.read_update(body)
    except ApiError:
        model.read_update(body, await load_relation(ctx))
        raise
    row = await queries.update_comment(ctx.db, project=ctx.project, relation_id=relation_id, update=update)
    if row is None:
        model.read_update(body, await load_relation(ctx))  # 404, or the field that differs
        raise RelationNotFound(relation_id)  # (it differed and was deleted meanwhile)
    ctx.touched = tags.of_relation(row)
    ctx.answers_read = (tags.relation(ctx), row["xid"])  # answered as get_relation answers
    return ctx.hal(model.represent(ctx.links, row))


async def delete_relation(ctx: Context) -> Response:
    relation_id = path_id(ctx)
    row = await queries.delete(ctx.db, project=ctx.project, relation_id=relation_id)
    if row is None:
        raise RelationNotFound(relation_id)
    ctx.touched = tags.of_relation(row)
    return ctx.hal(model.represent(ctx.links, row))


async def delete_by_parent(ctx: Context) -> Response:
    parent = path_guid(ctx.path["guid"])
    return ctx.hal({"deleted": await queries.delete_by_parent(ctx.db, project=ctx.project, parent=parent)})


async def delete_by_child(ctx: Context) -> Response:
    child = path_guid(ctx.path["guid"])
    return ctx.hal({"deleted": await queries.delete_by_child(ctx.db, project=ctx.project, child=child)})


routes: list[ApiRoute] = [
    api_route(
        "/relation/{id:int}",
        get_relation,
        method="GET",
        name="relations:get",
        scope=READ,
        cache=tags.relation,
    ),
    api_route("/relation/{id:int}", update_relation, method="PUT", name="relations:update", scope=WRITE),
    api_route("/relation/{id:int}", delete_relation, method="DELETE", name="relations:delete", scope=WRITE),
    api_route("/relation", create_relation, method="POST", name="relations:create", scope=WRITE),
    api_route("/relation/referenced", get_referenced, method="GET", name="relations:referenced", scope=READ),
    api_route(
        "/relation/parent/{guid}",
        list_by_parent,
        method="GET",
        name="relations:list-by-parent",
        scope=READ,
        cache=tags.parent,
    ),
    api_route(
        "/relation/parent/{guid}",
        delete_by_parent,
        method="DELETE",
        name="relations:delete-by-parent",
        scope=WRITE,
    ),
    api_route(
        "/relation/child/{guid}",
        list_by_child,
        method="GET",
        name="relations:list-by-child",
        scope=READ,
        cache=tags.child,
    ),
    api_route(
        "/relation/child/{guid}",
        delete_by_child,
        method="DELETE",
        name="relations:delete-by-child",
        scope=WRITE,
    ),
    api_route(
        "/relation/related/{guid}",
        list_related,
        method="GET",
        name="relations:related",
        scope=READ,
        cache=tags.related,
    ),
    api_route(
        "/relation/{alias}",
        list_by_type,
        method="GET",
        name="relations:list-by-type",
        scope=READ,
        cache=tags.relation_type,
    ),
]
