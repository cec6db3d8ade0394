"""SQL of the ordered child lists. Every read of a list edit goes through the index
`relation_by_parent (project, parent, type_alias, position, id)`: the rows an edit mentions, runs of their
neighbours, the list's ends, and range counts, never the whole list (except `whole`, for a replace)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from service import messages
from service.child_lists.planner import SAFE_POSITION, Key, Plan, Row, Window
from service.cursors import MIN_POSITION, PageStart, Slice, fetch, statements
from service.db import Database, Record
from service.errors import Conflict
from service.relations.queries import COLUMNS, LOCK_LIST, POSITION_GAP

LIST = "project = $1 AND parent = $2 AND type_alias = $3"

# For an edit, one round trip: the type, held until the edit commits (it can be neither deleted nor
# changed meanwhile), and the list's lock (schema.sql's relation_list_lock, $3 the parent), serialising
# its edits.
TYPE_FOR_EDIT = f"""
SELECT t.alias, t.child_object_type, t.cardinality FROM relation_type AS t, LATERAL ({LOCK_LIST}) AS locked
WHERE t.project = $1 AND t.alias = $2 FOR KEY SHARE OF t"""

# The list's size and version (schema.sql's `child_list`, kept by triggers): its `_totalItems` and
# ETag in one primary-key lookup, whatever the list's length. A list never written has neither row.
STATS = f"""
SELECT coalesce(max(size), 0) AS total, coalesce(max(version), 0) AS tag
FROM child_list WHERE {LIST}"""
# Before every item of a list ordered by (position, id): where its first page starts.
START = (MIN_POSITION, 0)
# A page by position (relation_by_parent), after or before the key ($4, $5), with the size and version.
PAGE = statements(
    total=STATS,
    select=f"{COLUMNS}, position FROM relation",
    where=LIST,
    order=("position", "id"),
    key_at=4,
)
WHOLE = f"SELECT id, child, position FROM relation WHERE {LIST} ORDER BY position, id"

# The most common edit, a new child at the start ($7 true) or the end, in one round trip: the row goes
# GAP before the first or after the last (as the planner would place it), and the answer is the first
# page and ETag of the list with it (the triggers count the row after this statement, so the answer adds
# it to the size and moves the version as they will). A child already in the list inserts nothing
# (`inserted` 0), nor does a list whose positions reach the safe range's ends (`room` false): the planner
# renumbers those.
INSERT_AT_END = f"""
WITH stats AS (
    SELECT counted.total, counted.tag, ends.first, ends.last
    FROM ({STATS}) AS counted,
         -- The list's ends as the index's first and last entries: `min`/`max(position)` may be
         -- planned as a read of the whole list under a generic plan.
         (SELECT (SELECT position FROM relation WHERE {LIST} ORDER BY position, id LIMIT 1) AS first,
                 (SELECT position FROM relation WHERE {LIST} ORDER BY position DESC, id DESC LIMIT 1)
                     AS last) AS ends
), added AS (
    INSERT INTO relation (project, type_alias, parent, child, position, comment)
    SELECT $1, $3, $2, $6, CASE WHEN $7 THEN coalesce(first - {POSITION_GAP}, {POSITION_GAP})
                                ELSE coalesce(last, 0) + {POSITION_GAP} END, $8
    FROM stats WHERE coalesce(first, 0) > -{SAFE_POSITION} AND coalesce(last, 0) < {SAFE_POSITION}
    ON CONFLICT (project, parent, type_alias, child) DO NOTHING
    RETURNING {COLUMNS}, position
), counted AS (
    SELECT count(*) AS inserted FROM added
)
SELECT stats.total + counted.inserted AS total,
       stats.tag + sign(counted.inserted)::bigint AS tag, counted.inserted,
       coalesce(first, 0) > -{SAFE_POSITION} AND coalesce(last, 0) < {SAFE_POSITION} AS room, page.*
