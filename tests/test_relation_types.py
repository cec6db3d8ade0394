"""/relation/type: the registry of relation types (service/relation_types)."""

from __future__ import annotations

import uuid

import httpx
import pytest

from service import messages
from service.db import Database
from service.errors import Conflict
from service.relation_types import queries as type_queries
from service.relation_types.model import BUILTINS, type_id
from tests.conftest import Project, error_of, guid

# Umbraco's own id for this built-in type (SPEC §4), which uuid3 must reproduce.
UMBRACO_IDS = {"relateDocumentOnCopy": "4cbeb612-e689-3563-b755-bf3ede295433"}


def test_type_id_is_umbracos_uuid3() -> None:
    assert (
        str(type_id("relateDocumentOnCopy", "Relate Document On Copy")) == UMBRACO_IDS["relateDocumentOnCopy"]
    )
    assert type_id("a", "b") == uuid.uuid3(uuid.NAMESPACE_URL, "a____b")


async def test_lists_the_six_builtins(client: httpx.AsyncClient, project: Project) -> None:
    response = await client.get("/relation/type", headers=project.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["_totalItems"] == 6 and body["_totalPages"] == 1 and body["_page"] == 1
    assert list(body["_embedded"]) == ["relationtypes"]
    by_alias = {item["alias"]: item for item in body["_embedded"]["relationtypes"]}
    assert set(by_alias) == {fields.alias for fields in BUILTINS}
    copy = by_alias["relateDocumentOnCopy"]
    assert copy["_id"] == UMBRACO_IDS["relateDocumentOnCopy"]
    assert copy["name"] == "Relate Document On Copy"
    assert copy["isBidirectional"] is True and copy["isDependency"] is False
    assert copy["parentObjectType"] == "DOCUMENT" and copy["childObjectType"] == "DOCUMENT"
    assert copy["cardinality"] == "many"
    assert by_alias["umbMedia"]["isDependency"] is True
    assert by_alias["umbMedia"]["parentObjectType"] == "Unknown"
    for fields in BUILTINS:
        assert by_alias[fields.alias]["_id"] == str(type_id(fields.alias, fields.name))
    assert [link["href"] for link in body["_links"]["relationtypes"]] == [
        item["_links"]["self"]["href"] for item in body["_embedded"]["relationtypes"]
    ]


async def test_get_one_and_unknown(client: httpx.AsyncClient, project: Project) -> None:
    found = await client.get("/relation/type/umbDocument", headers=project.headers)
    assert found.status_code == 200
    assert found.json()["_links"] == {
        "self": {"href": "http://testserver/relation/type/umbDocument"},
        "relations": {"href": "http://testserver/relation/umbDocument"},
    }
    missing = await client.get("/relation/type/nope", headers=project.headers)
    assert missing.status_code == 404
    assert error_of(missing)["message"] == messages.RELATION_TYPE_NOT_FOUND.format(alias="nope")


NEW_TYPE = {
    "alias": "relatedArticles",
    "name": "Related Articles",
    "parentObjectType": "DOCUMENT",
    "childObjectType": "ARTICLE",
    "isBidirectional": False,
    "isDependency": True,
    "cardinality": "many",
}


async def test_create_update_keeps_id_and_moves_update_date(
    client: httpx.AsyncClient, project: Project
) -> None:
    created = await client.post("/relation/type", json=NEW_TYPE, headers=project.headers)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["_id"] == str(type_id("relatedArticles", "Related Articles"))
    assert created.headers["location"] == "http://testserver/relation/type/relatedArticles"
    assert {key: body[key] for key in NEW_TYPE} == NEW_TYPE
    renamed = await client.put(
        "/relation/type/relatedArticles",
        json={"name": "See Also", "isBidirectional": True},
        headers=project.headers,
    )
    assert renamed.status_code == 200, renamed.text
    after = renamed.json()
    assert after["_id"] == body["_id"]
    assert after["name"] == "See Also" and after["isBidirectional"] is True
    assert after["childObjectType"] == "ARTICLE"
    assert after["_updateDate"] >= body["_updateDate"]
    assert after["_createDate"] == body["_createDate"]


async def test_update_date_moves(client: httpx.AsyncClient, project: Project) -> None:
    await client.post("/relation/type", json=NEW_TYPE, headers=project.headers)
    await project.db.execute(
        "UPDATE relation_type SET updated_at = updated_at - interval '1 hour'"
        " WHERE project = $1 AND alias = $2",
        project.alias,
        "relatedArticles",
    )
    before = (await client.get("/relation/type/relatedArticles", headers=project.headers)).json()
    after = (
        await client.put("/relation/type/relatedArticles", json={"name": "X"}, headers=project.headers)
    ).json()
    assert after["_updateDate"] > before["_updateDate"]


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({**NEW_TYPE, "alias": "parent"}, "alias", messages.ALIAS_RESERVED.format(alias="parent")),
        ({**NEW_TYPE, "alias": "Type"}, "alias", messages.ALIAS_RESERVED.format(alias="Type")),
        ({**NEW_TYPE, "alias": "123"}, "alias", messages.ALIAS_INVALID),
        ({**NEW_TYPE, "alias": "has space"}, "alias", messages.ALIAS_INVALID),
        ({**NEW_TYPE, "alias": "a" * 101}, "alias", messages.ALIAS_INVALID),
        ({**NEW_TYPE, "alias": 5}, "alias", messages.ALIAS_INVALID),
        ({k: v for k, v in NEW_TYPE.items() if k != "alias"}, "alias", messages.FIELD_REQUIRED),
        ({k: v for k, v in NEW_TYPE.items() if k != "name"}, "name", messages.FIELD_REQUIRED),
        ({**NEW_TYPE, "name": "  "}, "name", messages.FIELD_REQUIRED),
        ({**NEW_TYPE, "name": "a\x00b"}, "name", messages.FIELD_NUL),
        ({**NEW_TYPE, "cardinality": "two"}, "cardinality", messages.CARDINALITY_INVALID),
        ({**NEW_TYPE, "childObjectType": "article"}, "childObjectType", messages.OBJECT_TYPE_INVALID),
        ({**NEW_TYPE, "isDependency": "yes"}, "isDependency", messages.FIELD_NOT_BOOLEAN),
        ({**NEW_TYPE, "colour": "red"}, "colour", messages.FIELD_UNKNOWN),
    ],
)
async def test_create_validation(
    client: httpx.AsyncClient, project: Project, body: dict[str, object], field: str, message: str
) -> None:
    response = await client.post("/relation/type", json=body, headers=project.headers)
    assert response.status_code == 422, response.text
    error = error_of(response)
    assert error["code"] == "ValidationFailed"
    assert error["message"] == messages.RELATION_TYPE_INVALID
    assert message in error["details"]["errors"][field]


