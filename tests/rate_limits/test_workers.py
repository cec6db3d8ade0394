"""SPEC §13 across processes: `relations serve --workers 2` hammered with one key holds the key's budget
within ±20 % — the workers share it through PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx

from service.db import Database
from service.projects.service import create_key
from service.rate_limits.policy import RatePolicy
from tests.processes import running_service

# Low enough that a loaded CI machine still offers several times the budget.
POLICY = RatePolicy(20, 20)
SECONDS = 4.0
CLIENTS = 16


async def test_two_workers_hold_one_budget(database_url: str, db: Database, tmp_path: Path) -> None:
    key = (await create_key(db, project="rate-workers", scopes=["relations:read"], rate_limit=POLICY)).key
    async with running_service(database_url, tmp_path, "--workers", "2") as service:
        assert len(service.children()) == 2
        counts = {200: 0, 429: 0}
        # Each client its own connection, so the kernel spreads them over both workers.
        clients = [
            httpx.AsyncClient(base_url=service.base_url, headers={"Api-Key": key}) for _ in range(CLIENTS)
        ]
        started = time.monotonic()

        async def hammer(http: httpx.AsyncClient) -> None:
            while time.monotonic() - started < SECONDS:
                answer = await http.get("/relation/type")
                counts[answer.status_code] = counts.get(answer.status_code, 0) + 1

        try:
            await asyncio.gather(*(hammer(http) for http in clients))
        finally:
            await asyncio.gather(*(http.aclose() for http in clients))
        elapsed = time.monotonic() - started
    budget = POLICY.burst + POLICY.rate * elapsed
    assert set(counts) == {200, 429}, counts
    assert counts[429] > counts[200] / 2, counts  # offered well over the budget
    assert 0.8 * budget <= counts[200] <= 1.2 * budget, (counts, budget)
