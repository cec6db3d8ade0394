"""Retention: batches of bounded size, harmless when several workers prune at once, and the horizon
that turns a cursor before it into 410."""

from __future__ import annotations

import asyncio
import datetime

from service.changes import feed, queries, retention
from service.db import Database
from tests.conftest import Project

MANY = """
INSERT INTO relation (project, type_alias, parent, child, position)
SELECT $1, 'umbDocument', gen_random_uuid(), gen_random_uuid(), g FROM generate_series(1, $2) AS g"""
COUNT = "SELECT count(*) FROM relation_change WHERE project = $1"


def later(days: int = 8) -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=days)


async def test_nothing_recent_is_pruned(db: Database, project: Project) -> None:
    await db.execute(MANY, project.alias, 3)
    before = await db.fetchval(COUNT, project.alias)
    await retention.prune(db, retention_seconds=3600)
    assert await db.fetchval(COUNT, project.alias) == before
    assert (
        await feed.read_project(db, project=project.alias, after=await feed.end(db), limit=1)
    ).gone is False


async def test_a_large_transaction_goes_in_bounded_batches(db: Database, project: Project) -> None:
    start = await feed.first(db, project=project.alias)
    await db.execute(MANY, project.alias, 120)
    cutoff = later()
    batches = []
    while deleted := await queries.prune_batch(db, before=cutoff, transactions=100, events=50):
        batches.append(deleted)
    assert max(batches) <= 51  # 50 events, and a marker with the last of them
    assert await db.fetchval(COUNT, project.alias) == 0
    page = await feed.read_project(db, project=project.alias, after=start, limit=10)
    assert page.gone


async def test_workers_pruning_at_once_are_harmless(db: Database, make_project: object) -> None:
    projects = [await make_project() for _ in range(3)]  # type: ignore[operator]
    for project in projects:
        await db.execute(MANY, project.alias, 40)
    await asyncio.gather(*(retention.prune(db, retention_seconds=60, now=later()) for _ in range(4)))
    for project in projects:
        assert await db.fetchval(COUNT, project.alias) == 0
        # Afterwards the feed starts after the horizon and answers the changes made since.
        first = await feed.first(db, project=project.alias)
        await db.execute(MANY, project.alias, 2)
        page = await feed.read_project(db, project=project.alias, after=first, limit=10)
        assert not page.gone and len(page.changes) == 2