async def test_duplicate_alias(client: httpx.AsyncClient, project: Project) -> None:
    assert (await client.post("/relation/type", json=NEW_TYPE, headers=project.headers)).status_code == 201
    again = await client.post("/relation/type", json=NEW_TYPE, headers=project.headers)
    assert again.status_code == 422
    assert error_of(again)["details"]["errors"]["alias"] == [messages.RELATION_TYPE_DUPLICATE]


async def test_alias_is_immutable(client: httpx.AsyncClient, project: Project) -> None:
    await client.post("/relation/type", json=NEW_TYPE, headers=project.headers)
    response = await client.put(
        "/relation/type/relatedArticles", json={"alias": "other"}, headers=project.headers
    )
    assert response.status_code == 422
    assert error_of(response)["details"]["errors"]["alias"] == [messages.FIELD_IMMUTABLE]


async def test_update_unknown_is_404(client: httpx.AsyncClient, project: Project) -> None:
    response = await client.put("/relation/type/nope", json={"name": "x"}, headers=project.headers)
    assert response.status_code == 404


async def relate(
    client: httpx.AsyncClient, project: Project, alias: str, parent: str, child: str
) -> httpx.Response:
    body = {"parentId": parent, "childId": child, "relationTypeAlias": alias}
    return await client.post("/relation", json=body, headers=project.headers)


