"""SQL for relations. Data functions take keyword-only arguments and return rows, counts or None."""

from __future__ import annotations

import logging
import uuid

import asyncpg

from service.db import Database, Record
from service.errors import ServiceUnavailable

log = logging.getLogger("service.relations")

COLUMNS = "id, type_alias, parent, child, comment, created_at"
# Children of one list are spaced this far apart, so most insertions take a midpoint.
POSITION_GAP = 1 << 20
DEPENDENCY_TYPES = "SELECT alias FROM relation_type WHERE project = $1 AND is_dependency"

GET = f"SELECT {COLUMNS} FROM relation WHERE project = $1 AND id = $2"

BY_TYPE = f"""
SELECT {COLUMNS}, count(*) OVER () AS total FROM relation
WHERE project = $1 AND type_alias = $2 ORDER BY id"""
BY_TYPE_COUNT = "SELECT count(*) FROM relation WHERE project = $1 AND type_alias = $2"

BY_PARENT = f"""
SELECT {COLUMNS}, count(*) OVER () AS total FROM relation
WHERE project = $1 AND parent = $2 AND ($3::text IS NULL OR type_alias = $3)
ORDER BY type_alias, position, id"""
BY_PARENT_COUNT = """
SELECT count(*) FROM relation WHERE project = $1 AND parent = $2 AND ($3::text IS NULL OR type_alias = $3)"""

BY_CHILD = f"""
SELECT {COLUMNS}, count(*) OVER () AS total FROM relation
WHERE project = $1 AND child = $2 AND ($3::text IS NULL OR type_alias = $3)
  AND (NOT $4 OR type_alias IN ({DEPENDENCY_TYPES}))
ORDER BY id"""
BY_CHILD_COUNT = f"""
SELECT count(*) FROM relation WHERE project = $1 AND child = $2 AND ($3::text IS NULL OR type_alias = $3)
  AND (NOT $4 OR type_alias IN ({DEPENDENCY_TYPES}))"""

# The parent side, plus the child side of bidirectional types (the relation seen from its other end).
RELATED_WHERE = """
FROM relation WHERE project = $1 AND (parent = $2 OR (child = $2 AND type_alias IN (
    SELECT alias FROM relation_type WHERE project = $1 AND is_bidirectional)))"""
RELATED = f"SELECT {COLUMNS}, count(*) OVER () AS total {RELATED_WHERE} ORDER BY id"
RELATED_COUNT = f"SELECT count(*) {RELATED_WHERE}"

REFERENCED = f"""
SELECT DISTINCT child FROM relation
WHERE project = $1 AND child = ANY($2::uuid[]) AND type_alias IN ({DEPENDENCY_TYPES})"""

# Serialises every change of one ordered list (project, type, parent), and nothing else (schema.sql).
LOCK_LIST = "SELECT relation_list_lock($1, $2, $3)"
# POST /relation in one round trip (schema.sql's relation_append): type, lock, cardinality, insert.
APPEND = f"""
SELECT outcome, {COLUMNS} FROM relation_append($1, $2, $3, $4, $5, {POSITION_GAP})"""
UPDATE_COMMENT = f"UPDATE relation SET comment = $3 WHERE project = $1 AND id = $2 RETURNING {COLUMNS}"
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


async def by_type(
    db: Database, *, project: str, alias: str, limit: int, offset: int
) -> tuple[list[Record], int]:
    return await db.fetch_page(BY_TYPE, BY_TYPE_COUNT, project, alias, limit=limit, offset=offset)


async def by_parent(
    db: Database, *, project: str, parent: uuid.UUID, alias: str | None, limit: int, offset: int
) -> tuple[list[Record], int]:
    return await db.fetch_page(BY_PARENT, BY_PARENT_COUNT, project, parent, alias, limit=limit, offset=offset)


async def by_child(
    db: Database,
    *,
    project: str,
    child: uuid.UUID,
    alias: str | None,
    dependency: bool,
    limit: int,
    offset: int,
) -> tuple[list[Record], int]:
    return await db.fetch_page(
        BY_CHILD, BY_CHILD_COUNT, project, child, alias, dependency, limit=limit, offset=offset
    )


async def related(
    db: Database, *, project: str, guid: uuid.UUID, limit: int, offset: int
) -> tuple[list[Record], int]:
    return await db.fetch_page(RELATED, RELATED_COUNT, project, guid, limit=limit, offset=offset)


async def referenced(db: Database, *, project: str, ids: list[uuid.UUID]) -> set[uuid.UUID]:
    return {row["child"] for row in await db.fetch(REFERENCED, project, ids)}


async def append(
    db: Database, *, project: str, alias: str, parent: uuid.UUID, child: uuid.UUID, comment: str
) -> Record:
    """Add the relation at the end of its list. `outcome` says what happened: 'created' (the row's
    columns are set), 'unknown-type', 'taken' (a cardinality-one parent has another child) or
    'duplicate'."""
    return await db.fetchrow(APPEND, project, alias, parent, child, comment)


async def update_comment(db: Database, *, project: str, relation_id: int, comment: str) -> Record | None:
    return await db.fetchrow(UPDATE_COMMENT, project, relation_id, comment)


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
