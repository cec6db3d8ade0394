"""Reading the change log in commit order: one project's changes (the feed) or every project's (the
webhook dispatcher). See the package docstring for why a position, once returned, is final."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from service.changes import queries
from service.changes.model import LAST_ID, START, Change, Position, change, commit_xmax
from service.changes.queries import Reader


@dataclass(frozen=True)
class Page:
    """Changes after a position, oldest first, and what the reader learnt on the way.

    `position`: after the last change (or the position read from, when there is none). `held_xmax`:
    the commit-snapshot xmax of the first committed transaction not deliverable yet (it waits for
    older writers to end: deliverable once `queries.bound` reaches it), else None. `gone`: changes
    after the position read from have been pruned (retention)."""

    changes: list[Change]
    position: Position
    held_xmax: int | None
    gone: bool


def _page(rows: list[Any], after: Position) -> Page:
    meta = rows[0]
    changes = [change(row) for row in rows if row["id"] is not None]
    pruned = meta["pruned_key"]
    held = meta["held_key"]
    return Page(
        changes=changes,
        position=changes[-1].position if changes else after,
        held_xmax=None if held is None else commit_xmax(bytes(held)),
        gone=pruned is not None and Position(bytes(pruned), LAST_ID) > after,
    )


async def read_project(db: Reader, *, project: str, after: Position, limit: int) -> Page:
    """The project's committed changes after `after`, at most `limit`, in commit order."""
    return _page(await queries.page(db, project=project, after=after, limit=limit), after)


async def read_all(db: Reader, *, after: Position, limit: int) -> Page:
    """Every project's committed changes after `after` (a position from this function), at most
    `limit`, in commit order; `gone` when any project's pruned changes lie after it."""
    return _page(await queries.page(db, project=None, after=after, limit=limit), after)


async def first(db: Reader, *, project: str | None) -> Position:
    """Before the oldest retained change of the project (None: where `read_all` may start without
    being gone: after the newest horizon of any project)."""
    return await queries.pruned(db, project=project) or START


async def end(db: Reader) -> Position:
    """After every change a reader may deliver now (`since=now`)."""
    return Position.end(await queries.bound(db))
