"""HTTP handlers for /relation/type."""

from __future__ import annotations

from starlette.responses import Response

from service import messages
from service.auth import READ, TYPES_WRITE
from service.bodies import query_bool
from service.cursors import ListKey
from service.db import Record
from service.endpoint import ApiRoute, Context, Handler, Operation, operation
from service.errors import (
    Conflict,
    RelationTypeNotFound,
    invalid_relation_type,
)
from service.relation_types import model, queries


async def load_type(ctx: Context, alias: str) -> Record:
    """The project's relation type `alias`, or 404."""
    row = await queries.get(ctx.db, project=ctx.project, alias=alias)
    if row is None:
        raise RelationTypeNotFound(alias)
    return row


async def list_relation_types(ctx: Context) -> Response:
    window = ctx.window("relation-types:list", ("",))
    page = await queries.list_page(ctx.db, project=ctx.project, window=window)
    items = [model.represent(ctx.links, row) for row in page.rows]
    return ctx.page(key="relationtypes", items=items, window=window, page=page, key_of=by_alias)


def by_alias(row: Record) -> ListKey:
    return (row["alias"],)


async def get_relation_type(ctx: Context) -> Response:
    return ctx.hal(model.represent(ctx.links, await load_type(ctx, ctx.path["alias"])))


async def create_relation_type(ctx: Context) -> Response:
    fields = model.read_fields(ctx.json_object())
    row = await queries.insert(ctx.db, project=ctx.project, fields=fields)
    if row is None:
        raise invalid_relation_type("alias", messages.RELATION_TYPE_DUPLICATE)
    href = ctx.links.relation_type(fields.alias)
    return ctx.hal(model.represent(ctx.links, row), status=201, headers={"Location": href})


async def update_relation_type(ctx: Context) -> Response:
    alias = ctx.path["alias"]
    body = ctx.json_object()
    async with ctx.db.transaction():
        current = await queries.lock(ctx.db, project=ctx.project, alias=alias)
        if current is None:
            raise RelationTypeNotFound(alias)
        fields = model.read_fields(body, current=model.from_row(current))
        if (
            fields.cardinality == "one"
            and current["cardinality"] != "one"
            and await queries.has_parent_with_several_children(ctx.db, project=ctx.project, alias=alias)
        ):
            raise invalid_relation_type("cardinality", messages.CARDINALITY_ONE_CONFLICT)
        row = await queries.update(ctx.db, project=ctx.project, fields=fields)
    return ctx.hal(model.represent(ctx.links, row))


async def delete_relation_type(ctx: Context) -> Response:
    alias = ctx.path["alias"]
    force = query_bool(ctx.request, "force")
    async with ctx.db.transaction():
        row = await queries.lock(ctx.db, project=ctx.project, alias=alias)
        if row is None:
            raise RelationTypeNotFound(alias)
        if row["is_builtin"]:
            raise Conflict(messages.RELATION_TYPE_BUILTIN.format(alias=alias))
        count = 0 if force else await queries.count_relations(ctx.db, project=ctx.project, alias=alias)
        if count:
            raise Conflict(messages.RELATION_TYPE_IN_USE.format(alias=alias, count=count))
        await queries.delete(ctx.db, project=ctx.project, alias=alias, force=force)
    return ctx.hal(model.represent(ctx.links, row))


def type_write(handler: Handler, *, method: str, name: str) -> Operation:
    """An operation that changes relation types: its scope, and a 422 about a reused Idempotency-Key
    that speaks of the relation type."""
    return operation(
        handler, method=method, name=name, scope=TYPES_WRITE, invalid_message=messages.RELATION_TYPE_INVALID
    )


routes = [
    ApiRoute(
        "/relation/type",
        [
            operation(list_relation_types, method="GET", name="relation-types:list", scope=READ),
            type_write(create_relation_type, method="POST", name="relation-types:create"),
        ],
    ),
    ApiRoute(
        "/relation/type/{alias}",
        [
            operation(get_relation_type, method="GET", name="relation-types:get", scope=READ),
            type_write(update_relation_type, method="PUT", name="relation-types:update"),
            type_write(delete_relation_type, method="DELETE", name="relation-types:delete"),
        ],
    ),
]
