"""SQL of the read cache: one poll of the change log (schema.sql's relation_cache_poll)."""

from __future__ import annotations

from service.changes.model import Position
from service.changes.queries import Reader
from service.db import Record

# $1, $2 the position read from (a commit key and event id), $3 the page size. Every row but the last
# carries the WAL position read first and the TRUNCATE count (an empty page is one row without an
# event); the last carries only the WAL position read after them (`wal_end`).
POLL = """
SELECT wal_position, truncations, held, pruned_key, commit_key, project, id, kind, relation_id, type_alias,
       parent, child, wal_end
FROM relation_cache_poll($1, $2, $3)"""


async def poll(db: Reader, *, after: Position, limit: int) -> list[Record]:
    return await db.fetch(POLL, after.commit_key, after.id, limit)