async def test_cardinality_one_refused_while_a_parent_has_several(
    client: httpx.AsyncClient, project: Project
) -> None:
    await client.post("/relation/type", json=NEW_TYPE, headers=project.headers)
    parent = guid()
    await relate(client, project, "relatedArticles", parent, guid())
    await relate(client, project, "relatedArticles", parent, guid())
    refused = await client.put(
        "/relation/type/relatedArticles", json={"cardinality": "one"}, headers=project.headers
    )
    assert refused.status_code == 422
    assert error_of(refused)["details"]["errors"]["cardinality"] == [messages.CARDINALITY_ONE_CONFLICT]
    await client.delete(f"/relation/parent/{parent}", headers=project.headers)
    await relate(client, project, "relatedArticles", parent, guid())
    allowed = await client.put(
        "/relation/type/relatedArticles", json={"cardinality": "one"}, headers=project.headers
    )
    assert allowed.status_code == 200 and allowed.json()["cardinality"] == "one"


async def test_cardinality_one_refuses_a_second_child(client: httpx.AsyncClient, project: Project) -> None:
    await client.post("/relation/type", json={**NEW_TYPE, "cardinality": "one"}, headers=project.headers)
    parent, first = guid(), guid()
    assert (await relate(client, project, "relatedArticles", parent, first)).status_code == 201
    second = await relate(client, project, "relatedArticles", parent, guid())
    assert second.status_code == 422
    assert error_of(second)["details"]["errors"]["childId"] == [
        messages.CARDINALITY_ONE_TAKEN.format(alias="relatedArticles")
    ]
    duplicate = await relate(client, project, "relatedArticles", parent, first)
    assert error_of(duplicate)["details"]["errors"]["childId"] == [messages.RELATION_DUPLICATE]
    other_parent = await relate(client, project, "relatedArticles", guid(), first)
    assert other_parent.status_code == 201


async def test_delete_rules(client: httpx.AsyncClient, project: Project) -> None:
    builtin = await client.delete("/relation/type/umbMedia", headers=project.headers)
    assert builtin.status_code == 409
    assert error_of(builtin)["message"] == messages.RELATION_TYPE_BUILTIN.format(alias="umbMedia")

    await client.post("/relation/type", json=NEW_TYPE, headers=project.headers)
    parent = guid()
    await relate(client, project, "relatedArticles", parent, guid())
    in_use = await client.delete("/relation/type/relatedArticles", headers=project.headers)
    assert in_use.status_code == 409
    assert error_of(in_use)["message"] == messages.RELATION_TYPE_IN_USE.format(
        alias="relatedArticles", count=1
    )
    assert (await client.get("/relation/type/relatedArticles", headers=project.headers)).status_code == 200

    forced = await client.delete("/relation/type/relatedArticles?force=true", headers=project.headers)
    assert forced.status_code == 200 and forced.json()["alias"] == "relatedArticles"
    assert (await client.get("/relation/type/relatedArticles", headers=project.headers)).status_code == 404
    left = await client.get(f"/relation/parent/{parent}", headers=project.headers)
    assert left.json()["_totalItems"] == 0


async def test_delete_unused_and_unknown(client: httpx.AsyncClient, project: Project) -> None:
    await client.post("/relation/type", json=NEW_TYPE, headers=project.headers)
    assert (await client.delete("/relation/type/relatedArticles", headers=project.headers)).status_code == 200
    assert (await client.delete("/relation/type/relatedArticles", headers=project.headers)).status_code == 404
    bad_force = await client.delete("/relation/type/x?force=maybe", headers=project.headers)
    assert bad_force.status_code == 400


async def test_types_need_their_scope(client: httpx.AsyncClient, project: Project) -> None:
    writer = await project.key("relations:read", "relations:write")
    response = await client.post("/relation/type", json=NEW_TYPE, headers={"Api-Key": writer})
    assert response.status_code == 403
    assert error_of(response) == {"code": "Forbidden", "message": messages.FORBIDDEN}


async def test_delete_of_a_type_that_gained_relations_is_409(
    client: httpx.AsyncClient, db: Database, project: Project
) -> None:
    """The foreign key has the last word: a relation the count did not see makes the delete a 409, not
    a 500 (queries.delete without `force`, as the route calls it after counting)."""
    created = await client.post(
        "/relation",
        json={"parentId": guid(), "childId": guid(), "relationTypeAlias": "relateDocumentOnCopy"},
        headers=project.headers,
    )
    assert created.status_code == 201
    with pytest.raises(Conflict) as refused:
        async with db.transaction():
            await type_queries.delete(db, project=project.alias, alias="relateDocumentOnCopy", force=False)
    assert refused.value.message == messages.RELATION_TYPE_GAINED_RELATIONS.format(
        alias="relateDocumentOnCopy"
    )
