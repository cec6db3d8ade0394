"""Commit order, exactly once, also when transactions commit in another order than they began,
including the case that defeats xid order: A takes its xid, then waits for a list lock held by B (a
later xid); B commits first."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from service.changes import feed
from service.changes.model import Position
from service.db import Database
from service.schema import connect
from tests.changes.helpers import events_after
from tests.conftest import Project

INSERT = """
INSERT INTO relation (project, type_alias, parent, child, position)
VALUES ($1, 'umbDocument', $2, $3, 1) RETURNING id"""
LOCK = "SELECT relation_list_lock($1, 'umbDocument', $2)"
XID = "SELECT pg_current_xact_id()::text::bigint"


@pytest.fixture
async def connections(database_url: str) -> AsyncIterator[list[asyncpg.Connection]]:
    opened = [await connect(database_url) for _ in range(4)]
    try:
        yield opened
    finally:
        for connection in opened:
            await connection.close()


async def begin_with_insert(connection: asyncpg.Connection, project: str, parent: uuid.UUID) -> int:
    await connection.execute("BEGIN")
    relation_id: int = await connection.fetchval(INSERT, project, parent, uuid.uuid4())
    return relation_id


def created_ids(events: list[dict[str, Any]]) -> list[int]:
    return [event["data"]["_id"] for event in events if event["type"] == "relation.created"]


async def test_reverse_commit_order_is_delivered_in_commit_order(
    connections: list[asyncpg.Connection], db: Database, project: Project
) -> None:
    start = await feed.end(db)
    ids = [await begin_with_insert(c, project.alias, uuid.uuid4()) for c in connections[:3]]
    xids = [await c.fetchval(XID) for c in connections[:3]]
    assert xids == sorted(xids)
    seen: list[dict[str, Any]] = []
    position = start
    for connection in reversed(connections[:3]):
        await connection.execute("COMMIT")
        # A consumer reading between the commits: whatever it is given is final.
        page = await feed.read_project(db, project=project.alias, after=position, limit=100)
        seen += [change.event for change in page.changes]
        position = page.position
    seen += await events_after(db, project.alias, position)
    assert created_ids(seen) == list(reversed(ids))
    assert created_ids(await events_after(db, project.alias, start)) == list(reversed(ids))


async def test_a_transaction_that_waited_for_a_lock_comes_after_its_holder(
    connections: list[asyncpg.Connection], database_url: str, db: Database, project: Project
) -> None:
    first, second = connections[0], connections[1]
    start = await feed.end(db)
    shared_list = uuid.uuid4()
    a_first = await begin_with_insert(first, project.alias, uuid.uuid4())  # A takes its xid first
    a_xid = await first.fetchval(XID)
    await second.execute("BEGIN")
    await second.execute(LOCK, project.alias, shared_list)
    b_id = await second.fetchval(INSERT, project.alias, shared_list, uuid.uuid4())
    b_xid = await second.fetchval(XID)
    assert a_xid < b_xid

    async def a_appends() -> int:
        await first.execute(LOCK, project.alias, shared_list)  # waits for B
        relation_id: int = await first.fetchval(INSERT, project.alias, shared_list, uuid.uuid4())
        await first.execute("COMMIT")
        return relation_id

    waiting = asyncio.create_task(a_appends())
    await wait_until_blocked_any(database_url)
    await second.execute("COMMIT")
    a_second = await asyncio.wait_for(waiting, 10)
    assert created_ids(await events_after(db, project.alias, start)) == [b_id, a_first, a_second]


async def wait_until_blocked_any(url: str) -> None:
    """Until some session of the test database waits for a lock (conftest's helper watches the
    service's own sessions only)."""
    connection = await connect(url)
    try:
        for _ in range(200):
            if await connection.fetchval(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            ):
                return
            await asyncio.sleep(0.05)
    finally:
        await connection.close()
    raise AssertionError("the transaction never waited")


async def test_an_older_writer_does_not_hold_back_a_younger_one(
    connections: list[asyncpg.Connection], db: Database, project: Project
) -> None:
    """The older one takes its key when it commits, so after the younger one's: nothing waits."""
    older, younger = connections[0], connections[1]
    start = await feed.end(db)
    old_id = await begin_with_insert(older, project.alias, uuid.uuid4())
    young_id = await begin_with_insert(younger, project.alias, uuid.uuid4())
    await younger.execute("COMMIT")
    page = await feed.read_project(db, project=project.alias, after=start, limit=100)
    assert created_ids([change.event for change in page.changes]) == [young_id]
    await older.execute("ROLLBACK")
    assert old_id not in created_ids(await events_after(db, project.alias, start))


async def test_a_transaction_between_its_key_and_its_commit_holds_back_later_keys(
    connections: list[asyncpg.Connection], db: Database, project: Project
) -> None:
    """What relation_change_commit_key publishes while a transaction commits (its key's lower bound)
    keeps readers below it until the commit is visible."""
    committing, writer = connections[0], connections[1]
    start = await feed.end(db)
    await committing.execute("BEGIN")
    await committing.execute(
        "SELECT pg_advisory_xact_lock_shared(1919247211, "
        "(pg_snapshot_xmax(pg_current_snapshot())::text::bigint % 4294967296)::bit(32)::integer)"
    )
    later = await begin_with_insert(writer, project.alias, uuid.uuid4())
    await writer.execute("COMMIT")
    page = await feed.read_project(db, project=project.alias, after=start, limit=100)
    assert page.changes == []
    assert page.held_xmax is not None
    await committing.execute("COMMIT")
    page = await feed.read_project(db, project=project.alias, after=start, limit=100)
    assert created_ids([change.event for change in page.changes]) == [later]


async def test_a_position_is_final_across_pages(db: Database, project: Project) -> None:
    """Paging through one large transaction's events, one at a time, loses and repeats nothing."""
    start = await feed.end(db)
    await db.execute(
        "INSERT INTO relation (project, type_alias, parent, child, position) "
        "SELECT $1, 'umbDocument', gen_random_uuid(), gen_random_uuid(), g FROM generate_series(1, 25) AS g",
        project.alias,
    )
    position: Position = start
    seen = []
    while page := (await feed.read_project(db, project=project.alias, after=position, limit=1)).changes:
        seen += [change.event["id"] for change in page]
        position = page[-1].position
    assert len(seen) == len(set(seen)) == 25


async def test_the_global_reader_follows_every_project(db: Database, make_project: Any) -> None:
    start = await feed.end(db)
    one, two = await make_project(), await make_project()
    seen: dict[str, int] = {}
    position = start
    while True:
        page = await feed.read_all(db, after=position, limit=5)
        if not page.changes:
            break
        for change in page.changes:
            seen[change.project] = seen.get(change.project, 0) + 1
        position = page.position
    assert seen.get(one.alias) == seen.get(two.alias) == 6  # the built-in types of each


async def test_the_global_reader_starts_after_every_horizon(db: Database, make_project: Any) -> None:
    from service.changes import retention

    pruned = await make_project()
    await retention.prune(db, retention_seconds=1, now=await db.fetchval("SELECT now() + interval '1 day'"))
    assert (await feed.read_all(db, after=Position(b"", 0), limit=1)).gone
    start = await feed.first(db, project=None)
    assert not (await feed.read_all(db, after=start, limit=1)).gone
    later = await make_project()
    page = await feed.read_all(db, after=start, limit=100)
    assert {change.project for change in page.changes} == {later.alias}
    assert pruned.alias
