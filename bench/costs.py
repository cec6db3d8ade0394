"""`python -m bench.costs`: what issue 15's choices cost per request, measured in one process as A/B
pairs in alternating rounds (each side keeps its best round), in CPU time of the process per request, so
that other work on a shared machine hardly moves them. The app is called through ASGI (httpx's
transport: its share is the same on both sides), so the differences are the service's own.

- `databases` vs asyncpg: every statement borrows its connection through `databases`' public
  `connection()` (what service.db does) vs straight from asyncpg's pool (what it did through private
  attributes): GET /relation/{id}.
- the revision: POST /relation answering Relations-Revision (one shared position query after commit) vs
  the same without it, at 1 and at 32 concurrent requests.
- no statement cache (RELATIONS_PGBOUNCER=transaction, here straight to PostgreSQL) vs the cache:
  GET /relation/{id}.

    BENCH_DATABASE_URL=postgresql://… python -m bench.costs [--requests 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
from starlette.applications import Starlette

from bench import seed
from service import db as service_db
from service.app import create_app
from service.settings import Settings

Call = Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]]


class DirectPool(service_db.Pool):
    """The old way, for comparison only: asyncpg's pool used directly."""

    def __init__(self, url: str, **options: Any) -> None:
        super().__init__(url, **options)
        self._url = url
        self._direct: Any = None

    async def open(self) -> None:
        plain, extra = service_db.split_url(self._url)
        self._direct = await asyncpg.create_pool(plain, min_size=10, max_size=10, reset=_keep, **extra)

    async def close(self) -> None:
        await self._direct.close()

    async def run(self, call: Any) -> Any:
        async with self._direct.acquire() as connection:
            return await call(connection)


async def _keep(connection: asyncpg.Connection) -> None:
    """No reset query, as service.db."""


@asynccontextmanager
async def serving(url: str, **settings: Any) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient]]:
    app = create_app(
        Settings(database_url=url, pool_min_size=10, pool_max_size=10, access_log=False, **settings)
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            yield app, client


async def timed(client: httpx.AsyncClient, call: Call, requests: int, concurrency: int) -> float:
    """CPU microseconds of this process (client and app) per request: unlike wall time, hardly moved by
    other processes on a shared machine, and what bounds a worker's throughput."""
    numbers = iter(range(requests))

    async def worker() -> None:
        for number in numbers:
            answer = await call(client, number)
            if answer.status_code >= 300:
                raise RuntimeError(f"{answer.status_code}: {answer.text[:200]}")

    started = time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return (time.process_time() - started) / requests * 1e6


async def pair(
    label: str, sides: list[tuple[str, Any, Call]], requests: int, rounds: int, concurrency: int = 1
) -> None:
    best: dict[str, float] = {}
    for number in range(rounds):
        for name, client, call in sides if number % 2 else reversed(sides):
            await timed(client, call, requests // 10, concurrency)  # warm
            cost = await timed(client, call, requests, concurrency)
            best[name] = min(best.get(name, cost), cost)
    (a_name, *_), (b_name, *_) = sides
    a, b = best[a_name], best[b_name]
    print(
        f"{label:<46} {a_name} {a:7.0f} µs  {b_name} {b:7.0f} µs  {b - a:+6.0f} µs ({b / a - 1:+.1%})",
        flush=True,
    )


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.costs", description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--relations", type=int, default=100_000, help="the data set (as python -m bench)")
    args = parser.parse_args(argv)
    url = os.environ.get("BENCH_DATABASE_URL")
    if not url:
        sys.exit("set BENCH_DATABASE_URL (a database `python -m bench` has seeded)")
    keys = await seed.seed(url, args.relations, log=lambda message: None)
    headers = {"Api-Key": keys[seed.MAIN_PROJECT]}
    ids = await _ids(url)

    async def by_id(client: httpx.AsyncClient, number: int) -> httpx.Response:
        return await client.get(f"/relation/{ids[number % len(ids)]}", headers=headers)

    async def create(client: httpx.AsyncClient, number: int) -> httpx.Response:
        body = {
            "parentId": str(uuid.uuid4()),
            "childId": str(uuid.uuid4()),
            "relationTypeAlias": "umbDocument",
        }
        return await client.post("/relation", json=body, headers=headers)

    async def no_revision() -> None:
        return None

    async with serving(url) as (_, current), serving(url) as (old_app, direct):
        old: service_db.Database = old_app.state.db
        await old.primary.close()
        old.primary = DirectPool(url, min_size=10, max_size=10, statement_timeout_ms=5000)
        await old.primary.open()
        await pair(
            "GET /relation/{id}: statement's connection",
            [("asyncpg", direct, by_id), ("databases", current, by_id)],
            args.requests,
            args.rounds,
        )
        async with serving(url) as (bare_app, without):
            bare_app.state.db.committed = no_revision
            for concurrency in (1, 32):
                await pair(
                    f"POST /relation at {concurrency}: Relations-Revision",
                    [("without", without, create), ("with", current, create)],
                    args.requests,
                    args.rounds,
                    concurrency,
                )
        async with serving(url, pgbouncer="transaction") as (_, uncached):
            await pair(
                "GET /relation/{id}: statement cache",
                [("cache", current, by_id), ("none", uncached, by_id)],
                args.requests,
                args.rounds,
            )
            for concurrency in (1, 32):
                await pair(
                    f"POST /relation at {concurrency}: statement cache",
                    [("cache", current, create), ("none", uncached, create)],
                    args.requests,
                    args.rounds,
                    concurrency,
                )


async def _ids(url: str) -> list[int]:
    connection = await asyncpg.connect(service_db.split_url(url)[0])
    try:
        rows = await connection.fetch(
            "SELECT id FROM relation WHERE project = $1 ORDER BY id LIMIT 1000", seed.MAIN_PROJECT
        )
    finally:
        await connection.close()
    return [row["id"] for row in rows]


if __name__ == "__main__":
    asyncio.run(main())
