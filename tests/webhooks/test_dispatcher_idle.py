"""The dispatcher while no webhook is enabled, in a database of its own (the session's other tests keep
webhooks enabled): a notification costs one read and no write, the cursor moves to the end at most
once per `poll_seconds`, and a webhook enabled meanwhile is queued every change committed after it was
enabled and none from before — also one enabled again after a pause."""

from __future__ import annotations

import uuid

from service.db import Database
from service.webhooks.dispatcher import Dispatcher
from tests.cache.helpers import worker
from tests.conftest import new_project
from tests.webhooks.helpers import create_webhook, relation

CURSOR = "SELECT position, updated_at FROM webhook_dispatch WHERE singleton"
QUEUED = "SELECT event_id FROM webhook_delivery WHERE webhook_id = $1 ORDER BY id"


async def event_ids(db: Database, created: dict[str, object]) -> list[str]:
    """The change-log event ids of a relation's changes, as the feed and the deliveries name them."""
    rows = await db.fetch("SELECT id FROM relation_change WHERE relation_id = $1", created["_id"])
    return [str(row["id"]) for row in rows]


async def test_an_idle_dispatcher_writes_nothing_and_loses_nothing(own_database: str) -> None:
    async with worker(own_database, webhook_allow_private=True) as one:
        db: Database = one.app.state.db
        project = await new_project(db, "idle")
        headers = project.headers
        dispatcher = Dispatcher(db, poll_seconds=3600, queued=lambda: None)

        await dispatcher.dispatch()  # the first dispatch ever: the cursor goes to the end
        start = await db.fetchrow(CURSOR)
        assert start is not None and start["position"] is not None
        await relation(one.http, project)  # committed before any webhook is enabled
        await dispatcher.dispatch()
        assert await db.fetchrow(CURSOR) == start  # nothing enabled: no write within poll_seconds

        hook = await create_webhook(one.http, project, "http://127.0.0.1:9/hook")
        webhook_id = uuid.UUID(hook.json()["id"])
        after = await relation(one.http, project)
        assert (await dispatcher.dispatch()).queued == 1
        queued = [row["event_id"] for row in await db.fetch(QUEUED, webhook_id)]
        assert queued == await event_ids(db, after)
        assert (await db.fetchrow(CURSOR))["position"] != start["position"]

        # Disabled, then enabled again: what was committed in between is not queued for it, even
        # when the dispatcher first reads it after the webhook is enabled again.
        path = f"/webhook/{webhook_id}"
        assert (await one.http.put(path, json={"enabled": False}, headers=headers)).status_code == 200
        await relation(one.http, project)  # committed while it is disabled
        assert (await one.http.put(path, json={"enabled": True}, headers=headers)).status_code == 200
        resumed = await relation(one.http, project)
        assert (await dispatcher.dispatch()).queued == 1
        queued = [row["event_id"] for row in await db.fetch(QUEUED, webhook_id)]
        assert queued == await event_ids(db, after) + await event_ids(db, resumed)