FROM stats CROSS JOIN counted LEFT JOIN LATERAL (
    -- The new row goes first or last: the page is it and the list's first rows, in that order
    -- (Append keeps its parts' order, so nothing is sorted).
    (SELECT {COLUMNS}, position FROM added WHERE $7)
    UNION ALL
    (SELECT {COLUMNS}, position FROM relation WHERE {LIST} ORDER BY position, id LIMIT $4)
    UNION ALL
    (SELECT {COLUMNS}, position FROM added WHERE NOT $7)
    LIMIT $4 OFFSET $5
) AS page ON true"""

# The mentioned rows (locked: a concurrent DELETE /relation/{id} waits or has happened), `$6` rows
# each side of the focus rows (anchors), and the first `$7` and last `$8` rows of the list.
# `run`: 0 for a mentioned row, the focus row's id for its neighbours, -1 the start, -2 the end.
WINDOW = f"""
WITH mentioned AS (
    SELECT id, child, position FROM relation WHERE {LIST} AND child = ANY($4::uuid[]) FOR UPDATE
)
SELECT 0::bigint AS run, 0 AS side, id, child, position FROM mentioned
UNION ALL
SELECT focus.id, near.side, near.id, near.child, near.position
FROM mentioned AS focus CROSS JOIN LATERAL (
    (SELECT -1 AS side, id, child, position FROM relation
     WHERE {LIST} AND (position, id) < (focus.position, focus.id)
     ORDER BY position DESC, id DESC LIMIT $6)
    UNION ALL
    (SELECT 1, id, child, position FROM relation
     WHERE {LIST} AND (position, id) > (focus.position, focus.id)
     ORDER BY position, id LIMIT $6)
) AS near
WHERE focus.child = ANY($5::uuid[])
UNION ALL
(SELECT -1, 0, id, child, position FROM relation WHERE {LIST} ORDER BY position, id LIMIT $7)
UNION ALL
(SELECT -2, 0, id, child, position FROM relation WHERE {LIST} ORDER BY position DESC, id DESC LIMIT $8)"""

COUNT_BETWEEN = f"""
SELECT (SELECT count(*) FROM relation
        WHERE {LIST} AND (position, id) > (b.low_position, b.low_id)
          AND (position, id) < (b.high_position, b.high_id)) AS count
FROM unnest($4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[]) WITH ORDINALITY
    AS b(low_position, low_id, high_position, high_id, n)
ORDER BY b.n"""

DELETE_ROWS = "DELETE FROM relation WHERE project = $1 AND id = ANY($2::bigint[])"
MOVE_ROWS = """
UPDATE relation AS r SET position = u.position, comment = coalesce(u.comment, r.comment)
FROM unnest($2::bigint[], $3::bigint[], $4::text[]) AS u(id, position, comment)
WHERE r.project = $1 AND r.id = u.id"""
INSERT_ROWS = """
INSERT INTO relation (project, type_alias, parent, child, position, comment)
SELECT $1, $2, $3, u.child, u.position, u.comment
FROM unnest($4::uuid[], $5::bigint[], $6::text[]) AS u(child, position, comment)"""
REMOVE_CHILDREN = f"DELETE FROM relation WHERE {LIST} AND child = ANY($4::uuid[])"
CLEAR = f"DELETE FROM relation WHERE {LIST}"


def _count(status: str) -> int:
    return int(status.rsplit(" ", 1)[-1])


def etag(total: int, version: int) -> str:
    """Strong, and new after every change of the list's members or order (the version moves then)."""
    return f'"{total:x}-{version:x}"'


async def type_and_lock(db: Database, *, project: str, alias: str, parent: uuid.UUID) -> Record | None:
    """The type (held for the transaction) and the list's lock, taken together."""
    return await db.fetchrow(TYPE_FOR_EDIT, project, alias, parent)


async def current_etag(db: Database, *, project: str, alias: str, parent: uuid.UUID) -> str:
    row = await db.fetchrow(STATS, project, parent, alias)
    return etag(row["total"], row["tag"])


async def page(
    db: Database, *, project: str, alias: str, parent: uuid.UUID, window: PageStart
) -> tuple[Slice, str]:
    """One page of the list (its size included) and its ETag."""
    found = await fetch(db, PAGE[not window.forward], (project, parent, alias), window)
    assert found.head is not None  # the stats row is always there
    return found, etag(found.total, found.head["tag"])


@dataclass(frozen=True)
class Inserted:
    inserted: bool
    room: bool
    page: Slice
    etag: str


async def insert_at_end(
    db: Database,
    *,
    project: str,
    alias: str,
    parent: uuid.UUID,
    child: uuid.UUID,
    comment: str,
    at_start: bool,
    limit: int,
) -> Inserted:
    """Whether the child was inserted (or could have been), and the list's first page, size and ETag."""
    rows = await db.fetch(INSERT_AT_END, project, parent, alias, limit, 0, child, at_start, comment)
    first = rows[0]
    page_rows = [row for row in rows if row["id"] is not None]
    total = int(first["total"])
    return Inserted(
        bool(first["inserted"]),
        first["room"],
        Slice(page_rows, total, total > len(page_rows), first),
        etag(first["total"], first["tag"]),
    )


async def whole(db: Database, *, project: str, alias: str, parent: uuid.UUID) -> list[Row]:
    rows = await db.fetch(WHOLE, project, parent, alias)
    return [Row(row["id"], row["child"], row["position"]) for row in rows]


async def window(
    db: Database,
    *,
    project: str,
    alias: str,
    parent: uuid.UUID,
    mentioned: Sequence[uuid.UUID],
    focus: Sequence[uuid.UUID],
    radius: int,
    start: int,
    end: int,
) -> Window:
    """The mentioned rows, `radius` rows each side of the `focus` ones, the first `start` and the last
    `end` rows, with what is known about the gaps between them."""
    found = await db.fetch(WINDOW, project, parent, alias, list(mentioned), list(focus), radius, start, end)
    rows: dict[int, list[tuple[int, Row]]] = {}
    for record in found:
        rows.setdefault(record["run"], []).append(
            (record["side"], Row(record["id"], record["child"], record["position"]))
        )
    singles = [row for _, row in rows.pop(0, [])]
    runs: list[tuple[Sequence[Row], bool, bool]] = []
    head = [row for _, row in rows.pop(-1, [])]
    if start:
        runs.append((head, True, len(head) < start))
    tail = [row for _, row in rows.pop(-2, [])]
    if end:
        runs.append((tail, len(tail) < end, True))
    by_id = {row.id: row for row in singles}
    for focus_id, near in rows.items():
        before = [row for side, row in near if side < 0]
        after = [row for side, row in near if side > 0]
        runs.append(([*before, by_id[focus_id], *after], len(before) < radius, len(after) < radius))
    for row in singles:
        if row.child in focus and row.id not in rows:  # a focus row with no neighbours at all
            runs.append(([row], radius > 0, radius > 0))
    return Window.from_runs(singles, runs)


async def count_between(
    db: Database, *, project: str, alias: str, parent: uuid.UUID, intervals: Sequence[tuple[Key, Key]]
) -> list[int]:
    if not intervals:
        return []
    columns: list[list[int]] = [[low[0] for low, _ in intervals], [low[1] for low, _ in intervals]]
    columns += [[high[0] for _, high in intervals], [high[1] for _, high in intervals]]
    rows = await db.fetch(COUNT_BETWEEN, project, parent, alias, *columns)
    return [int(row["count"]) for row in rows]


async def apply(db: Database, *, project: str, alias: str, parent: uuid.UUID, plan: Plan) -> None:
    """The plan's writes (call inside the edit's transaction, under the list's lock)."""
    try:
        if plan.deletes:
            await db.execute(DELETE_ROWS, project, plan.deletes)
        if plan.updates:
            ids, positions, comments = _columns(plan.updates)
            await db.execute(MOVE_ROWS, project, ids, positions, comments)
        if plan.inserts:
            children, positions, comments = _columns(plan.inserts)
            await db.execute(INSERT_ROWS, project, alias, parent, children, positions, comments)
    except asyncpg.UniqueViolationError:
        # Only a writer that skips the list lock can get here; the whole edit is rolled back.
        raise Conflict(messages.LIST_CHANGED_DURING_EDIT) from None


def _columns(rows: Sequence[tuple[Any, int, str | None]]) -> tuple[list[Any], list[int], list[str | None]]:
    return [row[0] for row in rows], [row[1] for row in rows], [row[2] for row in rows]


async def remove_children(
    db: Database, *, project: str, alias: str, parent: uuid.UUID, children: Sequence[uuid.UUID]
) -> int:
    return _count(await db.execute(REMOVE_CHILDREN, project, parent, alias, list(children)))


async def clear(db: Database, *, project: str, alias: str, parent: uuid.UUID) -> int:
    return _count(await db.execute(CLEAR, project, parent, alias))
