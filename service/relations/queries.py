"""SQL for relations. Data functions take keyword-only arguments and return rows, counts or None."""

from __future__ import annotations

import logging
import uuid

import asyncpg

from service.cursors import PageStart, Slice, fetch, statements
from service.db import Database, Record
from service.errors import ServiceUnavailable
from service.relations.model import Update

log = logging.getLogger("service.relations")

COLUMNS = "id, type_alias, parent, child, comment, created_at"
# Children of one list are spaced this far apart, so most insertions take a midpoint.
POSITION_GAP = 1 << 20
DEPENDENCY_TYPES = "SELECT alias FROM relation_type WHERE project = $1 AND is_dependency"

GET = f"SELECT {COLUMNS} FROM relation WHERE project = $1 AND id = $2"

# Every list: its total from the counters schema.sql keeps (never a count of its rows) and a page in
# the list's own order from an index in that order (cursors.statements). `PAGE_COLUMNS` carry what
# the keys are made of.
PAGE_COLUMNS = f"{COLUMNS}, position"

# GET /relation/{alias}: oldest first, by relation_by_type (project, type_alias, id).
BY_TYPE = statements(
    total="SELECT coalesce(sum(size), 0) AS total FROM type_count WHERE project = $1 AND type_alias = $2",
    select=f"{PAGE_COLUMNS} FROM relation",
    where="project = $1 AND type_alias = $2",
    order=("id",),
    key_at=3,
)

# GET /relation/parent/{guid}: by type, then position, by relation_by_parent; with ?relationType= the
# one list (project, parent, type) by position.
BY_PARENT = statements(
    total="SELECT coalesce(sum(size), 0) AS total FROM child_list WHERE project = $1 AND parent = $2",
    select=f"{PAGE_COLUMNS} FROM relation",
    where="project = $1 AND parent = $2",
    order=("type_alias", "position", "id"),
    key_at=3,
)
BY_PARENT_OF_TYPE = statements(
    total="""SELECT coalesce(max(size), 0) AS total FROM child_list
             WHERE project = $1 AND parent = $2 AND type_alias = $3""",
    select=f"{PAGE_COLUMNS} FROM relation",
    where="project = $1 AND parent = $2 AND type_alias = $3",
    order=("position", "id"),
    key_at=4,
)


def _by_child(*, of_type: bool, dependency: bool) -> tuple[str, str]:
    """GET /relation/child/{guid}, oldest first, by relation_by_child (project, child, id); the total
    sums the child's counters over its types, joined with the types' current flags."""
    where = ["project = $1 AND child = $2"]
    counted = ["c.project = $1 AND c.child = $2"]
    if of_type:
        where.append("type_alias = $3")
        counted.append("c.type_alias = $3")
    if dependency:
        where.append(f"type_alias IN ({DEPENDENCY_TYPES})")
        counted.append("t.is_dependency")
    return statements(
        total=f"""SELECT coalesce(sum(c.size), 0) AS total FROM child_count AS c
                  JOIN relation_type AS t ON t.project = c.project AND t.alias = c.type_alias
                  WHERE {" AND ".join(counted)}""",
        select=f"{PAGE_COLUMNS} FROM relation",
        where=" AND ".join(where),
        order=("id",),
        key_at=4 if of_type else 3,
    )


BY_CHILD = {
    (of_type, dependency): _by_child(of_type=of_type, dependency=dependency)
    for of_type in (False, True)
    for dependency in (False, True)
}

BIDIRECTIONAL_TYPES = "SELECT alias FROM relation_type WHERE project = $1 AND is_bidirectional"


