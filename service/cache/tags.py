"""What a cached read depends on, and what a committed change touches: both as tags, so that a change
drops exactly the answers it could alter.

A read names its tags from its path alone, before it runs (an operation's `cache`: one of the
functions below). A change's tags come from its event (SPEC §9): a relation's create, comment update
or delete touches its id, its parent, its child and its type; `list.reordered` its parent and its type
(a list by parent or type shows the order; a list by child or a relation by id carries no position).
A change of a relation type alters every answer of its project that shows that type's fields or
filters by them (aliases, names, `isDependency`, cardinality): it drops the project's entries whole."""

from __future__ import annotations

from typing import Any

from service.bodies import path_guid
from service.cache.store import Tag
from service.context import Context

Tags = frozenset[Tag]


# --- what a read depends on (raises the handler's own 400 for a malformed path) ---


def relation(ctx: Context) -> Tags:
    return frozenset({("id", ctx.path["id"])})


def parent(ctx: Context) -> Tags:
    return frozenset({("parent", path_guid(ctx.path["guid"]))})


def child(ctx: Context) -> Tags:
    return frozenset({("child", path_guid(ctx.path["guid"]))})


def related(ctx: Context) -> Tags:
    guid = path_guid(ctx.path["guid"])
    return frozenset({("parent", guid), ("child", guid)})


def relation_type(ctx: Context) -> Tags:
    return frozenset({("type", ctx.path["alias"])})


# --- what a change touches ---


def of_relation(row: Any) -> Tags:
    """What a write of one relation touches (its create, comment change or delete: one event)."""
    return frozenset(
        {("id", row["id"]), ("parent", row["parent"]), ("child", row["child"]), ("type", row["type_alias"])}
    )


def touched(change: Any) -> Tags | None:
    """The tags a row of the change log touches (`kind`, `relation_id`, `type_alias`, `parent`,
    `child`: relation_cache_poll's columns); None: the whole project (a relation type's change)."""
    kind: str = change["kind"]
    if kind.startswith("relationType."):
        return None
    if kind == "list.reordered":
        return frozenset({("parent", change["parent"]), ("type", change["type_alias"])})
    return frozenset(
        {
            ("id", change["relation_id"]),
            ("parent", change["parent"]),
            ("child", change["child"]),
            ("type", change["type_alias"]),
        }
    )
