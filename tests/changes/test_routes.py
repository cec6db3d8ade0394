"""GET /relation/changes: the page, its parameters and errors, long-poll, SSE, retention."""

from __future__ import annotations

import asyncio
import datetime
import time
from typing import Any

import httpx
import pytest

from service import messages
from service.changes import retention
from service.db import Database
from tests.conftest import Project, error_of, guid

CHANGES = "/relation/changes"


async def create(client: httpx.AsyncClient, project: Project, **extra: Any) -> Any:
    body = {"parentId": guid(), "childId": guid(), "relationTypeAlias": "umbDocument", **extra}
    response = await client.post("/relation", json=body, headers=project.headers)
    assert response.status_code == 201, response.text
    return response.json()


async def now_cursor(client: httpx.AsyncClient, project: Project) -> str:
    response = await client.get(CHANGES, params={"since": "now"}, headers=project.headers)
    assert response.status_code == 200, response.text
    assert response.json()["_embedded"] == {"changes": []}
    cursor: str = response.json()["cursor"]
    return cursor


async def test_a_page_has_the_pinned_shape(client: httpx.AsyncClient, project: Project) -> None:
    response = await client.get(CHANGES, params={"limit": "4"}, headers=project.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"cursor", "_links", "_embedded"}
    assert [change["type"] for change in body["_embedded"]["changes"]] == ["relationType.created"] * 4
    assert body["_links"]["self"]["href"] == "http://testserver/relation/changes?limit=4"
    assert (
        body["_links"]["next"]["href"] == f"http://testserver/relation/changes?limit=4&since={body['cursor']}"
    )
    rest = await client.get(body["_links"]["next"]["href"], headers=project.headers)
    assert [change["type"] for change in rest.json()["_embedded"]["changes"]] == ["relationType.created"] * 2
    again = await client.get(CHANGES, params={"since": rest.json()["cursor"]}, headers=project.headers)
    assert again.json()["_embedded"]["changes"] == []
    assert again.json()["cursor"] == rest.json()["cursor"]


async def test_since_now_starts_at_the_end(client: httpx.AsyncClient, project: Project) -> None:
    cursor = await now_cursor(client, project)
    created = await create(client, project)
    response = await client.get(CHANGES, params={"since": cursor}, headers=project.headers)
    changes = response.json()["_embedded"]["changes"]
    assert [(change["type"], change["data"]["_id"]) for change in changes] == [
        ("relation.created", created["_id"])
    ]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"since": "nonsense"}, messages.CHANGES_CURSOR_INVALID),
        ({"since": "AAAA"}, messages.CHANGES_CURSOR_INVALID),
        ({"limit": "0"}, messages.CHANGES_LIMIT_INVALID),
        ({"limit": "1001"}, messages.CHANGES_LIMIT_INVALID),
        ({"limit": "ten"}, messages.CHANGES_LIMIT_INVALID),
        ({"wait": "31"}, messages.CHANGES_WAIT_INVALID),
        ({"wait": "-1"}, messages.CHANGES_WAIT_INVALID),
        ({"wait": "soon"}, messages.CHANGES_WAIT_INVALID),
    ],
)
async def test_bad_parameters_are_400(
    client: httpx.AsyncClient, project: Project, params: dict[str, str], message: str
) -> None:
    response = await client.get(CHANGES, params=params, headers=project.headers)
    assert response.status_code == 400
    assert error_of(response) == {"code": "BadRequest", "message": message}


async def test_a_cursor_of_another_project_is_400(
    client: httpx.AsyncClient, project: Project, make_project: Any
) -> None:
    other = await make_project()
    cursor = await now_cursor(client, other)
    response = await client.get(CHANGES, params={"since": cursor}, headers=project.headers)
    assert response.status_code == 400


async def test_changes_is_not_an_alias(client: httpx.AsyncClient, project: Project) -> None:
    body = {"alias": "changes", "name": "Changes"}
    response = await client.post("/relation/type", json=body, headers=project.headers)
    assert response.status_code == 422


