"""Reads on a real streaming replica (SPEC §12): where reads land, read-your-writes tokens against a
replica whose replay is paused, the lag bound, and a replica that stops and comes back.
Slow to set up (two servers): `make test-replicas` runs these; `make test` leaves them out."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg
import httpx
import pytest
from starlette.applications import Starlette

from service import revisions
from service.app import create_app
from service.cache.service import ReadCache
from service.projects.service import SCOPES, create_key
from service.schema import migrate
from service.settings import Settings
from tests.cluster import DATABASE, Cluster, Server

pytestmark = pytest.mark.replicas

MAX_LAG_MS = 100
READS = 40


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    made = Cluster()

    async def prepare() -> None:
        admin = await asyncpg.connect(made.primary.url("postgres"))
        try:
            await admin.execute(f'CREATE DATABASE "{DATABASE}"')
        finally:
            await admin.close()
        await migrate(made.primary.url())

    try:
        asyncio.run(prepare())
        yield made
    finally:
        made.close()


@dataclass
class Served:
    app: Starlette
    client: httpx.AsyncClient
    headers: dict[str, str]

    async def create(self, parent: str | None = None) -> httpx.Response:
        body = {"relationTypeAlias": "relateDocumentOnCopy", "parentId": parent or str(uuid.uuid4())}
        body["childId"] = str(uuid.uuid4())
        return await self.client.post("/relation", json=body, headers=self.headers)

    async def replicas(self) -> list[dict[str, object]]:
        answer = await self.client.get("/health/ready")
        assert answer.status_code == 200, answer.text
        found: list[dict[str, object]] = answer.json()["replicas"]
        return found


@asynccontextmanager
async def serving(
    cluster: Cluster, project: str | None = None, cache_bytes: int = 0
) -> AsyncIterator[Served]:
    """A worker of its own (its pools, its sampler) reading from the cluster's replica; without its read
    cache unless `cache_bytes` (these tests count the reads that reach each server)."""
    settings = Settings(
        database_url=cluster.primary.url(),
        database_read_urls=(cluster.replica.url(),),
        key_cache_seconds=0,
        replica_max_lag_ms=MAX_LAG_MS,
        replica_retry_seconds=1,
        cache_bytes=cache_bytes,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        new = await create_key(app.state.db, project=project or f"p-{uuid.uuid4().hex[:12]}", scopes=SCOPES)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield Served(app, client, {"Api-Key": new.key})


async def scalar(server: Server, sql: str) -> object:
    connection = await asyncpg.connect(server.url())
    try:
        return await connection.fetchval(sql)
    finally:
        await connection.close()


async def scans(server: Server) -> int:
    """Scans of the relation table that this server itself ran (its own statistics: a replica counts
    the reads it answered; credentials are checked on the primary). A backend reports them by the time
    it exits."""
    found = await scalar(
        server,
        "SELECT coalesce(sum(idx_scan + seq_scan), 0)::bigint FROM pg_stat_user_tables "
        "WHERE relname = 'relation'",
    )
    assert isinstance(found, int)
    return found


async def eventually(check: object, seconds: float = 30) -> None:
    """Until `check()` (async, returning bool) holds, bounded."""
    deadline = time.monotonic() + seconds
    while not await check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds} s")
        await asyncio.sleep(0.05)


async def caught_up(cluster: Cluster) -> None:
    target = await scalar(cluster.primary, "SELECT pg_current_wal_lsn()::text")

    async def replayed() -> bool:
        return bool(await scalar(cluster.replica, f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn"))

    await eventually(replayed)


async def scans_moved(server: Server, before: int, by: int) -> int:
    """Wait until the server's scan count is `by` past `before`; the count then."""
    seen = before

    async def moved() -> bool:
        nonlocal seen
        seen = await scans(server)
        return seen >= before + by

    await eventually(moved)
    return seen


async def test_reads_land_on_the_replica(cluster: Cluster) -> None:
    async with serving(cluster) as served:
        created = await served.create()
        assert created.status_code == 201, created.text
        path = f"/relation/{created.json()['_id']}"
        await caught_up(cluster)
        await eventually(lambda: _replica_fresh(served))
        replica_before, primary_before = await scans(cluster.replica), await scans(cluster.primary)
        token = {revisions.MIN_HEADER: created.headers[revisions.HEADER]}
        for number in range(READS):
            answer = await served.client.get(
                path, headers={**served.headers, **(token if number % 2 else {})}
            )
            assert answer.status_code == 200, answer.text
    # The pools are closed: every backend has reported its statistics.
    await scans_moved(cluster.replica, replica_before, READS)
    assert await scans(cluster.primary) - primary_before < READS


