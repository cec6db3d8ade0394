"""A stale-read hunt with two workers: one writes comments and a list while readers on the other read
with and without revision tokens, and its listening connection is killed midway. With a token a
reader never sees an older state; without, never one older than RELATIONS_REPLICA_MAX_LAG_MS; and
never one that was not written."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass

from service.schema import connect
from tests.cache.helpers import Worker, worker
from tests.conftest import Project, guid

LAG_MS = 40
ROUNDS = 150
READERS = 3


@dataclass(frozen=True)
class Ack:
    at: float  # when the answer arrived (after the commit)
    token: str
    round: int


# Half the rounds are written past the service, by a session whose commits notify nobody (as a writer
# whose NOTIFY was lost): the reader's cache then learns of them only by polling, and reads must not
# take its entries for current meanwhile.
SILENT = "SET relations.notify = 'after-commit'"
SILENT_ROUND = """
WITH updated AS (UPDATE relation SET comment = $4 WHERE project = $1 AND id = $3)
INSERT INTO relation (project, type_alias, parent, child, position)
SELECT $1, 'umbDocument', $2, gen_random_uuid(), coalesce(max(position), 0) + 1024 FROM relation
WHERE project = $1 AND parent = $2 AND type_alias = 'umbDocument'"""
REVISION = "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::bigint"


async def write(
    writer: Worker, project: Project, relation: int, parent: str, acks: list[Ack], midway: asyncio.Event
) -> None:
    listing = f"/relation/parent/{parent}/umbDocument"
    silent = await connect(writer.app.state.settings.database_url)
    try:
        await silent.execute(SILENT)
        for number in range(1, ROUNDS + 1):
            if number % 2:
                done = await writer.http.put(
                    f"/relation/{relation}", json={"comment": f"v{number}"}, headers=project.headers
                )
                assert done.status_code == 200, done.text
                added = await writer.http.post(listing, json=[guid()], headers=project.headers)
                assert added.status_code == 200, added.text
                token = added.headers["relations-revision"]
            else:
                await silent.execute(SILENT_ROUND, project.alias, uuid.UUID(parent), relation, f"v{number}")
                token = f"{await silent.fetchval(REVISION):X}"
            acks.append(Ack(time.monotonic(), token, number))
            if number == ROUNDS // 3:
                midway.set()
            await asyncio.sleep(random.uniform(0, 0.01))
    finally:
        await silent.close()


def floor_of(acks: list[Ack], before: float) -> int:
    """The newest round acknowledged before `before` (0: none)."""
    return max((ack.round for ack in acks if ack.at < before), default=0)


async def read(
    reader: Worker, project: Project, relation: int, listing: str, acks: list[Ack], done: asyncio.Event
) -> int:
    checked = 0
    while not done.is_set():
        started = time.monotonic()
        known = acks[-1] if acks and random.random() < 0.5 else None
        headers = dict(project.headers)
        if known is not None:
            headers["Relations-Min-Revision"] = known.token
            floor = known.round
        else:
            floor = floor_of(acks, started - LAG_MS / 1000)
        comment = (await reader.http.get(f"/relation/{relation}", headers=headers)).json()["comment"]
        written = len(acks) + 1  # a round may have committed before its answer arrived
        seen = int(comment[1:] or 0)
        assert floor <= seen <= written, (floor, seen, written, known)
        page = (await reader.http.get(listing, headers=headers)).json()
        written = len(acks) + 1
        size = page["_totalItems"] - 1  # the list starts with one child
        assert floor <= size <= written, (floor, size, written, known)
        checked += 1
        await asyncio.sleep(random.uniform(0, 0.003))
    return checked


async def kill_listener(reader: Worker, midway: asyncio.Event) -> None:
    await midway.wait()
    connection = await connect(reader.app.state.settings.database_url)
    try:
        pid = await reader.app.state.changes_listener.fetchval("SELECT pg_backend_pid()")
        await connection.execute("SELECT pg_terminate_backend($1)", pid)
    finally:
        await connection.close()


async def test_no_stale_read_with_or_without_a_token(database_url: str, project: Project) -> None:
    async with (
        worker(database_url, replica_max_lag_ms=LAG_MS) as writer,
        worker(database_url, replica_max_lag_ms=LAG_MS) as reader,
    ):
        parent = guid()
        listing = f"/relation/parent/{parent}/umbDocument"
        first = await writer.http.post(
            "/relation",
            json={"parentId": parent, "childId": guid(), "relationTypeAlias": "umbDocument"},
            headers=project.headers,
        )
        relation = first.json()["_id"]
        acks: list[Ack] = []
        done = asyncio.Event()
        readers = [
            asyncio.create_task(read(reader, project, relation, listing, acks, done)) for _ in range(READERS)
        ]
        midway = asyncio.Event()
        killer = asyncio.create_task(kill_listener(reader, midway))
        try:
            await write(writer, project, relation, parent, acks, midway)
        finally:
            done.set()
        checked = sum(await asyncio.gather(*readers))
        await killer
        stats = reader.cache.store.stats
        assert checked >= ROUNDS
        assert stats.hits >= 10, stats  # the hunt went through the cache, not around it
        assert reader.app.state.changes_listener.session >= 2  # and the kill did reconnect it
