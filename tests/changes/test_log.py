"""Every writer logs the right events with the right data, through the triggers alone."""

from __future__ import annotations

from typing import Any

import httpx

from service.changes import feed
from service.db import Database
from tests.changes.helpers import events_after, kinds
from tests.conftest import Project, guid


async def create(client: httpx.AsyncClient, project: Project, parent: str, child: str, **extra: Any) -> Any:
    body = {"parentId": parent, "childId": child, "relationTypeAlias": "umbDocument", **extra}
    response = await client.post("/relation", json=body, headers=project.headers)
    assert response.status_code == 201, response.text
    return response.json()


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
