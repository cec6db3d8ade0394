"""Idempotency-Key (service/idempotency): a retry returns the first answer and does nothing twice."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx

from service import messages
from service.db import Database
from service.idempotency import queries
from service.idempotency.service import REPLAYED_HEADER
from tests.conftest import MakeProject, Project, error_of, guid


def relation_body(**fields: Any) -> dict[str, Any]:
    return {"parentId": guid(), "childId": guid(), "relationTypeAlias": "relateDocumentOnCopy", **fields}


def with_key(project: Project, key: str) -> dict[str, str]:
    return {**project.headers, "Idempotency-Key": key}


async def children_of(client: httpx.AsyncClient, project: Project, parent: str) -> list[dict[str, Any]]:
    listed = await client.get(f"/relation/parent/{parent}", headers=project.headers)
    assert listed.status_code == 200
    items: list[dict[str, Any]] = listed.json()["_embedded"]["relations"]
    return items


async def stored_keys(db: Database, project: Project) -> int:
    count: int = await db.fetchval("SELECT count(*) FROM idempotency_key WHERE project = $1", project.alias)
    return count


async def test_retry_returns_the_first_answer_and_creates_one_relation(
    client: httpx.AsyncClient, project: Project, db: Database
) -> None:
    body = relation_body(comment="once")
    key = str(uuid.uuid4())
    first = await client.post("/relation", json=body, headers=with_key(project, key))
    assert first.status_code == 201, first.text
    assert REPLAYED_HEADER.lower() not in first.headers
    again = await client.post("/relation", json=body, headers=with_key(project, key))
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["content-type"] == "application/hal+json"
    assert again.headers[REPLAYED_HEADER] == "true"
    assert [item["_id"] for item in await children_of(client, project, body["parentId"])] == [
        first.json()["_id"]
    ]
    assert await stored_keys(db, project) == 1


async def test_without_a_key_a_retry_runs_again(client: httpx.AsyncClient, project: Project) -> None:
    body = relation_body()
    assert (await client.post("/relation", json=body, headers=project.headers)).status_code == 201
    again = await client.post("/relation", json=body, headers=project.headers)
    assert again.status_code == 422
    assert error_of(again)["details"]["errors"]["childId"] == [messages.RELATION_DUPLICATE]


async def test_same_key_with_another_body_is_422(client: httpx.AsyncClient, project: Project) -> None:
    key = "order-4711"
    first = await client.post("/relation", json=relation_body(), headers=with_key(project, key))
    assert first.status_code == 201
    other = relation_body()
    reused = await client.post("/relation", json=other, headers=with_key(project, key))
    assert reused.status_code == 422
    assert error_of(reused) == {
        "code": "ValidationFailed",
        "message": messages.RELATION_INVALID,
        "details": {"errors": {"Idempotency-Key": [messages.IDEMPOTENCY_KEY_REUSED]}},
    }
    assert await children_of(client, project, other["parentId"]) == []


async def test_same_key_on_another_route_is_422(client: httpx.AsyncClient, project: Project) -> None:
    key = "shared-key"
    created = await client.post("/relation", json=relation_body(), headers=with_key(project, key))
    relation_id = created.json()["_id"]
    deleted = await client.delete(f"/relation/{relation_id}", headers=with_key(project, key))
    assert deleted.status_code == 422
    assert error_of(deleted)["details"]["errors"] == {"Idempotency-Key": [messages.IDEMPOTENCY_KEY_REUSED]}
    still = await client.get(f"/relation/{relation_id}", headers=project.headers)
    assert still.status_code == 200


async def test_relation_type_routes_use_their_own_message(
    client: httpx.AsyncClient, project: Project
) -> None:
    key = "type-key"
    body = {"alias": "keyed", "name": "Keyed"}
    assert (await client.post("/relation/type", json=body, headers=with_key(project, key))).status_code == 201
    other = await client.post(
        "/relation/type", json={"alias": "keyed2", "name": "Keyed"}, headers=with_key(project, key)
    )
    assert other.status_code == 422
    assert error_of(other)["message"] == messages.RELATION_TYPE_INVALID


async def test_keys_belong_to_one_project(
    client: httpx.AsyncClient, project: Project, make_project: MakeProject
) -> None:
    other = await make_project()
    body = relation_body()
    key = "same-key-two-projects"
    mine = await client.post("/relation", json=body, headers=with_key(project, key))
    theirs = await client.post("/relation", json=body, headers=with_key(other, key))
    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["_id"] != theirs.json()["_id"]
    assert REPLAYED_HEADER.lower() not in theirs.headers


async def test_concurrent_retries_execute_once(
    client: httpx.AsyncClient, project: Project, db: Database
) -> None:
    body = relation_body()
    key = "burst-" + guid()
    answers = await asyncio.gather(
        *(client.post("/relation", json=body, headers=with_key(project, key)) for _ in range(8))
    )
    assert [answer.status_code for answer in answers] == [201] * 8
    assert len({answer.json()["_id"] for answer in answers}) == 1
    assert sum(REPLAYED_HEADER.lower() not in answer.headers for answer in answers) == 1
    assert len(await children_of(client, project, body["parentId"])) == 1
    assert await stored_keys(db, project) == 1


async def test_delete_retry_replays_instead_of_404(client: httpx.AsyncClient, project: Project) -> None:
    relation_id = (await client.post("/relation", json=relation_body(), headers=project.headers)).json()[
        "_id"
    ]
    key = "delete-" + guid()
    first = await client.delete(f"/relation/{relation_id}", headers=with_key(project, key))
    again = await client.delete(f"/relation/{relation_id}", headers=with_key(project, key))
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    unkeyed = await client.delete(f"/relation/{relation_id}", headers=project.headers)
    assert unkeyed.status_code == 404


async def test_failures_are_not_kept(client: httpx.AsyncClient, project: Project, db: Database) -> None:
    key = "fails-first"
    body = relation_body(relationTypeAlias="doesNotExist")
    failed = await client.post("/relation", json=body, headers=with_key(project, key))
    assert failed.status_code == 422
    assert await stored_keys(db, project) == 0
    again = await client.post("/relation", json=body, headers=with_key(project, key))
    assert again.status_code == 422
    assert REPLAYED_HEADER.lower() not in again.headers
    fixed = await client.post("/relation", json=relation_body(), headers=with_key(project, key))
    assert fixed.status_code == 201
    assert await stored_keys(db, project) == 1


async def test_insane_keys_are_400(client: httpx.AsyncClient, project: Project) -> None:
    for key in (b"", b"has space", b"x" * 256, b"tab\tinside", "ünïcode".encode()):
        response = await client.post(
            "/relation", json=relation_body(), headers={**project.headers, "Idempotency-Key": key}
        )
        assert response.status_code == 400, key
        assert error_of(response) == {"code": "BadRequest", "message": messages.IDEMPOTENCY_KEY_INVALID}
    longest = "k" * 255
    ok = await client.post("/relation", json=relation_body(), headers=with_key(project, longest))
    assert ok.status_code == 201


async def test_expired_keys_are_new_and_pruned(
    client: httpx.AsyncClient, project: Project, db: Database
) -> None:
    key = "old-key"
    first = await client.post("/relation", json=relation_body(), headers=with_key(project, key))
    assert first.status_code == 201
    await db.execute(
        "UPDATE idempotency_key SET created_at = now() - interval '25 hours' WHERE project = $1",
        project.alias,
    )
    other = relation_body()
    reused = await client.post("/relation", json=other, headers=with_key(project, key))
    assert reused.status_code == 201
    assert reused.json()["_id"] != first.json()["_id"]
    await db.execute(
        "UPDATE idempotency_key SET created_at = now() - interval '25 hours' WHERE project = $1",
        project.alias,
    )
    assert await queries.prune(db, hours=24) >= 1
    assert await stored_keys(db, project) == 0


async def test_oversized_body_with_a_key_is_413(client: httpx.AsyncClient, project: Project) -> None:
    response = await client.post(
        "/relation",
        content=b" " * (1024 * 1024 + 1),
        headers={**with_key(project, "big"), "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert error_of(response)["code"] == "PayloadTooLarge"


async def test_key_is_checked_after_credentials(client: httpx.AsyncClient, project: Project) -> None:
    response = await client.post(
        "/relation", json=relation_body(), headers={"Idempotency-Key": "k", "Api-Key": "wrong"}
    )
    assert response.status_code == 401


async def test_list_edit_retry_replays_body_and_etag(client: httpx.AsyncClient, project: Project) -> None:
    url = f"/relation/parent/{guid()}/relateDocumentOnCopy"
    body = {"connect": [guid(), guid()]}
    key = "list-" + guid()
    first = await client.patch(url, json=body, headers=with_key(project, key))
    assert first.status_code == 200, first.text
    assert first.headers["etag"]
    added = await client.post(url, json=[guid()], headers=project.headers)
    assert added.status_code == 200
    again = await client.patch(url, json=body, headers=with_key(project, key))
    assert again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["etag"] == first.headers["etag"]
    assert again.headers[REPLAYED_HEADER] == "true"
    listed = await client.get(url, headers=project.headers)
    assert listed.json()["_totalItems"] == 3
