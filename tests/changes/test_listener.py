"""The worker's LISTEN connection: woken by another writer's NOTIFY, and back after it is cut."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
from starlette.applications import Starlette

from service.changes.listener import APPLICATION_NAME, Listener
from service.schema import connect
from tests.conftest import Project

CHANGES = "/relation/changes"
INSERT = """
INSERT INTO relation (project, type_alias, parent, child, position)
VALUES ($1, 'umbDocument', $2, $3, 1) RETURNING id"""


async def insert_elsewhere(url: str, project: str) -> int:
    """A writer outside the service (its commit trigger notifies)."""
    connection = await connect(url)
    try:
        relation_id: int = await connection.fetchval(INSERT, project, uuid.uuid4(), uuid.uuid4())
        return relation_id
    finally:
        await connection.close()


async def long_poll_sees(client: httpx.AsyncClient, project: Project, url: str) -> None:
    cursor = (await client.get(CHANGES, params={"since": "now"}, headers=project.headers)).json()["cursor"]
    waiting = asyncio.create_task(
        client.get(CHANGES, params={"since": cursor, "wait": "20"}, headers=project.headers)
    )
    await asyncio.sleep(0.2)
    assert not waiting.done()
    relation_id = await insert_elsewhere(url, project.alias)
    started = time.monotonic()
    response = await asyncio.wait_for(waiting, 25)
    assert time.monotonic() - started < 15, "woken by the timeout, not by the NOTIFY"
    assert [change["data"]["_id"] for change in response.json()["_embedded"]["changes"]] == [relation_id]


async def test_a_write_outside_the_service_wakes_a_long_poll(
    client: httpx.AsyncClient, project: Project, database_url: str
) -> None:
    await long_poll_sees(client, project, database_url)


async def test_the_listener_reconnects_after_its_connection_is_cut(
    client: httpx.AsyncClient, project: Project, database_url: str, app: Starlette
) -> None:
    listener: Listener = app.state.changes_listener
    admin = await connect(database_url)
    sessions = (
        "SELECT array_agg(pid) FROM pg_stat_activity WHERE datname = current_database() "
        "AND application_name = $1"
    )
    try:
        before = set(await admin.fetchval(sessions, APPLICATION_NAME) or [])
        assert before, "the listener is not connected"
        await admin.execute("SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid", list(before))
        deadline = time.monotonic() + 10
        while not (
            set(await admin.fetchval(sessions, APPLICATION_NAME) or []) - before and listener.listening
        ):
            assert time.monotonic() < deadline, "the listener did not reconnect"
            await asyncio.sleep(0.1)
    finally:
        await admin.close()
    await long_poll_sees(client, project, database_url)
