"""Every writer logs the right events with the right data, through the triggers alone."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from service.changes import feed
from service.db import Database
from tests.changes.helpers import events_after, kinds
from tests.conftest import Project, guid


async def create(client: httpx.AsyncClient, project: Project, parent: str, child: str, **extra: Any) -> Any:
    body = {"parentId": parent, "childId": child, "relationTypeAlias": "umbDocument", **extra}
    response = await client.post("/relation", json=body, headers=project.headers)
    assert response.status_code == 201, response.text
    return response.json()


INSERT_ONE = (
    "INSERT INTO relation (project, type_alias, parent, child, position) VALUES ($1, $2, gen_random_uuid(), "
    "gen_random_uuid(), 1)"
)


def without_links(representation: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in representation.items() if name != "_links"}


async def test_a_new_project_logs_its_builtin_types(db: Database, project: Project) -> None:
    events = await events_after(db, project.alias)
    assert kinds(events) == ["relationType.created"] * 6
    assert {event["data"]["alias"] for event in events} >= {"umbDocument", "relateDocumentOnCopy"}


async def test_create_update_delete_log_the_relation(
    client: httpx.AsyncClient, db: Database, project: Project
) -> None:
    start = await feed.end(db)
    created = await create(client, project, guid(), guid(), comment="first")
    updated = await client.put(
        f"/relation/{created['_id']}", json={"comment": "second"}, headers=project.headers
    )
    deleted = await client.delete(f"/relation/{created['_id']}", headers=project.headers)
    events = await events_after(db, project.alias, start)
    assert kinds(events) == ["relation.created", "relation.updated", "relation.deleted"]
    assert events[0]["data"] == without_links(created)
    assert events[1]["data"] == without_links(updated.json())
    assert (
        events[2]["data"] == without_links(deleted.json()) == {**without_links(created), "comment": "second"}
    )
    assert len({event["id"] for event in events}) == 3
    assert all(event["occurredAt"].endswith("Z") and len(event["occurredAt"]) == 24 for event in events)


async def test_list_edits_log_members_and_moves(
    client: httpx.AsyncClient, db: Database, project: Project
) -> None:
    parent, a, b, c = guid(), guid(), guid(), guid()
    path = f"/relation/parent/{parent}/umbDocument"
    start = await feed.end(db)
    response = await client.put(path, json=[a, b, c], headers=project.headers)
    assert response.status_code == 200, response.text
    created = await events_after(db, project.alias, start)
    assert kinds(created) == ["relation.created"] * 3
    assert [event["data"]["childId"] for event in created] == [a, b, c]

    start = await feed.end(db)
    moved = await client.put(path, json=[c, a, b], headers=project.headers)
    events = await events_after(db, project.alias, start)
    assert kinds(events) == ["list.reordered"]
    assert events[0]["data"] == {
        "parentId": parent,
        "relationTypeAlias": "umbDocument",
        "etag": moved.headers["ETag"],
    }

    start = await feed.end(db)
    patched = await client.patch(
        path,
        json={"connect": [{"id": b, "position": {"start": True}}], "disconnect": [a]},
        headers=project.headers,
    )
    assert patched.status_code == 200, patched.text
    events = await events_after(db, project.alias, start)
    assert kinds(events) == ["relation.deleted", "list.reordered"]
    assert events[0]["data"]["childId"] == a
    assert events[1]["data"]["etag"] == patched.headers["ETag"]

    start = await feed.end(db)
    await client.delete(path, headers=project.headers)
    events = await events_after(db, project.alias, start)
    assert sorted(event["data"]["childId"] for event in events) == sorted([b, c])
    assert kinds(events) == ["relation.deleted"] * 2


async def test_a_comment_edit_through_a_list_is_an_update(
    client: httpx.AsyncClient, db: Database, project: Project
) -> None:
    parent, a = guid(), guid()
    path = f"/relation/parent/{parent}/umbDocument"
    await client.put(path, json=[a], headers=project.headers)
    start = await feed.end(db)
    response = await client.patch(
        path, json={"connect": [{"id": a, "comment": "noted"}]}, headers=project.headers
    )
    assert response.status_code == 200, response.text
    events = await events_after(db, project.alias, start)
    assert kinds(events) == ["relation.updated"]
    assert events[0]["data"]["comment"] == "noted"


async def test_deletes_by_parent_and_child_log_each_relation(
    client: httpx.AsyncClient, db: Database, project: Project
) -> None:
    parent, child = guid(), guid()
    one = await create(client, project, parent, guid())
    two = await create(client, project, parent, child)
    three = await create(client, project, guid(), child)
    start = await feed.end(db)
    assert (await client.delete(f"/relation/parent/{parent}", headers=project.headers)).json() == {
        "deleted": 2
    }
    assert (await client.delete(f"/relation/child/{child}", headers=project.headers)).json() == {"deleted": 1}
    events = await events_after(db, project.alias, start)
    assert kinds(events) == ["relation.deleted"] * 3
    assert [event["data"] for event in events] == [without_links(row) for row in (one, two, three)]


async def test_relation_type_changes_and_a_forced_delete(
    client: httpx.AsyncClient, db: Database, project: Project
) -> None:
    start = await feed.end(db)
    body = {"alias": "seeAlso", "name": "See also", "parentObjectType": "DOCUMENT"}
    created = await client.post("/relation/type", json=body, headers=project.headers)
    assert created.status_code == 201, created.text
    updated = await client.put("/relation/type/seeAlso", json={"name": "See too"}, headers=project.headers)
    relation = (
        await client.post(
            "/relation",
            json={"parentId": guid(), "childId": guid(), "relationTypeAlias": "seeAlso"},
            headers=project.headers,
        )
    ).json()
    gone = await client.delete("/relation/type/seeAlso?force=true", headers=project.headers)
    assert gone.status_code == 200, gone.text
    events = await events_after(db, project.alias, start)
    assert kinds(events) == [
        "relationType.created",
        "relationType.updated",
        "relation.created",
        "relation.deleted",
        "relationType.deleted",
    ]
    assert events[0]["data"] == without_links(created.json())
    assert events[1]["data"] == without_links(updated.json())
    assert events[3]["data"] == without_links(relation)
    assert events[4]["data"] == without_links(updated.json())


async def test_a_backendless_path_logs_the_type_it_creates(
    client: httpx.AsyncClient, db: Database, project: Project
) -> None:
    start = await feed.end(db)
    parent, a = guid(), guid()
    response = await client.put(
        f"/relation/parent/{parent}/friends:Users:n", json=[a], headers=project.headers
    )
    assert response.status_code == 200, response.text
    events = await events_after(db, project.alias, start)
    assert kinds(events) == ["relationType.created", "relation.created"]
    assert events[0]["data"]["alias"] == "friends"


async def test_a_rolled_back_change_never_appears(db: Database, project: Project) -> None:
    start = await feed.end(db)

    class Undo(Exception):
        pass

    try:
        async with db.transaction():
            await db.execute(INSERT_ONE, project.alias, "umbDocument")
            raise Undo()
    except Undo:
        pass
    await db.execute(INSERT_ONE, project.alias, "umbMedia")
    events = await events_after(db, project.alias, start)
    assert [event["data"]["relationTypeAlias"] for event in events] == ["umbMedia"]


async def test_one_statement_of_many_rows_logs_each_row(db: Database, project: Project) -> None:
    """What an import does: one INSERT … SELECT."""
    start = await feed.end(db)
    parent = uuid.uuid4()
    await db.execute(
        "INSERT INTO relation (project, type_alias, parent, child, position) "
        "SELECT $1, 'umbDocument', $2, gen_random_uuid(), g FROM generate_series(1, 500) AS g",
        project.alias,
        parent,
    )
    events = await events_after(db, project.alias, start)
    assert kinds(events) == ["relation.created"] * 500
    ids = [event["data"]["_id"] for event in events]
    assert ids == sorted(ids)


async def test_an_update_past_the_api_that_moves_a_relation_is_a_delete_and_a_create(
    client: httpx.AsyncClient, db: Database, project: Project
) -> None:
    """No route moves a relation to another parent, child or type; a repair script's UPDATE may, and
    the feed (and the read cache) must follow it: the relation as it was, deleted, then as it is."""
    first = await create(client, project, guid(), guid(), comment="kept")
    second = await create(client, project, guid(), guid())
    start = await feed.end(db)
    parent = uuid.uuid4()
    await db.execute(
        "UPDATE relation SET parent = $2, comment = CASE WHEN id = $3 THEN 'moved' ELSE comment END"
        " WHERE project = $1 AND id IN ($3, $4)",
        project.alias,
        parent,
        first["_id"],
        second["_id"],
    )
    events = await events_after(db, project.alias, start)
    assert kinds(events) == ["relation.deleted", "relation.created"] * 2
    gone, made = events[0]["data"], events[1]["data"]
    assert gone == without_links(first)
    assert made == {**without_links(first), "parentId": str(parent), "comment": "moved"}
    assert [event["data"]["_id"] for event in events] == [first["_id"]] * 2 + [second["_id"]] * 2
    moved = await client.get(f"/relation/parent/{parent}", headers=project.headers)
    assert moved.json()["_totalItems"] == 2


async def test_writers_must_be_read_committed(db: Database, project: Project) -> None:
    with pytest.raises(asyncpg.FeatureNotSupportedError):
        async with db.transaction():
            await db.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            await db.execute(INSERT_ONE, project.alias, "umbDocument")


async def test_an_import_logs_what_it_creates_and_moves(
    client: httpx.AsyncClient, db: Database, project: Project
) -> None:
    from tests.bulk.helpers import ndjson, relation, relation_type, upload

    parent, a, b = guid(), guid(), guid()
    start = await feed.end(db)
    body = ndjson(
        relation_type("imported", "Imported"),
        relation(parent, a, "imported"),
        relation(parent, b, "imported"),
    )
    answer = await upload(client, project, body)
    assert answer.status_code == 200, answer.text
    events = await events_after(db, project.alias, start)
    assert kinds(events) == ["relationType.created", "relation.created", "relation.created"]
    assert [event["data"]["childId"] for event in events[1:]] == [a, b]

    start = await feed.end(db)
    answer = await upload(
        client, project, ndjson(relation(parent, b, "imported"), relation(parent, a, "imported"))
    )
    assert answer.status_code == 200, answer.text
    events = await events_after(db, project.alias, start)
    assert kinds(events) == ["list.reordered"]
    assert events[0]["data"]["parentId"] == parent
