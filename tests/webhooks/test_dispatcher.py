"""From a committed change to the receiver: the dispatcher follows the change log and queues a delivery
per subscribed webhook, with two API workers writing and two webhook processes (each with its
dispatcher and sender: service/webhooks/process.py) running, so that one dispatches at a time and every
event reaches the receiver exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import orjson
import pytest
from standardwebhooks import Webhook

from bench.receiver import Receiver
from service.app import create_app
from service.db import Database
from service.settings import Settings
from service.webhooks.process import WebhookProcess
from tests.conftest import Project
from tests.test_auth import serving
from tests.webhooks.helpers import eventually, relation


@pytest.fixture(scope="module")
async def workers(settings: Settings) -> AsyncIterator[list[httpx.AsyncClient]]:
    """Two app instances on the test database (two API workers), and two webhook processes."""
    fast = replace(
        settings,
        webhook_delivery=True,
        webhook_backoff_seconds=0.05,
        webhook_poll_seconds=0.5,
        pool_min_size=1,
        pool_max_size=4,
    )
    async with (
        serving(create_app(fast)) as first,
        serving(create_app(fast)) as second,
        WebhookProcess(fast).running(),
        WebhookProcess(fast).running(),
    ):
        yield [first, second]


async def test_a_created_relation_reaches_the_receiver_signed(
    workers: list[httpx.AsyncClient], project: Project
) -> None:
    api = workers[0]
    async with Receiver().running() as receiver:
        hook = await api.post("/webhook", json={"url": receiver.url}, headers=project.headers)
        secret = hook.json()["secret"]
        created = await relation(api, project, comment="first")
        (request,) = await receiver.wait_for(1)
    payload = Webhook(secret).verify(request.body.decode(), request.headers)
    assert payload["type"] == "relation.created"
    assert payload["data"]["_id"] == created["_id"] and payload["data"]["comment"] == "first"
    assert payload["timestamp"].endswith("Z")
    listed = await api.get(f"/webhook/{hook.json()['id']}/deliveries", headers=project.headers)
    (item,) = listed.json()["_embedded"]["deliveries"]
    assert item["eventId"] == request.headers["webhook-id"] and item["eventType"] == "relation.created"


async def test_only_subscribed_events_of_the_project_are_sent(
    workers: list[httpx.AsyncClient], project: Project, make_project: object
) -> None:
    api = workers[1]
    other: Project = await make_project()  # type: ignore[operator]
    async with Receiver().running() as receiver:
        body = {"url": receiver.url, "events": ["relation.deleted"]}
        assert (await api.post("/webhook", json=body, headers=project.headers)).status_code == 201
        mine = await relation(api, project)
        await relation(api, other)  # another project's change never reaches this webhook
        deleted = await api.delete(f"/relation/{mine['_id']}", headers=project.headers)
        assert deleted.status_code == 200
        (request,) = await receiver.wait_for(1)
        await relation(api, project)  # a later create is not subscribed either
        gone = await relation(api, project)
        await api.delete(f"/relation/{gone['_id']}", headers=project.headers)
        requests = await receiver.wait_for(2)
    assert [orjson.loads(request.body)["type"] for request in requests] == ["relation.deleted"] * 2
    assert orjson.loads(request.body)["data"]["_id"] == mine["_id"]


async def test_every_change_arrives_exactly_once_with_two_of_each(
    workers: list[httpx.AsyncClient], db: Database, project: Project
) -> None:
    async with Receiver().running() as receiver:
        hook = await workers[0].post("/webhook", json={"url": receiver.url}, headers=project.headers)
        assert hook.status_code == 201

        async def writer(client: httpx.AsyncClient, count: int) -> list[int]:
            return [int(str((await relation(client, project))["_id"])) for _ in range(count)]

        made = await asyncio.gather(*(writer(workers[n % 2], 15) for n in range(4)))
        expected = {relation_id for ids in made for relation_id in ids}
        await receiver.wait_for(len(expected))
        await eventually(lambda: _settled(db, project.alias))
        requests = list(receiver.received)
    ids = [request.headers["webhook-id"] for request in requests]
    assert len(ids) == len(set(ids)) == len(expected)
    sent = {orjson.loads(request.body)["data"]["_id"] for request in requests}
    assert sent == expected


async def _settled(db: Database, project: str) -> bool:
    """Every queued delivery of the project delivered."""
    left = await db.fetchval(
        "SELECT count(*) FROM webhook_delivery WHERE project = $1 AND state <> 'delivered'", project
    )
    return bool(left == 0)


async def test_a_disabled_webhook_is_not_queued(workers: list[httpx.AsyncClient], project: Project) -> None:
    api = workers[0]
    async with Receiver().running() as receiver:
        hook = (await api.post("/webhook", json={"url": receiver.url}, headers=project.headers)).json()
        await api.put(f"/webhook/{hook['id']}", json={"enabled": False}, headers=project.headers)
        await relation(api, project)
        probe = (await api.post("/webhook", json={"url": receiver.url}, headers=project.headers)).json()
        await relation(api, project)
        (request,) = await receiver.wait_for(1)  # the probe's delivery: the change after it was made
    listed = await api.get(f"/webhook/{hook['id']}/deliveries", headers=project.headers)
    assert listed.json()["_totalItems"] == 0
    probed = await api.get(f"/webhook/{probe['id']}/deliveries", headers=project.headers)
    assert probed.json()["_totalItems"] == 1
    assert request.headers["webhook-id"] == probed.json()["_embedded"]["deliveries"][0]["eventId"]
