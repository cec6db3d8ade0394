"""The dispatcher while no webhook is enabled, in a database of its own (the session's other tests keep
webhooks enabled): a notification costs one read and no write, the cursor moves to the end at most
once per `poll_seconds`, and a webhook enabled meanwhile is queued every change committed after it was
enabled and none from before — also one enabled again after a pause."""

from __future__ import annotations

import uuid

import httpx

from service.db import Database
from service.projects.service import SCOPES, create_key
from service.webhooks.dispatcher import Dispatcher
from tests.cache.helpers import worker
from tests.conftest import guid

CURSOR = "SELECT position, updated_at FROM webhook_dispatch WHERE singleton"
QUEUED = "SELECT event_id FROM webhook_delivery WHERE webhook_id = $1 ORDER BY id"


async def create(http: httpx.AsyncClient, headers: dict[str, str]) -> str:
    body = {"parentId": guid(), "childId": guid(), "relationTypeAlias": "umbDocument"}
    response = await http.post("/relation", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return str(response.json()["_id"])


async def event_ids(db: Database, relation_id: str) -> list[str]:
    """The change-log event ids of a relation's changes, as the feed and the deliveries name them."""
    rows = await db.fetch("SELECT id FROM relation_change WHERE relation_id = $1", int(relation_id))
    return [str(row["id"]) for row in rows]


async def test_an_idle_dispatcher_writes_nothing_and_loses_nothing(own_database: str) -> None:
    async with worker(own_database, webhook_allow_private=True) as one:
        db: Database = one.app.state.db
        key = await create_key(db, project="idle", scopes=list(SCOPES))
        headers = {"Api-Key": key.key}
        dispatcher = Dispatcher(db, poll_seconds=3600, queued=lambda: None)

        await dispatcher.dispatch()  # the first dispatch ever: the cursor goes to the end
        start = await db.fetchrow(CURSOR)
        assert start is not None and start["position"] is not None
        await create(http=one.http, headers=headers)  # committed before any webhook is enabled
        await dispatcher.dispatch()
        assert await db.fetchrow(CURSOR) == start  # nothing enabled: no write within poll_seconds

        hook = await one.http.post("/webhook", json={"url": "http://127.0.0.1:9/hook"}, headers=headers)
        assert hook.status_code == 201, hook.text
        webhook_id = uuid.UUID(hook.json()["id"])
        after = await create(http=one.http, headers=headers)
        assert (await dispatcher.dispatch()).queued == 1
        queued = [row["event_id"] for row in await db.fetch(QUEUED, webhook_id)]
        assert queued == await event_ids(db, after)
        assert (await db.fetchrow(CURSOR))["position"] != start["position"]

        # Disabled, then enabled again: what was committed in between is not queued for it, even
        # when the dispatcher first reads it after the webhook is enabled again.
        path = f"/webhook/{webhook_id}"
        assert (await one.http.put(path, json={"enabled": False}, headers=headers)).status_code == 200
        await create(http=one.http, headers=headers)  # committed while it is disabled
        assert (await one.http.put(path, json={"enabled": True}, headers=headers)).status_code == 200
        resumed = await create(http=one.http, headers=headers)
        assert (await dispatcher.dispatch()).queued == 1
        queued = [row["event_id"] for row in await db.fetch(QUEUED, webhook_id)]
        assert queued == await event_ids(db, after) + await event_ids(db, resumed)