async def test_the_read_cache_fills_from_the_replica(cluster: Cluster) -> None:
    """A miss reads a replica that has replayed every change the cache has applied; repeats are hits."""
    async with serving(cluster, cache_bytes=1 << 20) as served:
        cache: ReadCache = served.app.state.read_cache
        await eventually(lambda: _following(cache))
        created = await served.create()  # answered once the cache has applied it
        assert created.status_code == 201, created.text
        path = f"/relation/{created.json()['_id']}"
        await caught_up(cluster)
        await eventually(lambda: _replica_fresh(served))
        replica_before, primary_before = await scans(cluster.replica), await scans(cluster.primary)
        for _ in range(READS):
            answer = await served.client.get(path, headers=served.headers)
            assert answer.status_code == 200, answer.text
        assert cache.store.stats.hits >= READS - 1
    await scans_moved(cluster.replica, replica_before, 1)
    # (the create's own scans may reach the primary's statistics only now, as its backends exit)
    assert await scans(cluster.primary) - primary_before < READS


async def _following(cache: ReadCache) -> bool:
    return cache.follower.ready


async def _replica_fresh(served: Served) -> bool:
    (replica,) = await served.replicas()
    lag = replica["lagMs"]
    return replica["up"] is True and isinstance(lag, float | int) and lag < MAX_LAG_MS


async def test_a_token_sees_the_write_while_replay_is_paused(cluster: Cluster) -> None:
    async with serving(cluster) as writer, serving(cluster) as reader:
        reader.headers = writer.headers  # another worker of the same service, same project
        await caught_up(cluster)
        await eventually(lambda: _replica_fresh(reader))
        control = await asyncpg.connect(cluster.replica.url())
        try:
            await control.execute("SELECT pg_wal_replay_pause()")
            await eventually(lambda: _paused(control))
            created = await writer.create()
            assert created.status_code == 201, created.text
            path = f"/relation/{created.json()['_id']}"
            token = created.headers[revisions.HEADER]
            replayed = await control.fetchval(
                "SELECT pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')::bigint"
            )
            assert revisions.parse(token) > replayed

            # Another worker, given the token: the paused replica has not replayed it, the primary answers.
            seen = await reader.client.get(path, headers={**reader.headers, revisions.MIN_HEADER: token})
            assert seen.status_code == 200, seen.text
            # The worker that wrote sees its own write without a token.
            own = await writer.client.get(path, headers=writer.headers)
            assert own.status_code == 200, own.text

            # Without a token, once the replica is past the lag bound, the reader stops using it.
            await eventually(lambda: _lagging(reader), seconds=5)
            late = await reader.client.get(path, headers=reader.headers)
            assert late.status_code == 200, late.text
            assert (await control.fetchval("SELECT pg_get_wal_replay_pause_state()")) == "paused"
        finally:
            await control.execute("SELECT pg_wal_replay_resume()")
            await control.close()
        await eventually(lambda: _replica_fresh(reader))


async def _paused(control: asyncpg.Connection) -> bool:
    return bool(await control.fetchval("SELECT pg_get_wal_replay_pause_state() = 'paused'"))


async def _lagging(served: Served) -> bool:
    (replica,) = await served.replicas()
    lag = replica["lagMs"]
    return isinstance(lag, float | int) and lag > MAX_LAG_MS


async def test_a_stopped_replica_is_skipped_then_used_again(cluster: Cluster) -> None:
    async with serving(cluster) as served:
        created = await served.create()
        path = f"/relation/{created.json()['_id']}"
        await caught_up(cluster)
        await eventually(lambda: _replica_fresh(served))
        cluster.replica.stop()
        try:
            for _ in range(READS):
                answer = await served.client.get(path, headers=served.headers)
                assert answer.status_code == 200, answer.text
            (replica,) = await served.replicas()  # ready, and says the replica is down
            assert replica["up"] is False
            assert replica["lagMs"] is None
        finally:
            cluster.replica.start()
        await eventually(lambda: _replica_fresh(served))
        before = await scans(cluster.replica)
        for _ in range(READS):
            answer = await served.client.get(path, headers=served.headers)
            assert answer.status_code == 200, answer.text
    await scans_moved(cluster.replica, before, READS)


async def test_an_export_reads_its_snapshot_on_the_replica(cluster: Cluster) -> None:
    async with serving(cluster) as served:
        created = await served.create()
        assert created.status_code == 201, created.text
        await caught_up(cluster)
        await eventually(lambda: _replica_fresh(served))
        before = await scans(cluster.replica)
        exported = await served.client.get("/relation/export", headers=served.headers)
        assert exported.status_code == 200, exported.text
        assert created.json()["childId"] in exported.text
    await scans_moved(cluster.replica, before, 1)
