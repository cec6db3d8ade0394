"""Retention of the change log (RELATIONS_CHANGES_RETENTION, default 7 days): each worker prunes in the
background, in batches of bounded size that walk the commit-key index from its oldest end, so no
DELETE is unbounded and a large import's events go a batch at a time. Workers pruning at once take
different transactions (FOR UPDATE SKIP LOCKED), and every step is idempotent, so they are harmless
to each other. Before any event of a transaction is deleted, its project's horizon is raised to that
transaction's key in the same database transaction: a cursor below the horizon is answered 410 Gone,
so a consumer never silently misses a pruned change."""

from __future__ import annotations

import asyncio
import datetime
import logging

from service.changes import queries
from service.db import Database
from service.errors import ApiError

log = logging.getLogger("service.changes")

PRUNE_EVERY_SECONDS = 60.0
# Per batch: at most this many transactions, and this many events of one of them.
BATCH_TRANSACTIONS = 100
BATCH_EVENTS = 5000
# Between batches, so a long prune leaves the database to the requests.
PAUSE_SECONDS = 0.05


async def prune(db: Database, *, retention_seconds: int, now: datetime.datetime | None = None) -> int:
    """Delete every change older than the retention, batch by batch; returns the rows deleted."""
    moment = now or datetime.datetime.now(datetime.UTC)
    before = moment - datetime.timedelta(seconds=retention_seconds)
    total = 0
    while True:
        deleted = await queries.prune_batch(
            db, before=before, transactions=BATCH_TRANSACTIONS, events=BATCH_EVENTS
        )
        if not deleted:
            return total
        total += deleted
        await asyncio.sleep(PAUSE_SECONDS)


async def prune_forever(db: Database, *, retention_seconds: int) -> None:
    """Background task of each worker."""
    while True:
        try:
            removed = await prune(db, retention_seconds=retention_seconds)
            if removed:
                log.info("pruned %d change-log rows older than %d s", removed, retention_seconds)
        except ApiError as error:  # database away: try again next round
            log.warning("could not prune the change log: %s", error.message)
        await asyncio.sleep(PRUNE_EVERY_SECONDS)
