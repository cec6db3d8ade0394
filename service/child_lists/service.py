"""An edit of one parent's ordered child list, start to finish, in one call from the routes: the
relation type and the list's lock (a Backendless alias creates its type), the JSON:API form's checks,
`If-Match`, the planner's plan on the rows it needs, the writes, and the list's first page and ETag
for the answer — one transaction.

The planner (planner.py) holds every ordering and cardinality rule and does no I/O; queries.py speaks
SQL; this module decides which rows the planner needs and in which order things happen."""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from service import messages
from service.child_lists import planner, queries
from service.child_lists.bodies import Edit
from service.child_lists.planner import Plan, Window, WindowTooSmall
from service.cursors import PageStart, Slice
from service.db import Database, Record
from service.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    PreconditionFailed,
    RelationTypeNotFound,
    ServiceUnavailable,
    invalid_relation,
    invalid_relation_type,
)
from service.fields import alias_problem
from service.relation_types import queries as type_queries
from service.relation_types.model import UNKNOWN, RelationTypeFields, object_type_problem

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


@dataclass(frozen=True)
class ListEdit:
    """What the request asks: the edit of `parent`'s list under `spec`, with the answer's page size."""

    project: str
    spec: TypeSpec
    parent: uuid.UUID
    edit: Edit
    method: str
    json_api: bool
    if_match: str | None
    page_size: int
    may_create_types: bool  # the credential has relation-types:write (a Backendless alias may need it)


@dataclass(frozen=True)
class Outcome:
    """The list after the edit: its first page (none for JSON:API), size and ETag, the changes, and
    the list's relation type (alias, child object type, cardinality)."""

    changes: dict[str, int]
    page: Slice
    etag: str
    list_type: Record


@dataclass(frozen=True)
class Target:
    project: str
    alias: str
    parent: uuid.UUID
    one: bool

    @property
    def where(self) -> dict[str, Any]:
        return {"project": self.project, "alias": self.alias, "parent": self.parent}


log = logging.getLogger("service.child_lists")
# An edit and a delete by parent or child of other lists can still meet on the counters' rows of the
# children they share (schema.sql), in opposite orders across their statements; PostgreSQL then cancels
# one side, and the edit, undone whole, runs again (as relations.queries' deletes do), never a 500.
EDIT_ATTEMPTS = 3


async def edit_list(db: Database, request: ListEdit) -> Outcome:
    """The edit, all or nothing, under the list's lock (run again after a deadlock; 503 if it keeps
    losing)."""
    for attempt in range(1, EDIT_ATTEMPTS + 1):
        try:
            return await _edit_once(db, request)
        except asyncpg.DeadlockDetectedError:
            log.warning("an edit of a list lost a deadlock (attempt %d)", attempt)
    raise ServiceUnavailable()


async def _edit_once(db: Database, request: ListEdit) -> Outcome:
    async with db.transaction():
        row = await type_for_edit(db, request)
        if request.json_api:
            check_json_api(request.method, request.edit, row)
        target = Target(request.project, row["alias"], request.parent, row["cardinality"] == "one")
        if request.if_match is not None:
            check_if_match(request.if_match, await queries.current_etag(db, **target.where))
        fast = await insert_at_end(db, target, request.edit, request.page_size)
        if fast is not None:
            changes, page, etag = fast
            return Outcome(changes, page, etag, row)
        plan = await apply_edit(db, target, request.edit)
        if request.json_api:
            etag = await queries.current_etag(db, **target.where)
            return Outcome(plan.changes, Slice([], 0, False, None), etag, row)
        first = PageStart(1, request.page_size, True, queries.START, 0, "")
        page, etag = await queries.page(db, **target.where, window=first)
    return Outcome(plan.changes, page, etag, row)


async def type_for_edit(db: Database, request: ListEdit) -> Record:
    """The relation type, held for the transaction, and the list's lock; a Backendless alias creates
    the type when missing."""
    spec, where = request.spec, {"project": request.project, "alias": request.spec.alias}
    row = await queries.type_and_lock(db, **where, parent=request.parent)
    if row is None and spec.cardinality is not None:
        if not request.may_create_types:
            raise Forbidden()
        fields = RelationTypeFields(
            alias=spec.alias,
            name=spec.alias,
            child_object_type=spec.child_object_type or UNKNOWN,
            cardinality=spec.cardinality,
        )
        await type_queries.insert(db, project=request.project, fields=fields)
        row = await queries.type_and_lock(db, **where, parent=request.parent)
    if row is None:
        raise RelationTypeNotFound(spec.alias)
    check_spec(spec, row)
    return row


async def apply_edit(db: Database, target: Target, edit: Edit) -> Plan:
    if edit.kind == "clear":
        return Plan(removed=await queries.clear(db, **target.where))
    if edit.kind == "remove" or (edit.kind == "connect" and not edit.items and not target.one):
        children = list(dict.fromkeys(edit.disconnect))
        return Plan(removed=await queries.remove_children(db, **target.where, children=children))
    if edit.kind == "set" or target.one:
        rows = await queries.whole(db, **target.where)
        plan = planner.plan_whole(rows, edit, one=target.one, alias=target.alias)
    else:
        plan = await connect(db, target, edit)
    await queries.apply(db, **target.where, plan=plan)
    return plan


async def connect(db: Database, target: Target, edit: Edit) -> Plan:
    """connect/disconnect and add on a window of the list around what the request mentions."""
    items = planner.collapse(edit.items, edit.source)
    anchors = {item.position.anchor for item in items if item.position.anchor is not None}
    mentioned = {item.id for item in items} | set(edit.disconnect) | anchors
    radius = len(items) + len(edit.disconnect) + 2
    kinds = {item.position.kind for item in items}
    start = radius + 1 if "start" in kinds else 0
    end = radius + 1 if "end" in kinds or (anchors and not edit.strict) else 0

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
        result = plan(Window.whole(await queries.whole(db, **target.where)))
    else:
        window = await queries.window(
            db,
            **target.where,
            mentioned=list(mentioned),
            focus=list(anchors),
            radius=radius,
            start=start,
            end=end,
        )
        try:
            result = plan(window)
        except WindowTooSmall:
            result = plan(Window.whole(await queries.whole(db, **target.where)))
    if result.intervals:
        counts = await queries.count_between(db, **target.where, intervals=result.intervals)
        result = planner.finish_moved(result, counts)
    return result


async def insert_at_end(
    db: Database, target: Target, edit: Edit, page_size: int
) -> tuple[dict[str, int], Slice, str] | None:
    """One new child at the start or the end, in one round trip with the answer's page: the usual
    edit, answered with its changes, the first page, size and ETag. None when the edit is not that (a
    member to move, several items, cardinality one)."""
    if target.one or edit.kind not in ("connect", "add") or len(edit.items) != 1 or edit.disconnect:
        return None
    (item,) = edit.items
    if item.position.kind not in ("start", "end"):
        return None
    done = await queries.insert_at_end(
        db,
        **target.where,
        child=item.id,
        comment=item.comment or "",
        at_start=item.position.kind == "start",
        limit=page_size,
    )
    if done.inserted:
        return Plan(added=1).changes, done.page, done.etag
    if edit.kind == "add" and done.room:  # a member already: an add leaves it where it is
        return Plan().changes, done.page, done.etag
    return None
