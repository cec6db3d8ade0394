"""schema.sql's `child_list` counter: every writer keeps each list's size and version right, so the
list's `_totalItems` and ETag never need a count of its rows."""

from __future__ import annotations

import uuid

import httpx

from tests.child_lists.helpers import call, path
from tests.conftest import Project, guid


async def stored(project: Project, parent: str, alias: str = "umbDocument") -> tuple[int, int]:
    """(counter's size, real row count) of one list."""
    size = await project.db.fetchval(
        "SELECT size FROM child_list WHERE project = $1 AND parent = $2 AND type_alias = $3",
        project.alias,
        uuid.UUID(parent),
        alias,
    )
    rows = await project.db.fetchval(
        "SELECT count(*) FROM relation WHERE project = $1 AND parent = $2 AND type_alias = $3",
        project.alias,
        uuid.UUID(parent),
        alias,
    )
    return int(size or 0), int(rows)


async def etag_and_total(client: httpx.AsyncClient, project: Project, parent: str) -> tuple[str, int]:
    response = await client.get(path(parent), headers=project.headers)
    assert response.status_code == 200
    return response.headers["etag"], response.json()["_totalItems"]


async def test_every_writer_keeps_the_count(client: httpx.AsyncClient, project: Project) -> None:
    parent = guid()
    tags = set()
    for _ in range(3):
        body = {"parentId": parent, "childId": guid(), "relationTypeAlias": "umbDocument"}
        created = await client.post("/relation", json=body, headers=project.headers)
        assert created.status_code == 201
        tags.add((await etag_and_total(client, project, parent))[0])
    assert await stored(project, parent) == (3, 3)

    shared = guid()
    assert (await call(client, project, "POST", parent, [shared, guid()])).status_code == 200
    assert await stored(project, parent) == (5, 5)
    tags.add((await etag_and_total(client, project, parent))[0])

    first = (await client.get(path(parent), headers=project.headers)).json()["_embedded"]["relations"][0]
    assert (await client.delete(f"/relation/{first['_id']}", headers=project.headers)).status_code == 200
    assert await stored(project, parent) == (4, 4)
    tags.add((await etag_and_total(client, project, parent))[0])

    assert (await client.delete(f"/relation/child/{shared}", headers=project.headers)).json() == {
        "deleted": 1
    }
    assert await stored(project, parent) == (3, 3)
    tag, total = await etag_and_total(client, project, parent)
    assert total == 3
    tags.add(tag)
    assert len(tags) == 6, "every change gave the list a new ETag"

    assert (await client.delete(f"/relation/parent/{parent}", headers=project.headers)).json() == {
        "deleted": 3
    }
    assert await stored(project, parent) == (0, 0)
    assert (await etag_and_total(client, project, parent))[0] not in tags


async def test_reorder_moves_the_version_and_a_comment_does_not(
    client: httpx.AsyncClient, project: Project
) -> None:
    parent, a, b = guid(), guid(), guid()
    await call(client, project, "PUT", parent, [a, b])
    before, _ = await etag_and_total(client, project, parent)
    relation = (await client.get(path(parent), headers=project.headers)).json()["_embedded"]["relations"][0]
    await client.put(f"/relation/{relation['_id']}", json={"comment": "note"}, headers=project.headers)
    assert (await etag_and_total(client, project, parent))[0] == before
    moved = await call(
        client, project, "PATCH", parent, {"connect": [{"id": b, "position": {"start": True}}]}
    )
    assert moved.status_code == 200
    after, total = await etag_and_total(client, project, parent)
    assert after != before and total == 2
    assert await stored(project, parent) == (2, 2)


async def test_forced_type_delete_empties_its_lists(client: httpx.AsyncClient, project: Project) -> None:
    body = {"alias": "gallery", "name": "Gallery"}
    assert (await client.post("/relation/type", json=body, headers=project.headers)).status_code == 201
    parents = [guid(), guid()]
    for parent in parents:
        response = await call(client, project, "PUT", parent, [guid(), guid()], alias="gallery")
        assert response.status_code == 200
    deleted = await client.delete("/relation/type/gallery?force=true", headers=project.headers)
    assert deleted.status_code == 200
    for parent in parents:
        assert await stored(project, parent, "gallery") == (0, 0)
