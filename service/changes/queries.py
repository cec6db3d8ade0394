"""SQL of the change log. Every read walks an index of `relation_change_commit` in key order from the
cursor (per project, or global) and joins each transaction's events by primary key, so a page costs the
same at any depth; the delivery bound, the retention horizon and the first held-back transaction come
with the page, in one round trip."""

from __future__ import annotations

from typing import Any, Protocol

from service.changes.model import LAST_ID, Position
from service.db import Database, Record

# schema.sql's relation_change_page: the delivery bound, then the events under a later snapshot (so
# it is a function: two statements in one round trip). $1 the project (NULL: every project), ($2, $3)
# the position read from, $4 the limit. Every row carries the bound, the horizon (pruned_key) and the
# first committed key not deliverable yet (held_key); an empty page is one row without an event.
PAGE = """
SELECT bound, pruned_key, held_key, commit_key, committed_at, project, id, kind, relation_id, type_alias,
       parent, child, comment, created_at, list_size, list_version, type_data::text AS type_data
FROM relation_change_page($1, $2, $3, $4)"""

# The largest commit-key xmax a reader may deliver now (see schema.sql's relation_change_bound).
BOUND = "SELECT relation_change_bound()"
PRUNED = "SELECT pruned_key FROM relation_change_horizon WHERE project = $1"
PRUNED_ANY = "SELECT pruned_key FROM relation_change_horizon ORDER BY pruned_key DESC LIMIT 1"

# Retention, in batches that each touch a bounded number of rows. The oldest transactions by key (key
# order is commit order, close to time order), $1 at most, locked so that workers pruning at once take
# different ones; those committed before $2 are pruned.
OLDEST = """
SELECT project, xid, commit_key, committed_at < $2 AS expired FROM relation_change_commit
WHERE commit_key IS NOT NULL ORDER BY commit_key LIMIT $1 FOR UPDATE SKIP LOCKED"""
# Raise the project's horizon first (same transaction), so no reader sees a transaction half pruned
# without also seeing the horizon that makes its cursor Gone.
RAISE_HORIZON = """
INSERT INTO relation_change_horizon AS h (project, pruned_key) VALUES ($1, $2)
ON CONFLICT (project) DO UPDATE SET pruned_key = greatest(h.pruned_key, excluded.pruned_key)"""
DELETE_EVENTS = """
DELETE FROM relation_change WHERE project = $1 AND xid = $2 AND id IN (
    SELECT id FROM relation_change WHERE project = $1 AND xid = $2 ORDER BY id LIMIT $3)"""
DELETE_COMMIT = "DELETE FROM relation_change_commit WHERE project = $1 AND xid = $2"


class Reader(Protocol):
    """What the reads need: `Database`, or the feed listener's own connection (`Listener`)."""

    async def fetch(self, sql: str, *args: Any) -> list[Record]: ...

    async def fetchval(self, sql: str, *args: Any) -> Any: ...


def _key(position: Position) -> tuple[bytes, int]:
    return position.commit_key, position.id


async def page(db: Reader, *, project: str | None, after: Position, limit: int) -> list[Record]:
    return await db.fetch(PAGE, project, *_key(after), limit)


async def bound(db: Reader) -> int:
    return int(await db.fetchval(BOUND))


async def pruned(db: Reader, *, project: str | None) -> Position | None:
    """The project's horizon (None: the newest of any project), as a position after it."""
    key = await (db.fetchval(PRUNED, project) if project is not None else db.fetchval(PRUNED_ANY))
    return None if key is None else Position(bytes(key), LAST_ID)


async def prune_batch(db: Database, *, before: object, transactions: int, events: int) -> int:
    """One batch of the prune, in one transaction: the expired transactions among the `transactions`
    oldest, deleting at most `events` events in all (a transaction's marker goes with its last
    events). Returns the rows deleted; 0 when there is nothing (more) to prune."""
    deleted = 0
    async with db.transaction():
        for row in await db.fetch(OLDEST, transactions, before):
            budget = events - deleted
            if not row["expired"] or budget <= 0:
                break
            await db.execute(RAISE_HORIZON, row["project"], row["commit_key"])
            status = await db.execute(DELETE_EVENTS, row["project"], row["xid"], budget)
            count = int(status.rsplit(" ", 1)[-1])
            deleted += count
            if count == budget:
                break  # perhaps more of this transaction: the next batch goes on
            await db.execute(DELETE_COMMIT, row["project"], row["xid"])
            deleted += 1
    return deleted
