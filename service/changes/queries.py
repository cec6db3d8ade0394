"""SQL of the change log. Every read walks an index of `relation_change_commit` in key order from the
cursor (per project, or global) and joins each transaction's events by primary key, so a page costs the
same at any depth; the delivery bound, the retention horizon and the first held-back transaction are
read in the same statement, under the same snapshot."""

from __future__ import annotations

from service.changes.model import LAST_ID, Position
from service.db import Database, Record

EVENT_COLUMNS = """c.project, c.id, c.kind, c.relation_id, c.type_alias, c.parent, c.child, c.comment,
    c.created_at, c.list_size, c.list_version, c.type_data::text AS type_data"""

# int8send(xmin + 1): keys below it are deliverable (their xmax ≤ the reader's snapshot xmin).
BOUND = "SELECT int8send(pg_snapshot_xmin(pg_current_snapshot())::text::bigint + 1) AS key"

# $1 project, $2 cursor key, $3 cursor event id, $4 limit. The first row carries the snapshot's xmin,
# the project's horizon (pruned_key) and the first committed key it may not deliver yet (held_key);
# one row with NULL event columns when the page is empty.
PROJECT_PAGE = f"""
WITH bound AS ({BOUND}),
meta AS (
    SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS xmin,
           (SELECT pruned_key FROM relation_change_horizon WHERE project = $1) AS pruned_key,
           (SELECT commit_key FROM relation_change_commit, bound
            WHERE project = $1 AND commit_key IS NOT NULL AND commit_key >= bound.key
            ORDER BY commit_key LIMIT 1) AS held_key
),
tx AS (
    SELECT m.xid, m.commit_key, m.committed_at FROM relation_change_commit AS m, bound
    WHERE m.project = $1 AND m.commit_key IS NOT NULL AND m.commit_key >= $2 AND m.commit_key < bound.key
    ORDER BY m.commit_key LIMIT $4
),
page AS (
    SELECT tx.commit_key, tx.committed_at, {EVENT_COLUMNS}
    FROM tx CROSS JOIN LATERAL (
        SELECT * FROM relation_change AS c
        WHERE c.project = $1 AND c.xid = tx.xid AND (tx.commit_key > $2 OR c.id > $3)
        ORDER BY c.id LIMIT $4
    ) AS c
    ORDER BY tx.commit_key, c.id LIMIT $4
)
SELECT meta.*, page.* FROM meta LEFT JOIN page ON true ORDER BY page.commit_key, page.id"""

# Every project's events after ($1, $2), $3 at most; the first row carries the xmin as above and the
# newest horizon of any project (a dispatcher that fell behind it has missed events).
ALL_PAGE = f"""
WITH bound AS ({BOUND}),
meta AS (
    SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS xmin,
           (SELECT pruned_key FROM relation_change_horizon ORDER BY pruned_key DESC LIMIT 1) AS pruned_key,
           (SELECT commit_key FROM relation_change_commit, bound
            WHERE commit_key IS NOT NULL AND commit_key >= bound.key ORDER BY commit_key LIMIT 1) AS held_key
),
tx AS (
    SELECT m.project, m.xid, m.commit_key, m.committed_at FROM relation_change_commit AS m, bound
    WHERE m.commit_key IS NOT NULL AND m.commit_key >= $1 AND m.commit_key < bound.key
    ORDER BY m.commit_key LIMIT $3
),
page AS (
    SELECT tx.commit_key, tx.committed_at, {EVENT_COLUMNS}
    FROM tx CROSS JOIN LATERAL (
        SELECT * FROM relation_change AS c
        WHERE c.project = tx.project AND c.xid = tx.xid AND (tx.commit_key > $1 OR c.id > $2)
        ORDER BY c.id LIMIT $3
    ) AS c
    ORDER BY tx.commit_key, c.id LIMIT $3
)
SELECT meta.*, page.* FROM meta LEFT JOIN page ON true ORDER BY page.commit_key, page.id"""

# The current end of the log for a reader: see Position.end.
XMIN = "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
PRUNED = "SELECT pruned_key FROM relation_change_horizon WHERE project = $1"

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


def _key(position: Position) -> tuple[bytes, int]:
    return position.commit_key, position.id


async def project_page(db: Database, *, project: str, after: Position, limit: int) -> list[Record]:
    return await db.fetch(PROJECT_PAGE, project, *_key(after), limit)


async def all_page(db: Database, *, after: Position, limit: int) -> list[Record]:
    return await db.fetch(ALL_PAGE, *_key(after), limit)


async def current_xmin(db: Database) -> int:
    return int(await db.fetchval(XMIN))


async def pruned(db: Database, *, project: str) -> Position | None:
    key = await db.fetchval(PRUNED, project)
    return None if key is None else Position(bytes(key), LAST_ID)


async def prune_batch(db: Database, *, before: object, transactions: int, events: int) -> int:
    """One batch of the prune: up to `transactions` expired transactions, each losing up to `events`
    events (and its marker once none are left). Returns the number of events deleted; 0 when there
    is nothing (more) to prune."""
    deleted = 0
    async with db.transaction():
        for row in await db.fetch(OLDEST, transactions, before):
            if not row["expired"]:
                break
            await db.execute(RAISE_HORIZON, row["project"], row["commit_key"])
            status = await db.execute(DELETE_EVENTS, row["project"], row["xid"], events)
            count = int(status.rsplit(" ", 1)[-1])
            deleted += count
            if count < events:
                await db.execute(DELETE_COMMIT, row["project"], row["xid"])
                deleted += 1  # the marker counts: a transaction with no events left still made progress
            else:
                break  # a large transaction: its next batch in the next round
    return deleted