def _related(*, of_type: bool) -> dict[tuple[bool, int], str]:
    """The four statements of GET /relation/related/{guid} (forward or back, from either side), with
    or without `?relationType=` ($3 when given). Parameters after it: the key (side, type, position,
    id), the limit and the offset."""
    n = 4 if of_type else 3
    side, kind, position, row, limit, offset = (f"${n + i}" for i in range(6))
    only = " AND type_alias = $3" if of_type else ""
    counted = " AND c.type_alias = $3" if of_type else ""
    total = f"""
SELECT (SELECT coalesce(sum(size), 0) FROM child_list WHERE project = $1 AND parent = $2{only})
     + (SELECT coalesce(sum(c.size - c.loops), 0) FROM child_count AS c
        JOIN relation_type AS t ON t.project = c.project AND t.alias = c.type_alias
        WHERE c.project = $1 AND c.child = $2{counted} AND t.is_bidirectional) AS total"""
    parent_side = f"SELECT {PAGE_COLUMNS}, 0 AS side FROM relation WHERE project = $1 AND parent = $2{only}"
    child_side = f"""
SELECT {PAGE_COLUMNS}, 1 AS side FROM relation
WHERE project = $1 AND child = $2 AND parent <> $2{only} AND type_alias IN ({BIDIRECTIONAL_TYPES})"""
    # Every key parameter appears in every statement (PostgreSQL must know its type); the checks of
    # the side a statement is not about are constants (one-time filters).
    on_child_side = f"{side} = 1 AND {kind} = '' AND {position} = 0"
    parent_order = "type_alias{0}, position{0}, id{0}"

    def statement(*parts: str) -> str:
        sides = " UNION ALL ".join(f"({part} LIMIT {limit}::bigint + {offset}::bigint)" for part in parts)
        return f"""
WITH total AS ({total})
SELECT total.*, page.* FROM total LEFT JOIN LATERAL (
    SELECT * FROM ({sides}) AS sides LIMIT {limit} OFFSET {offset}
) AS page ON true"""

    return {
        (True, 0): statement(
            f"""{parent_side} AND (type_alias, position, id) > ({kind}, {position}, {row})
                ORDER BY {parent_order.format("")}""",
            f"{child_side} AND {side} = 0 ORDER BY id",
        ),
        (True, 1): statement(f"{child_side} AND {on_child_side} AND id > {row} ORDER BY id"),
        (False, 0): statement(
            f"""{parent_side} AND {side} = 0 AND (type_alias, position, id) < ({kind}, {position}, {row})
                ORDER BY {parent_order.format(" DESC")}"""
        ),
        (False, 1): statement(
            f"{child_side} AND {on_child_side} AND id < {row} ORDER BY id DESC",
            f"{parent_side} ORDER BY {parent_order.format(' DESC')}",
        ),
    }


# GET /relation/related/{guid}: the parent side by type, then position (relation_by_parent), then the
# child side of bidirectional types, oldest first (relation_by_child), without the self-relations the
# parent side holds already. Keys are (side, type, position, id): (1, '', 0, id) on the child side.
# Each page comes from at most two index ranges, the first read before the second (Append).
RELATED = _related(of_type=False)
RELATED_OF_TYPE = _related(of_type=True)

REFERENCED = f"""
SELECT DISTINCT child FROM relation
WHERE project = $1 AND child = ANY($2::uuid[]) AND type_alias IN ({DEPENDENCY_TYPES})"""

# Serialises every change of one ordered list (project, type, parent), and nothing else (schema.sql).
LOCK_LIST = "SELECT relation_list_lock($1, $2, $3)"
# POST /relation in one round trip (schema.sql's relation_append): type, lock, cardinality, insert.
APPEND = f"""
SELECT outcome, {COLUMNS} FROM relation_append($1, $2, $3, $4, $5, {POSITION_GAP})"""
# A PUT in one statement: the comment (NULL keeps it), where the immutable fields it names match.
UPDATE_COMMENT = f"""
UPDATE relation SET comment = coalesce($3, comment)
WHERE project = $1 AND id = $2 AND ($4::uuid IS NULL OR parent = $4) AND ($5::uuid IS NULL OR child = $5)
  AND ($6::text IS NULL OR type_alias = $6)
RETURNING {COLUMNS}, pg_current_xact_id()::text::bigint AS xid"""
DELETE = f"DELETE FROM relation WHERE project = $1 AND id = $2 RETURNING {COLUMNS}"
DELETE_BY_PARENT = "DELETE FROM relation WHERE project = $1 AND parent = $2"
DELETE_BY_CHILD = "DELETE FROM relation WHERE project = $1 AND child = $2"

