"""A TRUNCATE logs no change: its trigger counts it, and every worker's cache empties when it sees the
count move. In a database of its own (the session's other tests keep their rows)."""

from __future__ import annotations

import asyncio

from service.projects.service import SCOPES, create_key
from service.schema import connect
from tests.cache.helpers import worker
from tests.conftest import guid

LAG_MS = 40


async def test_a_truncate_empties_the_cache(own_database: str) -> None:
    async with worker(own_database, replica_max_lag_ms=LAG_MS) as one:
        key = await create_key(one.app.state.db, project="truncated", scopes=list(SCOPES))
        headers = {"Api-Key": key.key}
        body = {"parentId": guid(), "childId": guid(), "relationTypeAlias": "umbDocument"}
        created = (await one.http.post("/relation", json=body, headers=headers)).json()
        path = f"/relation/{created['_id']}"
        await one.settled("truncated")
        for _ in range(2):
            assert (await one.http.get(path, headers=headers)).status_code == 200
        assert one.cache.store.stats.hits == 1
        connection = await connect(own_database)
        try:
            await connection.execute("SET relations.notify = 'after-commit'")  # no NOTIFY either
            await connection.execute("TRUNCATE relation")
            token = await connection.fetchval(
                "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::bigint"
            )
        finally:
            await connection.close()
        with_token = {**headers, "Relations-Min-Revision": f"{token:X}"}
        assert (await one.http.get(path, headers=with_token)).status_code == 404
        await asyncio.sleep(LAG_MS / 1000)
        assert (await one.http.get(path, headers=headers)).status_code == 404
        assert one.cache.store.stats.hits == 1
