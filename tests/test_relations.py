"""The Heartcore routes of /relation (service/relations)."""

from __future__ import annotations

import httpx
import pytest

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


async def test_list_by_parent_orders_by_type_then_position(
    client: httpx.AsyncClient, project: Project
) -> None:
    parent = guid()
    children = [guid() for _ in range(3)]
    for child in children:
        await create(client, project, parentId=parent, childId=child, relationTypeAlias="umbMedia")
    await create(
        client, project, parentId=parent, childId=children[0], relationTypeAlias="relateDocumentOnCopy"
    )
    await create(client, project)  # another parent
    response = await client.get(f"/relation/parent/{parent}", headers=project.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["_totalItems"] == 4 and body["_totalPages"] == 1 and body["_pageSize"] == 100
    items = body["_embedded"]["relations"]
    assert [(item["relationTypeAlias"], item["childId"]) for item in items] == [
        ("relateDocumentOnCopy", children[0]),
        *[("umbMedia", child) for child in children],
    ]
    assert body["_links"]["relations"] == [item["_links"]["self"] for item in items]
    assert body["_links"]["self"]["href"] == f"http://testserver/relation/parent/{parent}?page=1"
    assert body["_links"]["page"] == {
        "href": f"http://testserver/relation/parent/{parent}{{?page,pageSize}}",
        "templated": True,
    }
    assert "next" not in body["_links"] and "prev" not in body["_links"]
    filtered = await client.get(f"/relation/parent/{parent}?relationType=umbMedia", headers=project.headers)
    assert [item["childId"] for item in filtered.json()["_embedded"]["relations"]] == children


async def test_paging_links(client: httpx.AsyncClient, project: Project) -> None:
    parent = guid()
    for _ in range(5):
        await create(client, project, parentId=parent)
    url = f"/relation/parent/{parent}"
    middle = (await client.get(f"{url}?page=2&pageSize=2", headers=project.headers)).json()
    assert (middle["_totalItems"], middle["_totalPages"], middle["_page"], middle["_pageSize"]) == (
        5,
        3,
        2,
        2,
    )
    assert len(middle["_embedded"]["relations"]) == 2
    # next and prev are cursor links that keep the other query parameters and lead to pages 3 and 1
    for rel, page, ids in (("next", 3, [5]), ("prev", 1, [1, 2])):
        href = middle["_links"][rel]["href"]
        assert href.startswith(f"http://testserver{url}?cursor=") and href.endswith("&pageSize=2")
        followed = (await client.get(href, headers=project.headers)).json()
        assert followed["_page"] == page and followed["_totalItems"] == 5
        first_id = middle["_embedded"]["relations"][0]["_id"]
        assert [item["_id"] - first_id + 3 for item in followed["_embedded"]["relations"]] == ids
    last = (await client.get(f"{url}?page=3&pageSize=2", headers=project.headers)).json()
    assert len(last["_embedded"]["relations"]) == 1 and "next" not in last["_links"]
    past = (await client.get(f"{url}?page=9&pageSize=2", headers=project.headers)).json()
    assert past["_totalItems"] == 5 and past["_embedded"]["relations"] == []


async def test_empty_list(client: httpx.AsyncClient, project: Project) -> None:
    body = (await client.get(f"/relation/child/{guid()}", headers=project.headers)).json()
    assert body["_totalItems"] == 0 and body["_totalPages"] == 0
    assert body["_embedded"] == {"relations": []} and body["_links"]["relations"] == []


@pytest.mark.parametrize(
    "query", ["page=0", "page=-1", "page=x", "pageSize=0", "pageSize=1001", "pageSize=1.5"]
)
async def test_bad_paging_is_400(client: httpx.AsyncClient, project: Project, query: str) -> None:
    response = await client.get(f"/relation/child/{guid()}?{query}", headers=project.headers)
    assert response.status_code == 400
    assert error_of(response)["code"] == "BadRequest"


async def test_list_by_child_and_dependency(client: httpx.AsyncClient, project: Project) -> None:
    child = guid()
    media = (await create(client, project, childId=child, relationTypeAlias="umbMedia")).json()
    copy = (await create(client, project, childId=child, relationTypeAlias="relateDocumentOnCopy")).json()
    everything = (await client.get(f"/relation/child/{child}", headers=project.headers)).json()
    assert [item["_id"] for item in everything["_embedded"]["relations"]] == [media["_id"], copy["_id"]]
    dependency = (
        await client.get(f"/relation/child/{child}?dependency=true", headers=project.headers)
    ).json()
    assert [item["_id"] for item in dependency["_embedded"]["relations"]] == [media["_id"]]
    assert "dependency=true" in dependency["_links"]["self"]["href"]
    by_type = await client.get(
        f"/relation/child/{child}?relationType=relateDocumentOnCopy", headers=project.headers
    )
    assert [item["_id"] for item in by_type.json()["_embedded"]["relations"]] == [copy["_id"]]


async def test_list_by_alias_oldest_first(client: httpx.AsyncClient, project: Project) -> None:
    ids = [(await create(client, project, relationTypeAlias="umbMember")).json()["_id"] for _ in range(3)]
    body = (await client.get("/relation/umbMember", headers=project.headers)).json()
    assert [item["_id"] for item in body["_embedded"]["relations"]] == ids
    missing = await client.get("/relation/noSuchType", headers=project.headers)
    assert missing.status_code == 404
    assert error_of(missing)["message"] == messages.RELATION_TYPE_NOT_FOUND.format(alias="noSuchType")


async def test_related_includes_bidirectional_child_side(client: httpx.AsyncClient, project: Project) -> None:
    me = guid()
    as_parent = (await create(client, project, parentId=me, relationTypeAlias="umbMedia")).json()
    as_copy_child = (
        await create(client, project, childId=me, relationTypeAlias="relateDocumentOnCopy")
    ).json()
    await create(client, project, childId=me, relationTypeAlias="umbDocument")  # one-way: not related
    body = (await client.get(f"/relation/related/{me}", headers=project.headers)).json()
    assert [item["_id"] for item in body["_embedded"]["relations"]] == [
        as_parent["_id"],
        as_copy_child["_id"],
    ]


async def test_referenced(client: httpx.AsyncClient, project: Project) -> None:
    used, copied, unused = guid(), guid(), guid()
    await create(client, project, childId=used, relationTypeAlias="umbDocument")
    await create(client, project, childId=copied, relationTypeAlias="relateDocumentOnCopy")
    query = "&".join(f"id={value}" for value in (used, copied, unused, used.upper()))
    body = (await client.get(f"/relation/referenced?{query}", headers=project.headers)).json()
    assert body == {"referenced": [used]}
    too_many = "&".join(f"id={guid()}" for _ in range(101))
    assert (await client.get(f"/relation/referenced?{too_many}", headers=project.headers)).status_code == 400
    assert (await client.get("/relation/referenced", headers=project.headers)).status_code == 400
    assert (await client.get("/relation/referenced?id=nope", headers=project.headers)).status_code == 400


async def test_update_comment_only(client: httpx.AsyncClient, project: Project) -> None:
    created = (await create(client, project, comment="old")).json()
    url = f"/relation/{created['_id']}"
    updated = await client.put(url, json={"comment": "new"}, headers=project.headers)
    assert updated.status_code == 200 and updated.json()["comment"] == "new"
    same_fields = {**created, "comment": "newer"}
    assert (await client.put(url, json=same_fields, headers=project.headers)).json()["comment"] == "newer"
    moved = await client.put(url, json={"parentId": guid(), "comment": "x"}, headers=project.headers)
    assert moved.status_code == 422
    assert error_of(moved)["details"]["errors"]["parentId"] == [messages.FIELD_IMMUTABLE]
    retyped = await client.put(url, json={"relationTypeAlias": "umbMedia"}, headers=project.headers)
    assert error_of(retyped)["details"]["errors"]["relationTypeAlias"] == [messages.FIELD_IMMUTABLE]
    assert (await client.get(url, headers=project.headers)).json()["comment"] == "newer"
    missing = await client.put("/relation/999999999999", json={"comment": "x"}, headers=project.headers)
    assert missing.status_code == 404
    # A missing relation is 404 whatever the body; a bad body and a changed field are one 422.
    bad = {"comment": 5, "childId": guid()}
    assert (await client.put("/relation/999999999999", json=bad, headers=project.headers)).status_code == 404
    both = await client.put(url, json=bad, headers=project.headers)
    assert set(error_of(both)["details"]["errors"]) == {"comment", "childId"}
    kept = await client.put(url, json={"childId": created["childId"]}, headers=project.headers)
    assert kept.status_code == 200 and kept.json()["comment"] == "newer"  # no comment: kept
    cleared = await client.put(url, json={"comment": None}, headers=project.headers)
    assert cleared.json()["comment"] == ""


async def test_delete_by_parent_and_child(client: httpx.AsyncClient, project: Project) -> None:
    entity = guid()
    await create(client, project, parentId=entity)
    await create(client, project, parentId=entity, relationTypeAlias="umbMedia")
    await create(client, project, childId=entity)
    keep = (await create(client, project)).json()
    by_parent = await client.delete(f"/relation/parent/{entity}", headers=project.headers)
    assert by_parent.status_code == 200 and by_parent.json() == {"deleted": 2}
    by_child = await client.delete(f"/relation/child/{entity}", headers=project.headers)
    assert by_child.json() == {"deleted": 1}
    assert (await client.delete(f"/relation/child/{entity}", headers=project.headers)).json() == {
        "deleted": 0
    }
    assert (await client.get(f"/relation/{keep['_id']}", headers=project.headers)).status_code == 200


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"parentId": "nope"}, "parentId", messages.FIELD_NOT_GUID),
        ({"childId": 5}, "childId", messages.FIELD_NOT_GUID),
        ({"parentId": None}, "parentId", messages.FIELD_REQUIRED),
        (
            {"relationTypeAlias": "noSuchType"},
            "relationTypeAlias",
            messages.RELATION_TYPE_UNKNOWN.format(alias="noSuchType"),
        ),
        (
            {"relationTypeAlias": "bad alias"},
            "relationTypeAlias",
            messages.RELATION_TYPE_UNKNOWN.format(alias="bad alias"),
        ),
        ({"comment": "x" * 1001}, "comment", messages.FIELD_TOO_LONG.format(limit=1000)),
        ({"comment": 7}, "comment", messages.FIELD_NOT_STRING),
        ({"comment": "a\x00"}, "comment", messages.FIELD_NUL),
        ({"extra": 1}, "extra", messages.FIELD_UNKNOWN),
    ],
)
async def test_create_validation(
    client: httpx.AsyncClient, project: Project, body: dict[str, object], field: str, message: str
) -> None:
    response = await create(client, project, **body)  # type: ignore[arg-type]
    assert response.status_code == 422, response.text
    error = error_of(response)
    assert error["message"] == messages.RELATION_INVALID
    assert error["details"]["errors"][field] == [message]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", messages.EMPTY_BODY),
        (b"   ", messages.EMPTY_BODY),
        (b"{not json", messages.INVALID_JSON),
        (b"[1, 2]", messages.BODY_NOT_OBJECT),
        (b"\xff\xfe", messages.INVALID_UTF8),
        (b"[" * 5000 + b"]" * 5000, messages.INVALID_JSON),
    ],
)
async def test_bad_bodies_are_400(
    client: httpx.AsyncClient, project: Project, content: bytes, message: str
) -> None:
    headers = {**project.headers, "Content-Type": "application/json"}
    response = await client.post("/relation", content=content, headers=headers)
    assert response.status_code == 400
    assert error_of(response) == {"code": "BadRequest", "message": message}


async def test_wrong_media_type_is_415(client: httpx.AsyncClient, project: Project) -> None:
    headers = {**project.headers, "Content-Type": "text/plain"}
    response = await client.post("/relation", content=b"{}", headers=headers)
    assert response.status_code == 415
    assert error_of(response)["code"] == "UnsupportedMediaType"


async def test_bad_guid_in_path_is_400(client: httpx.AsyncClient, project: Project) -> None:
    response = await client.get("/relation/parent/not-a-guid", headers=project.headers)
    assert response.status_code == 400
    assert error_of(response)["message"] == messages.INVALID_GUID.format(value="not-a-guid")


async def test_huge_id_is_404(client: httpx.AsyncClient, project: Project) -> None:
    response = await client.get("/relation/99999999999999999999999", headers=project.headers)
    assert response.status_code == 404
