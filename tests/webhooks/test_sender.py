"""Sending deliveries to a receiver on 127.0.0.1 (SPEC §10): signatures that the `standardwebhooks`
library verifies, retries with the same webhook-id, 410, the last attempt, restarts, claims across two
workers, rotation, timeouts and a slow receiver next to a fast one. Deliveries are queued directly, as
the dispatcher queues them (tests/webhooks/test_dispatcher.py covers the change log's side)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from bench.receiver import Received, Receiver
from service.db import Database
from service.settings import Settings
from service.webhooks.sender import BACKOFF_CAP, Sender, retry_delay
from tests.conftest import Project
from tests.webhooks.helpers import add_delivery, create_webhook, eventually


@pytest.fixture(autouse=True)
async def own_queue(db: Database) -> None:
    """The senders here claim from the whole queue: leave nothing of other tests in it."""
    await db.execute("DELETE FROM webhook_delivery WHERE state = 'pending'")


@pytest.fixture
def fast(settings: Settings) -> Settings:
    return replace(
        settings,
        webhook_delivery=True,
        webhook_backoff_seconds=0.05,
        webhook_poll_seconds=0.2,
        webhook_timeout_seconds=5,
        webhook_concurrency=3,
    )


@asynccontextmanager
async def sending(db: Database, settings: Settings) -> AsyncIterator[Sender]:
    sender = Sender(db, settings)
    task = asyncio.create_task(sender.run())
    try:
        yield sender
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await sender.close()


async def delivery(db: Database, delivery_id: int) -> dict[str, Any]:
    return dict(await db.fetchrow("SELECT * FROM webhook_delivery WHERE id = $1", delivery_id))


async def hook_with_delivery(
    client: httpx.AsyncClient, db: Database, project: Project, url: str, *, event_id: str = "evt-1"
) -> tuple[dict[str, Any], int]:
    created = (await create_webhook(client, project, url)).json()
    return created, await add_delivery(db, project.alias, uuid.UUID(created["id"]), event_id=event_id)


def verified(secret: str, request: Received) -> Any:
    return Webhook(secret).verify(request.body.decode(), request.headers)


async def test_a_delivery_is_signed_so_standardwebhooks_verifies_it(
    client: httpx.AsyncClient, db: Database, project: Project, fast: Settings
) -> None:
    async with Receiver().running() as receiver:
        created, delivery_id = await hook_with_delivery(client, db, project, receiver.url, event_id="evt-42")
        async with sending(db, fast):
            (request,) = await receiver.wait_for(1)
            await eventually(lambda: _state_is(db, delivery_id, "delivered"))
    payload = verified(created["secret"], request)
    assert set(payload) == {"type", "timestamp", "data"}
    assert payload["type"] == "relation.created"
    assert request.headers["webhook-id"] == "evt-42"
    assert request.headers["content-type"] == "application/json"
    row = await delivery(db, delivery_id)
    assert (row["attempts"], row["last_status"], row["claim"]) == (1, 200, None)
    assert row["delivered_at"] is not None and row["next_attempt_at"] is None


async def _state_is(db: Database, delivery_id: int, state: str) -> bool:
    return bool(
        await db.fetchval("SELECT state = $2 FROM webhook_delivery WHERE id = $1", delivery_id, state)
    )


def answers(*statuses: int) -> Callable[[Received], Awaitable[int]]:
    """Answer these statuses in turn, then 200."""
    queue = list(statuses)

    async def answer(request: Received) -> int:
        return queue.pop(0) if queue else 200

    return answer


async def test_500_then_200_resends_with_the_same_webhook_id(
    client: httpx.AsyncClient, db: Database, project: Project, fast: Settings
) -> None:
    async with Receiver(answers(500, 503)).running() as receiver:
        created, delivery_id = await hook_with_delivery(client, db, project, receiver.url)
        async with sending(db, fast):
            requests = await receiver.wait_for(3)
            await eventually(lambda: _state_is(db, delivery_id, "delivered"))
    assert [request.headers["webhook-id"] for request in requests] == ["evt-1"] * 3
    assert len({request.body for request in requests}) == 1
    for request in requests:
        verified(created["secret"], request)
    row = await delivery(db, delivery_id)
    assert (row["attempts"], row["last_status"]) == (3, 200)


async def test_the_delivery_log_shows_the_failed_attempt(
    client: httpx.AsyncClient, db: Database, project: Project, fast: Settings
) -> None:
    slow = replace(fast, webhook_backoff_seconds=3600)
    async with Receiver(answers(500)).running() as receiver:
        created, delivery_id = await hook_with_delivery(client, db, project, receiver.url)
        async with sending(db, slow):
            await receiver.wait_for(1)
            await eventually(lambda: _attempts_are(db, delivery_id, 1, settled=True))
    listed = await client.get(created["_links"]["deliveries"]["href"], headers=project.headers)
    (item,) = listed.json()["_embedded"]["deliveries"]
    assert (item["state"], item["attempts"], item["lastStatus"]) == ("pending", 1, 500)
    assert item["lastError"] == "the receiver answered 500"
    assert item["nextAttemptAt"] is not None and item["deliveredAt"] is None


async def _attempts_are(db: Database, delivery_id: int, attempts: int, *, settled: bool = False) -> bool:
    row = await db.fetchrow("SELECT attempts, claim FROM webhook_delivery WHERE id = $1", delivery_id)
    return bool(row["attempts"] == attempts and (row["claim"] is None or not settled))


async def test_410_fails_the_delivery_and_disables_the_webhook(
    client: httpx.AsyncClient, db: Database, project: Project, fast: Settings
) -> None:
    async with Receiver(answers(410)).running() as receiver:
        created, delivery_id = await hook_with_delivery(client, db, project, receiver.url)
        second = await add_delivery(db, project.alias, uuid.UUID(created["id"]), event_id="evt-2")
        async with sending(db, replace(fast, webhook_concurrency=1)):
            await eventually(lambda: _state_is(db, delivery_id, "failed"))
            await asyncio.sleep(0)  # the second delivery is paused, not sent
    assert len(receiver.received) == 1
    hook = (await client.get(created["_links"]["self"]["href"], headers=project.headers)).json()
    assert hook["enabled"] is False and hook["disabledReason"] == "the receiver answered 410 Gone"
    row = await delivery(db, delivery_id)
    assert (row["last_status"], row["next_attempt_at"]) == (410, None)
    paused = await delivery(db, second)
    assert (paused["state"], paused["next_attempt_at"]) == ("pending", None)


async def test_the_last_failed_attempt_fails_the_delivery(
    client: httpx.AsyncClient, db: Database, project: Project, fast: Settings
) -> None:
    async with Receiver(answers(*[500] * 10)).running() as receiver:
        _, delivery_id = await hook_with_delivery(client, db, project, receiver.url)
        async with sending(db, replace(fast, webhook_max_attempts=3)):
            await eventually(lambda: _state_is(db, delivery_id, "failed"))
    assert len(receiver.received) == 3
    row = await delivery(db, delivery_id)
    assert (row["attempts"], row["last_status"], row["next_attempt_at"]) == (3, 500, None)


async def test_a_restart_during_the_backoff_loses_no_delivery(
    client: httpx.AsyncClient, db: Database, project: Project, fast: Settings
) -> None:
    async with Receiver(answers(500)).running() as receiver:
        created, delivery_id = await hook_with_delivery(client, db, project, receiver.url)
        # The first worker fails once and stops while the retry is minutes away.
        async with sending(db, replace(fast, webhook_backoff_seconds=600)):
            await receiver.wait_for(1)
            await eventually(lambda: _attempts_are(db, delivery_id, 1, settled=True))
        assert (await delivery(db, delivery_id))["state"] == "pending"
        # As if the backoff had passed while nothing ran; a new worker sends it.
        await db.execute("UPDATE webhook_delivery SET next_attempt_at = now() WHERE id = $1", delivery_id)
        async with sending(db, fast):
            requests = await receiver.wait_for(2)
            await eventually(lambda: _state_is(db, delivery_id, "delivered"))
    assert requests[0].headers["webhook-id"] == requests[1].headers["webhook-id"] == "evt-1"
    verified(created["secret"], requests[1])


def hanging() -> tuple[asyncio.Event, Callable[[Received], Awaitable[int]]]:
    release = asyncio.Event()

    async def answer(request: Received) -> int:
        await release.wait()
        return 200

    return release, answer


async def test_stopping_mid_delivery_hands_the_claim_back(
    client: httpx.AsyncClient, db: Database, project: Project, fast: Settings
) -> None:
    release, answer = hanging()
    async with Receiver(answer).running() as receiver:
        _, delivery_id = await hook_with_delivery(client, db, project, receiver.url)
        async with sending(db, fast):
            await receiver.wait_for(1)
        row = await delivery(db, delivery_id)
        assert (row["state"], row["claim"], row["attempts"]) == ("pending", None, 0)
        release.set()
        async with sending(db, fast):
            await receiver.wait_for(2)
            await eventually(lambda: _state_is(db, delivery_id, "delivered"))


async def test_a_claim_whose_worker_died_is_taken_over_when_its_lease_ends(
    client: httpx.AsyncClient, db: Database, project: Project, fast: Settings
) -> None:
    async with Receiver().running() as receiver:
        _, delivery_id = await hook_with_delivery(client, db, project, receiver.url)
        # A worker claimed it and was killed: its lease (next_attempt_at) has just run out.
        await db.execute(
            "UPDATE webhook_delivery SET claim = gen_random_uuid(), attempts = 1, next_attempt_at = now()"
            " WHERE id = $1",
            delivery_id,
        )
        async with sending(db, fast):
            await receiver.wait_for(1)
            await eventually(lambda: _state_is(db, delivery_id, "delivered"))
    assert (await delivery(db, delivery_id))["attempts"] == 2


async def test_two_workers_never_send_one_delivery_twice_at_once(
    client: httpx.AsyncClient, db: Database, database_url: str, project: Project, fast: Settings
) -> None:
    in_flight: dict[str, int] = {}
    overlaps: list[str] = []
    peak = 0

    async def answer(request: Received) -> int:
        nonlocal peak
        event = request.headers["webhook-id"]
        in_flight[event] = in_flight.get(event, 0) + 1
        if in_flight[event] > 1:
            overlaps.append(event)
        peak = max(peak, sum(in_flight.values()))
        await asyncio.sleep(0.02)
        in_flight[event] -= 1
        return 200

    other = Database(database_url, min_size=1, max_size=4)
    await other.connect()
    try:
        async with Receiver(answer).running() as receiver:
            created = (await create_webhook(client, project, receiver.url)).json()
            hook_id = uuid.UUID(created["id"])
            events = [f"evt-{n}" for n in range(40)]
            for event in events:
                await add_delivery(db, project.alias, hook_id, event_id=event)
            async with sending(db, fast), sending(other, fast):
                await receiver.wait_for(len(events))
                await eventually(lambda: _all_delivered(db, project.alias))
    finally:
        await other.disconnect()
    assert overlaps == []
    assert sorted(request.headers["webhook-id"] for request in receiver.received) == sorted(events)
    assert peak <= fast.webhook_concurrency


async def _all_delivered(db: Database, project: str) -> bool:
    left = await db.fetchval(
        "SELECT count(*) FROM webhook_delivery WHERE project = $1 AND state <> 'delivered'", project
    )
    return bool(left == 0)


async def test_rotation_signs_with_both_secrets_for_a_day(
    client: httpx.AsyncClient, db: Database, project: Project, fast: Settings
) -> None:
    async with Receiver().running() as receiver:
        created = (await create_webhook(client, project, receiver.url)).json()
        hook_id = uuid.UUID(created["id"])
        rotated = await client.put(
            created["_links"]["self"]["href"], json={"rotateSecret": True}, headers=project.headers
        )
        new_secret = rotated.json()["secret"]
        await add_delivery(db, project.alias, hook_id, event_id="during")
        async with sending(db, fast):
            (during,) = await receiver.wait_for(1)
            # A day later the old secret no longer signs.
            await db.execute(
                "UPDATE webhook SET previous_secret_until = now() - interval '1 second' WHERE id = $1",
                hook_id,
            )
            await add_delivery(db, project.alias, hook_id, event_id="after")
            sender_requests = await receiver.wait_for(2)
    after = sender_requests[1]
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    verified(created["secret"], during)
    verified(new_secret, during)
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    verified(new_secret, after)
    with pytest.raises(Exception, match="No matching signature"):
        verified(created["secret"], after)


async def test_a_receiver_that_does_not_answer_in_time_is_retried(
    client: httpx.AsyncClient, db: Database, project: Project, fast: Settings
) -> None:
    release, answer = hanging()
    async with Receiver(answer).running() as receiver:
        _, delivery_id = await hook_with_delivery(client, db, project, receiver.url)
        quick = replace(fast, webhook_timeout_seconds=0.3, webhook_backoff_seconds=3600)
        async with sending(db, quick):
            await eventually(lambda: _attempts_are(db, delivery_id, 1, settled=True))
        release.set()
    row = await delivery(db, delivery_id)
    assert (row["state"], row["last_status"], row["last_error"]) == (
        "pending",
        None,
        "no answer within 0.3 s",
    )


async def test_a_refused_connection_is_retried(
    client: httpx.AsyncClient, db: Database, project: Project, fast: Settings
) -> None:
    async with Receiver().running() as receiver:
        dead_url = receiver.url
    _, delivery_id = await hook_with_delivery(client, db, project, dead_url)
    async with sending(db, replace(fast, webhook_backoff_seconds=3600)):
        await eventually(lambda: _attempts_are(db, delivery_id, 1, settled=True))
    row = await delivery(db, delivery_id)
    assert row["state"] == "pending" and row["last_error"].startswith("ConnectError")


async def test_a_slow_receiver_does_not_hold_up_another_webhook(
    client: httpx.AsyncClient, db: Database, project: Project, fast: Settings
) -> None:
    release, answer = hanging()
    async with Receiver(answer).running() as slow, Receiver().running() as quick:
        slow_hook = uuid.UUID((await create_webhook(client, project, slow.url)).json()["id"])
        for n in range(10):
            await add_delivery(db, project.alias, slow_hook, event_id=f"slow-{n}")
        quick_hook = uuid.UUID((await create_webhook(client, project, quick.url)).json()["id"])
        for n in range(5):
            await add_delivery(db, project.alias, quick_hook, event_id=f"quick-{n}")
        async with sending(db, fast):
            await quick.wait_for(5)
            await eventually(lambda: _delivered_count(db, quick_hook, 5))
            # The slow receiver holds exactly its slots, all still unanswered.
            assert len(slow.received) == fast.webhook_concurrency
            release.set()
            await slow.wait_for(10)


async def _delivered_count(db: Database, hook_id: uuid.UUID, count: int) -> bool:
    found = await db.fetchval(
        "SELECT count(*) FROM webhook_delivery WHERE webhook_id = $1 AND state = 'delivered'", hook_id
    )
    return bool(found == count)


async def test_a_manual_retry_sends_a_failed_delivery_again(
    client: httpx.AsyncClient, db: Database, project: Project, fast: Settings
) -> None:
    async with Receiver(answers(500)).running() as receiver:
        created, delivery_id = await hook_with_delivery(client, db, project, receiver.url)
        async with sending(db, replace(fast, webhook_max_attempts=1)):
            await eventually(lambda: _state_is(db, delivery_id, "failed"))
            retry = f"/webhook/{created['id']}/deliveries/{delivery_id}/retry"
            assert (await client.post(retry, headers=project.headers)).status_code == 202
            await eventually(lambda: _state_is(db, delivery_id, "delivered"))
    assert [request.headers["webhook-id"] for request in receiver.received] == ["evt-1", "evt-1"]


def test_the_retry_schedule_spans_more_than_a_day() -> None:
    base = Settings().webhook_backoff_seconds
    attempts = Settings().webhook_max_attempts
    shortest = [retry_delay(n, base=base, jitter=0) for n in range(1, attempts)]
    assert shortest[:4] == [5, 20, 80, 320]
    assert max(shortest) == base * BACKOFF_CAP == 6 * 3600
    assert sum(shortest) >= 24 * 3600
    assert retry_delay(1, base=base, jitter=1) <= 10  # the first retry within 10 s, jitter included
    spread = {retry_delay(3, base=base) for _ in range(20)}
    assert len(spread) > 1 and all(80 <= delay <= 96 for delay in spread)


async def test_a_private_address_is_refused_at_delivery_without_the_setting(
    client: httpx.AsyncClient, db: Database, project: Project, fast: Settings
) -> None:
    public_only = replace(fast, webhook_allow_private=False, webhook_backoff_seconds=3600)
    async with Receiver().running() as receiver:
        _, delivery_id = await hook_with_delivery(client, db, project, receiver.url)
        async with sending(db, public_only):
            await eventually(lambda: _attempts_are(db, delivery_id, 1, settled=True))
    assert receiver.received == []
    row = await delivery(db, delivery_id)
    assert row["state"] == "pending"
    assert row["last_error"] == "refused: 127.0.0.1 resolves to 127.0.0.1, which is not a public address"
