"""The Heartcore routes of /relation (service/relations)."""

from __future__ import annotations

import httpx

from service import messages
from tests.conftest import Project, error_of, guid


async def create(client: httpx.AsyncClient, project: Project, **body: str) -> httpx.Response:
    payload = {"parentId": guid(), "childId": guid(), "relationTypeAlias": "relateDocumentOnCopy", **body}
    return await client.post("/relation", json=payload, headers=project.headers)


async def test_create_then_get(client: httpx.AsyncClient, project: Project) -> None:
    parent, child = guid(), guid()
    created = await create(client, project, parentId=parent.upper(), childId=child, comment="hi")
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["parentId"] == parent and body["childId"] == child
    assert body["relationTypeAlias"] == "relateDocumentOnCopy" and body["comment"] == "hi"
    assert isinstance(body["_id"], int)
    assert body["_createDate"].endswith("Z")
    self_href = f"http://testserver/relation/{body['_id']}"
    assert body["_links"] == {
        "self": {"href": self_href},
        "relationType": {"href": "http://testserver/relation/type/relateDocumentOnCopy"},
    }
    assert created.headers["location"] == self_href
    assert created.headers["content-type"] == "application/hal+json"
    fetched = await client.get(f"/relation/{body['_id']}", headers=project.headers)
    assert fetched.status_code == 200
    assert fetched.json() == body


async def test_absent_comment_is_empty_string(client: httpx.AsyncClient, project: Project) -> None:
    created = await create(client, project)
    assert created.json()["comment"] == ""


async def test_duplicate_is_422(client: httpx.AsyncClient, project: Project) -> None:
    parent, child = guid(), guid()
    assert (await create(client, project, parentId=parent, childId=child)).status_code == 201
    again = await create(client, project, parentId=parent, childId=child)
    assert again.status_code == 422
    error = error_of(again)
    assert error["code"] == "ValidationFailed"
    assert error["message"] == messages.RELATION_INVALID
    assert error["details"]["errors"]["childId"] == [messages.RELATION_DUPLICATE]


async def test_deleted_relation_is_404_with_exact_message(
    client: httpx.AsyncClient, project: Project
) -> None:
    relation_id = (await create(client, project)).json()["_id"]
    deleted = await client.delete(f"/relation/{relation_id}", headers=project.headers)
    assert deleted.status_code == 200 and deleted.json()["_id"] == relation_id
    gone = await client.get(f"/relation/{relation_id}", headers=project.headers)
    assert gone.status_code == 404
    assert error_of(gone) == {
        "code": "NotFound",
        "message": f"Relation with id '{relation_id}' could not be found.",
    }
