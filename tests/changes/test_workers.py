"""Several workers: a long-poll on one wakes at a write served by another (the writer's worker sends
the NOTIFY after its commit)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx

from tests.conftest import Project, guid
from tests.processes import running_service

ROUNDS = 6


async def test_a_long_poll_wakes_at_a_write_on_any_worker(
    database_url: str, project: Project, tmp_path: Path
) -> None:
    async with running_service(database_url, tmp_path, "--workers", "2") as service:
        for _ in range(ROUNDS):
            # New connections each round, so the kernel spreads them over both workers.
            async with (
                httpx.AsyncClient(base_url=service.base_url, headers=project.headers, timeout=30) as poller,
                httpx.AsyncClient(base_url=service.base_url, headers=project.headers, timeout=30) as writer,
            ):
                cursor = (await poller.get("/relation/changes", params={"since": "now"})).json()["cursor"]
                waiting = asyncio.create_task(
                    poller.get("/relation/changes", params={"since": cursor, "wait": "20"})
                )
                await asyncio.sleep(0.2)
                body = {"parentId": guid(), "childId": guid(), "relationTypeAlias": "umbDocument"}
                created = (await writer.post("/relation", json=body)).json()
                started = time.monotonic()
                page = (await waiting).json()
                assert time.monotonic() - started < 10, "woken by the timeout, not by the write"
                assert [c["data"]["_id"] for c in page["_embedded"]["changes"]] == [created["_id"]]