async def test_the_feed_needs_read_scope(client: httpx.AsyncClient, project: Project) -> None:
    key = await project.key("relations:write")
    response = await client.get(CHANGES, headers={"Api-Key": key})
    assert response.status_code == 403


async def test_an_idle_wait_returns_an_empty_page_with_the_same_cursor(
    client: httpx.AsyncClient, project: Project
) -> None:
    cursor = await now_cursor(client, project)
    started = time.monotonic()
    response = await client.get(CHANGES, params={"since": cursor, "wait": "0.3"}, headers=project.headers)
    assert time.monotonic() - started >= 0.3
    assert response.json()["_embedded"]["changes"] == []
    assert response.json()["cursor"] == cursor


async def test_a_long_poll_wakes_at_the_commit(client: httpx.AsyncClient, project: Project) -> None:
    cursor = await now_cursor(client, project)
    waiting = asyncio.create_task(
        client.get(CHANGES, params={"since": cursor, "wait": "20"}, headers=project.headers)
    )
    await asyncio.sleep(0.2)
    assert not waiting.done()
    created = await create(client, project)
    started = time.monotonic()
    response = await asyncio.wait_for(waiting, 20)
    woke_after = time.monotonic() - started
    assert woke_after < 19, "the wait ran out instead of waking at the commit"
    assert [change["data"]["_id"] for change in response.json()["_embedded"]["changes"]] == [created["_id"]]


async def test_a_wait_for_another_project_does_not_wake(
    client: httpx.AsyncClient, project: Project, make_project: Any
) -> None:
    other = await make_project()
    cursor = await now_cursor(client, project)
    waiting = asyncio.create_task(
        client.get(CHANGES, params={"since": cursor, "wait": "0.5"}, headers=project.headers)
    )
    await asyncio.sleep(0.1)
    await create(client, other)
    response = await waiting
    assert response.json()["_embedded"]["changes"] == []


async def test_a_cursor_older_than_the_retention_is_410(
    client: httpx.AsyncClient, project: Project, db: Database
) -> None:
    old = await now_cursor(client, project)
    await create(client, project)
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=8)
    await retention.prune(db, retention_seconds=7 * 86400, now=later)
    response = await client.get(CHANGES, params={"since": old}, headers=project.headers)
    assert response.status_code == 410
    assert error_of(response) == {"code": "Gone", "message": messages.CHANGES_GONE}
    everything = await client.get(CHANGES, headers=project.headers)
    assert everything.status_code == 200
    assert everything.json()["_embedded"]["changes"] == []
    fresh = await create(client, project)
    after = await client.get(CHANGES, params={"since": everything.json()["cursor"]}, headers=project.headers)
    assert [change["data"]["_id"] for change in after.json()["_embedded"]["changes"]] == [fresh["_id"]]


async def test_no_event_of_another_project_by_any_route_or_cursor(
    client: httpx.AsyncClient, project: Project, make_project: Any
) -> None:
    other = await make_project()
    mine = await create(client, project)
    theirs = await create(client, other)
    pages = [
        await client.get(CHANGES, headers=project.headers),
        await client.get(CHANGES, params={"since": "now", "wait": "0.2"}, headers=project.headers),
    ]
    everything = pages[0].json()["_embedded"]["changes"]
    assert [c["data"]["_id"] for c in everything if c["type"] == "relation.created"] == [mine["_id"]]
    assert all(
        c["data"].get("_id") != theirs["_id"] for page in pages for c in page.json()["_embedded"]["changes"]
    )
    asked = await client.get(CHANGES, headers={**project.headers, "Umb-Project-Alias": other.alias})
    assert asked.status_code == 403
    their_cursor = (await client.get(CHANGES, headers=other.headers)).json()["cursor"]
    assert (
        await client.get(CHANGES, params={"since": their_cursor}, headers=project.headers)
    ).status_code == 400
