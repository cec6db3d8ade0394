"""Shared steps of the webhook tests: create a relation or a webhook through the API, queue a delivery
directly."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import orjson

from service.db import Database
from tests.conftest import Project, guid


async def relation(client: httpx.AsyncClient, project: Project, **fields: str) -> dict[str, object]:
    body = {"parentId": guid(), "childId": guid(), "relationTypeAlias": "umbDocument", **fields}
    response = await client.post("/relation", json=body, headers=project.headers)
    assert response.status_code == 201, response.text
    created: dict[str, object] = response.json()
    return created


async def create_webhook(
    client: httpx.AsyncClient, project: Project, url: str, **fields: Any
) -> httpx.Response:
    response = await client.post("/webhook", json={"url": url, **fields}, headers=project.headers)
    assert response.status_code == 201, response.text
    return response


def event_body(event_id: str, event_type: str = "relation.created") -> str:
    data = {"_id": 1, "eventId": event_id}
    return orjson.dumps({"type": event_type, "timestamp": "2026-12-01T08:00:00Z", "data": data}).decode()


async def add_delivery(
    db: Database, project: str, webhook_id: uuid.UUID, *, event_id: str, event_type: str = "relation.created"
) -> int:
    """A delivery queued as the dispatcher queues one, due at once."""
    delivery_id: int = await db.fetchval(
        "INSERT INTO webhook_delivery (project, webhook_id, event_id, event_type, body)"
        " VALUES ($1, $2, $3, $4, $5) RETURNING id",
        project,
        webhook_id,
        event_id,
        event_type,
        event_body(event_id, event_type),
    )
    return delivery_id


async def eventually(check: Callable[[], Awaitable[bool]], *, bound: float = 30.0) -> None:
    """Until `check()` holds (the bound only keeps a broken test from hanging)."""
    async with asyncio.timeout(bound):
        while not await check():  # noqa: ASYNC110 - the state is in the database
            await asyncio.sleep(0.02)