# A delete by parent or child changes several lists. It first takes the lock of every list it will
# change, in one global order (the lock's own key), so it is serialised with each list's edits (which
# hold their one list's lock while they lock rows) and never locks rows in an order that crosses
# theirs. PostgreSQL evaluates a volatile select list after the sort, so the locks follow that order.
_LOCK_LISTS_WHERE = """
SELECT count(*) FROM (
    SELECT relation_list_lock($1, lists.type_alias, lists.parent) FROM (
        SELECT DISTINCT type_alias, parent FROM relation WHERE project = $1 AND {column} = $2
    ) AS lists
    ORDER BY hashtextextended($1 || '/' || lists.type_alias || '/' || lists.parent::text, 0)
) AS locked"""
LOCK_LISTS_OF_PARENT = _LOCK_LISTS_WHERE.format(column="parent")
LOCK_LISTS_OF_CHILD = _LOCK_LISTS_WHERE.format(column="child")
# A list that gains the child between the locks and the delete is not locked; should that ever
# deadlock, PostgreSQL cancels one side and the delete runs again, up to this many times.
DELETE_ATTEMPTS = 3


async def get(db: Database, *, project: str, relation_id: int) -> Record | None:
    return await db.fetchrow(GET, project, relation_id)


async def by_type(db: Database, *, project: str, alias: str, window: PageStart) -> Slice:
    return await fetch(db, BY_TYPE[not window.forward], (project, alias), window)


async def by_parent(
    db: Database, *, project: str, parent: uuid.UUID, alias: str | None, window: PageStart
) -> Slice:
    if alias is None:
        return await fetch(db, BY_PARENT[not window.forward], (project, parent), window)
    return await fetch(db, BY_PARENT_OF_TYPE[not window.forward], (project, parent, alias), window)


async def by_child(
    db: Database, *, project: str, child: uuid.UUID, alias: str | None, dependency: bool, window: PageStart
) -> Slice:
    sql = BY_CHILD[alias is not None, dependency][not window.forward]
    return await fetch(db, sql, (project, child) if alias is None else (project, child, alias), window)


async def related(
    db: Database, *, project: str, guid: uuid.UUID, alias: str | None, window: PageStart
) -> Slice:
    side = int(window.key[0])
    if alias is None:
        return await fetch(db, RELATED[window.forward, side], (project, guid), window)
    return await fetch(db, RELATED_OF_TYPE[window.forward, side], (project, guid, alias), window)


async def referenced(db: Database, *, project: str, ids: list[uuid.UUID]) -> set[uuid.UUID]:
    return {row["child"] for row in await db.fetch(REFERENCED, project, ids)}


async def append(
    db: Database, *, project: str, alias: str, parent: uuid.UUID, child: uuid.UUID, comment: str
) -> Record:
    """Add the relation at the end of its list. `outcome` says what happened: 'created' (the row's
    columns are set), 'unknown-type', 'taken' (a cardinality-one parent has another child) or
    'duplicate'."""
    return await db.fetchrow(APPEND, project, alias, parent, child, comment)


async def update_comment(db: Database, *, project: str, relation_id: int, update: Update) -> Record | None:
    """The relation after the update and `xid`, its transaction's id (as the change log keeps it);
    None when it does not exist or a field the update names differs."""
    expected = update.expected
    return await db.fetchrow(
        UPDATE_COMMENT,
        project,
        relation_id,
        update.comment,
        expected.get("parent"),
        expected.get("child"),
        expected.get("type_alias"),
    )


async def delete(db: Database, *, project: str, relation_id: int) -> Record | None:
    return await db.fetchrow(DELETE, project, relation_id)


def _count(status: str) -> int:
    return int(status.rsplit(" ", 1)[-1])


async def delete_by_parent(db: Database, *, project: str, parent: uuid.UUID) -> int:
    return await _delete_locked(db, LOCK_LISTS_OF_PARENT, DELETE_BY_PARENT, project, parent)


async def delete_by_child(db: Database, *, project: str, child: uuid.UUID) -> int:
    return await _delete_locked(db, LOCK_LISTS_OF_CHILD, DELETE_BY_CHILD, project, child)


async def _delete_locked(db: Database, lock: str, delete_rows: str, project: str, entity: uuid.UUID) -> int:
    """The lists' locks, then the delete, in one transaction (run again after a deadlock; 503 if
    it keeps losing)."""
    for attempt in range(1, DELETE_ATTEMPTS + 1):
        try:
            async with db.transaction():
                await db.fetchval(lock, project, entity)
                return _count(await db.execute(delete_rows, project, entity))
        except asyncpg.DeadlockDetectedError:
            log.warning("delete of %s's relations lost a deadlock (attempt %d)", entity, attempt)
    raise ServiceUnavailable()
