"""The webhook process as a real process (service/webhooks/process.py): `relations webhooks` delivers
while the API serves elsewhere, hands its claims back on SIGTERM, two of them never send one delivery
twice, and `relations serve` starts one beside its workers and stops it with itself."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import orjson
import pytest

from bench.receiver import Received, Receiver
from service.changes import feed
from service.db import Database
from service.webhooks.dispatcher import encode_position
from tests.conftest import TEST_SECRET_KEY, Project, guid
from tests.processes import running_service, spawn, stopped_cleanly
from tests.webhooks.helpers import add_delivery, create_webhook, eventually


@pytest.fixture(autouse=True)
async def own_queue(db: Database) -> None:
    """The processes here claim from the whole queue: leave nothing of other tests in it. And a
    dispatcher that has never run starts at the end of the log as it finds it then, which may be after
    a test's first change (the process takes a moment to start): give it a place now."""
    await db.execute("DELETE FROM webhook_delivery WHERE state = 'pending'")
    end = encode_position(await feed.end(db))
    await db.execute("UPDATE webhook_dispatch SET position = coalesce(position, $1)", end)


def environment(database_url: str, **more: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "RELATIONS_SECRET_KEY": TEST_SECRET_KEY,
        "RELATIONS_WEBHOOK_ALLOW_PRIVATE": "true",
        "RELATIONS_WEBHOOK_POLL_SECONDS": "0.2",
        "RELATIONS_LOG_LEVEL": "info",
        **more,
    }


@asynccontextmanager
async def webhook_process(
    database_url: str, log: Path, *args: str, **env: str
) -> AsyncIterator[subprocess.Popen[bytes]]:
    """`relations webhooks`; SIGTERM at the end if it still runs."""
    command = [sys.executable, "-m", "service.cli", "webhooks", *args]
    process = spawn(command, environment(database_url, **env), log)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)


async def test_relations_webhooks_delivers_what_the_api_commits(
    client: httpx.AsyncClient, project: Project, database_url: str, tmp_path: Path
) -> None:
    async with (
        Receiver().running() as receiver,
        webhook_process(database_url, tmp_path / "hooks.log") as hooks,
    ):
        await create_webhook(client, project, receiver.url)
        body = {"parentId": guid(), "childId": guid(), "relationTypeAlias": "umbDocument"}
        created = (await client.post("/relation", json=body, headers=project.headers)).json()
        (request,) = await receiver.wait_for(1)
        hooks.send_signal(signal.SIGTERM)
        assert hooks.wait(timeout=30) == 0, (tmp_path / "hooks.log").read_text()
    assert orjson.loads(request.body)["data"]["_id"] == created["_id"]


async def test_sigterm_hands_the_attempt_in_flight_back(
    client: httpx.AsyncClient, db: Database, project: Project, database_url: str, tmp_path: Path
) -> None:
    release = asyncio.Event()

    async def hang(request: Received) -> int:
        await release.wait()
        return 200

    async with Receiver(hang).running() as receiver:
        hook = (await create_webhook(client, project, receiver.url)).json()
        delivery_id = await add_delivery(db, project.alias, uuid.UUID(hook["id"]), event_id="evt-1")
        async with webhook_process(database_url, tmp_path / "hooks.log") as hooks:
            await receiver.wait_for(1)
            hooks.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(hooks.wait, 30) == 0
        release.set()
    row = await db.fetchrow("SELECT state, claim, attempts FROM webhook_delivery WHERE id = $1", delivery_id)
    assert (row["state"], row["claim"], row["attempts"]) == ("pending", None, 0)


async def test_two_processes_send_each_delivery_once(
    client: httpx.AsyncClient, db: Database, project: Project, database_url: str, tmp_path: Path
) -> None:
    in_flight: set[str] = set()
    overlaps: list[str] = []

    async def answer(request: Received) -> int:
        event = request.headers["webhook-id"]
        if event in in_flight:
            overlaps.append(event)
        in_flight.add(event)
        await asyncio.sleep(0.01)
        in_flight.discard(event)
        return 200

    async with Receiver(answer).running() as receiver:
        hook = uuid.UUID((await create_webhook(client, project, receiver.url)).json()["id"])
        async with (
            webhook_process(database_url, tmp_path / "one.log", RELATIONS_WEBHOOK_CONCURRENCY="4"),
            webhook_process(database_url, tmp_path / "two.log", RELATIONS_WEBHOOK_CONCURRENCY="4"),
        ):
            for number in range(60):
                await add_delivery(db, project.alias, hook, event_id=f"evt-{number}")
            await db.execute("SELECT pg_notify('webhook_deliveries_due', '')")
            await receiver.wait_for(60)
            await eventually(lambda: _all_delivered(db, hook))
        ids = [request.headers["webhook-id"] for request in receiver.received]
    assert not overlaps
    assert sorted(ids) == sorted(f"evt-{number}" for number in range(60))


async def _all_delivered(db: Database, hook: uuid.UUID) -> bool:
    left = await db.fetchval(
        "SELECT count(*) FROM webhook_delivery WHERE webhook_id = $1 AND state <> 'delivered'", hook
    )
    return bool(left == 0)


async def test_without_a_secret_key_it_refuses_to_start(database_url: str, tmp_path: Path) -> None:
    log = tmp_path / "hooks.log"
    async with webhook_process(database_url, log, RELATIONS_SECRET_KEY="") as hooks:
        assert await asyncio.to_thread(hooks.wait, 30) == 2
    assert "RELATIONS_SECRET_KEY" in log.read_text()


async def test_it_stops_when_the_server_that_started_it_is_gone(database_url: str, tmp_path: Path) -> None:
    """`--parent` names the `relations serve` that started it; a parent that is not there stops it."""
    log = tmp_path / "hooks.log"
    async with webhook_process(database_url, log, "--parent", "1") as hooks:
        assert await asyncio.to_thread(hooks.wait, 30) == 0
    assert "has gone" in log.read_text()


def webhook_children(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [
        int(child)
        for child in children
        if b"webhooks" in Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
    ]


def running(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


async def test_serve_starts_one_webhook_process_and_stops_it(
    project: Project, database_url: str, tmp_path: Path
) -> None:
    env = {key: value for key, value in environment(database_url).items() if key.startswith("RELATIONS_")}
    async with (
        Receiver().running() as receiver,
        running_service(database_url, tmp_path, "--workers", "2", env=env) as service,
    ):
        (child,) = webhook_children(service.process.pid)
        async with httpx.AsyncClient(base_url=service.base_url) as http:
            await create_webhook(http, project, receiver.url)
            body = {"parentId": guid(), "childId": guid(), "relationTypeAlias": "umbDocument"}
            assert (await http.post("/relation", json=body, headers=project.headers)).status_code == 201
            (request,) = await receiver.wait_for(1)
        service.process.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(stopped_cleanly, service.process)
    assert orjson.loads(request.body)["type"] == "relation.created"
    assert not running(child)


async def test_serve_starts_none_when_delivery_is_off(database_url: str, tmp_path: Path) -> None:
    env = {"RELATIONS_SECRET_KEY": TEST_SECRET_KEY, "RELATIONS_WEBHOOK_DELIVERY": "false"}
    async with running_service(database_url, tmp_path, env=env) as service:
        assert webhook_children(service.process.pid) == []
