"""GET /relation/export and POST /relation/import (service/bulk): the round trip, merging into a
project that has relations, counts, rules, limits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import httpx

from service import messages
from service.app import create_app
from service.settings import Settings
from tests.bulk.helpers import children, export, ndjson, relation, relation_type, upload
from tests.conftest import MakeProject, Project, error_of, guid


async def post(
    client: httpx.AsyncClient, project: Project, parent: str, child: str, alias: str, comment: str = ""
) -> dict:
    answer = await client.post(
        "/relation",
        json={"parentId": parent, "childId": child, "relationTypeAlias": alias, "comment": comment},
        headers=project.headers,
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


def without_ids(lines: list[dict]) -> list[dict]:
    """Lines compared across projects: relation ids differ, and so do the built-in types' dates
    (each project made its own)."""
    out = []
    for line in lines:
        if "relation" in line:
            out.append({"relation": {k: v for k, v in line["relation"].items() if k != "_id"}})
        else:
            out.append(
                {
                    "relationType": {
                        k: v
                        for k, v in line["relationType"].items()
                        if k not in ("_createDate", "_updateDate")
                    }
                }
            )
    return out


async def test_round_trip(client: httpx.AsyncClient, make_project: MakeProject) -> None:
    source, target = await make_project(), await make_project()
    created = await client.post(
        "/relation/type",
        json={"alias": "seeAlso", "name": "See also", "parentObjectType": "DOCUMENT", "cardinality": "many"},
        headers=source.headers,
    )
    assert created.status_code == 201, created.text
    parents = [guid() for _ in range(3)]
    for parent in parents:
        for index in range(4):
            await post(client, source, parent, guid(), "seeAlso", comment=f'c{index} "quoted" ünï \\ \n')
        await post(client, source, parent, guid(), "umbDocument")
    # a list whose order was edited (a midpoint position) and one child moved to the start
    members = await children(client, source, parents[0], "seeAlso")
    moved = await client.patch(
        f"/relation/parent/{parents[0]}/seeAlso",
        json={"connect": [{"id": members[2], "position": {"start": True}}]},
        headers=source.headers,
    )
    assert moved.status_code == 200, moved.text

    first = await export(client, source)
    types = [line for line in first if "relationType" in line]
    relations = [line for line in first if "relation" in line]
    assert first[: len(types)] == types, "types come first"
    assert [t["relationType"]["alias"] for t in types] == sorted(t["relationType"]["alias"] for t in types)
    assert len(relations) == 15
    keys = [(r["relation"]["relationTypeAlias"], r["relation"]["parentId"]) for r in relations]
    assert keys == sorted(keys), "relations by type, then parent"
    in_list = [
        r["relation"]["childId"]
        for r in relations
        if r["relation"]["parentId"] == parents[0] and r["relation"]["relationTypeAlias"] == "seeAlso"
    ]
    assert in_list == await children(client, source, parents[0], "seeAlso")

    body = b"".join(
        line + b"\n"
        for line in (await client.get("/relation/export", headers=source.headers)).content.splitlines()
    )
    imported = await upload(client, target, body)
    assert imported.status_code == 200, imported.text
    assert imported.json() == {
        "relationTypes": {"created": 1, "updated": 0, "unchanged": 6},
        "relations": {"created": 15, "updated": 0, "unchanged": 0},
    }
    second = await export(client, target)
    assert without_ids(second) == without_ids(first)
    see_also = next(t for t in second if t.get("relationType", {}).get("alias") == "seeAlso")
    assert see_also == next(t for t in first if t.get("relationType", {}).get("alias") == "seeAlso"), (
        "the type keeps _id and dates"
    )

    again = await upload(client, target, body)
    assert again.json() == {
        "relationTypes": {"created": 0, "updated": 0, "unchanged": 7},
        "relations": {"created": 0, "updated": 0, "unchanged": 15},
    }
    assert await export(client, target) == second, "importing the same file twice changes nothing"


async def test_import_into_a_project_with_relations(client: httpx.AsyncClient, project: Project) -> None:
    parent, other = guid(), guid()
    a, b, c, d, e = (guid() for _ in range(5))
    kept = {
        child: await post(client, project, parent, child, "umbDocument", comment="old") for child in (a, b, c)
    }
    before = await client.get(f"/relation/parent/{parent}/umbDocument", headers=project.headers)
    body = ndjson(
        relation(parent, a, comment="old"),
        relation(parent, b, comment="new"),
        relation(parent, d),
        relation(other, e, alias="umbMedia"),
    )
    imported = await upload(client, project, body)
    assert imported.status_code == 200, imported.text
    assert imported.json()["relations"] == {"created": 2, "updated": 1, "unchanged": 1}
    # the file's order, then the members it does not name
    assert await children(client, project, parent, "umbDocument") == [a, b, d, c]
    listed = await client.get(f"/relation/parent/{parent}/umbDocument", headers=project.headers)
    assert listed.json()["_totalItems"] == 4, "the list's counter saw the inserted row"
    assert listed.headers["etag"] != before.headers["etag"]
    by_child = {item["childId"]: item for item in listed.json()["_embedded"]["relations"]}
    for child, original in kept.items():
        assert by_child[child]["_id"] == original["_id"], "existing relations keep their ids"
    assert by_child[b]["comment"] == "new" and by_child[a]["comment"] == "old"
    assert by_child[d]["comment"] == ""
    assert await children(client, project, other, "umbMedia") == [e]

    # Reordering moves members: each one whose place among the old members changed is updated.
    moved = await upload(client, project, ndjson(relation(parent, c), relation(parent, a, comment="old")))
    assert moved.json()["relations"] == {"created": 0, "updated": 2, "unchanged": 0}
    assert await children(client, project, parent, "umbDocument") == [c, a, b, d]
    # The API still edits the imported list as usual (positions are gapped).
    connect = await client.patch(
        f"/relation/parent/{parent}/umbDocument",
        json={"connect": [{"id": e, "position": {"after": c}}]},
        headers=project.headers,
    )
    assert connect.status_code == 200, connect.text
    assert await children(client, project, parent, "umbDocument") == [c, e, a, b, d]


async def test_types_are_created_updated_and_kept(client: httpx.AsyncClient, project: Project) -> None:
    type_id = "4cbeb612-e689-3563-b755-bf3ede295433"
    body = ndjson(
        relation_type("tags", "Tags", _id=type_id.upper(), cardinality="many", childObjectType="TAG"),
        relation_type("umbMedia", "Related Media", isDependency=True),
        relation_type("umbDocument", "Documents", isDependency=True),
        relation(guid(), guid(), alias="tags"),
    )
    imported = await upload(client, project, body)
    assert imported.status_code == 200, imported.text
    assert imported.json()["relationTypes"] == {"created": 1, "updated": 1, "unchanged": 1}
    tags = (await client.get("/relation/type/tags", headers=project.headers)).json()
    assert tags["_id"] == type_id and tags["childObjectType"] == "TAG"
    renamed = (await client.get("/relation/type/umbDocument", headers=project.headers)).json()
    assert renamed["name"] == "Documents"


async def test_every_kind_of_bad_line(client: httpx.AsyncClient, project: Project) -> None:
    await post(client, project, guid(), guid(), "umbDocument")
    before = await export(client, project)
    parent, child = guid(), guid()
    lines = [
        relation(guid(), guid()),  # 1: fine
        "{not json",  # 2
        "[1, 2]",  # 3
        {"relation": relation(guid(), guid())["relation"], "relationType": {}},  # 4: two keys
        {"relations": {}},  # 5: unknown key
        {"relation": "x"},  # 6
        relation("not-a-guid", guid()),  # 7
        {"relation": {"childId": guid(), "relationTypeAlias": "umbDocument"}},  # 8: no parentId
        relation(guid(), guid(), alias="1bad"),  # 9
        relation(guid(), guid(), alias="export"),  # 10: reserved
        relation(guid(), guid(), comment="x" * 1001),  # 11
        relation(guid(), guid(), comment=5),  # 12
        relation(guid(), guid(), colour="red"),  # 13: unknown field
        relation(guid(), guid(), _createDate="yesterday"),  # 14
        relation(guid(), guid(), alias="noSuchType"),  # 15
        relation(parent, child),  # 16
        relation(parent, child.upper()),  # 17: the same relation again
        relation_type("bad type"),  # 18
        {"relationType": {"alias": "fine"}},  # 19: no name
        relation_type("okType", cardinality="several"),  # 20
        relation_type("okType"),  # 21: fine
        relation_type("okType"),  # 22: again
        "",  # 23: blank lines are skipped
        relation(guid(), guid(), comment="nul \x00"),  # 24
    ]
    answer = await upload(client, project, ndjson(*lines))
    assert answer.status_code == 422, answer.text
    error = error_of(answer)
    assert error["code"] == "ValidationFailed" and error["message"] == messages.RELATION_INVALID
    errors = error["details"]["errors"]
    field = messages.LINE_FIELD.format
    assert errors == {
        "line 2": [messages.LINE_NOT_JSON],
        "line 3": [messages.LINE_SHAPE],
        "line 4": [messages.LINE_SHAPE],
        "line 5": [messages.LINE_SHAPE],
        "line 6": [messages.LINE_NOT_OBJECT.format(kind="relation")],
        "line 7": [field(kind="relation", field="parentId", message=messages.FIELD_NOT_GUID)],
        "line 8": [field(kind="relation", field="parentId", message=messages.FIELD_REQUIRED)],
        "line 9": [field(kind="relation", field="relationTypeAlias", message=messages.ALIAS_INVALID)],
        "line 10": [
            field(
                kind="relation",
                field="relationTypeAlias",
                message=messages.ALIAS_RESERVED.format(alias="export"),
            )
        ],
        "line 11": [
            field(kind="relation", field="comment", message=messages.FIELD_TOO_LONG.format(limit=1000))
        ],
        "line 12": [field(kind="relation", field="comment", message=messages.FIELD_NOT_STRING)],
        "line 13": [field(kind="relation", field="colour", message=messages.FIELD_UNKNOWN)],
        "line 14": [field(kind="relation", field="_createDate", message=messages.LINE_NOT_DATE)],
        "line 15": [
            field(
                kind="relation",
                field="relationTypeAlias",
                message=messages.RELATION_TYPE_UNKNOWN.format(alias="noSuchType"),
            )
        ],
        "line 17": [messages.LINE_DUPLICATE.format(line=16)],
        "line 18": [field(kind="relationType", field="alias", message=messages.ALIAS_INVALID)],
        "line 19": [field(kind="relationType", field="name", message=messages.FIELD_REQUIRED)],
        "line 20": [field(kind="relationType", field="cardinality", message=messages.CARDINALITY_INVALID)],
        "line 22": [messages.LINE_TYPE_DUPLICATE.format(alias="okType", line=21)],
        "line 24": [field(kind="relation", field="comment", message=messages.FIELD_NUL)],
    }
    assert await export(client, project) == before, "nothing was stored"


async def test_cardinality_one(client: httpx.AsyncClient, project: Project) -> None:
    parent, taken = guid(), guid()
    answer = await upload(
        client,
        project,
        ndjson(
            relation_type("onlyOne", cardinality="one"),
            relation(parent, guid(), "onlyOne"),
            relation(parent, guid(), "onlyOne"),
        ),
    )
    assert answer.status_code == 422, answer.text
    message = messages.LINE_FIELD.format(
        kind="relation", field="childId", message=messages.CARDINALITY_ONE_TAKEN.format(alias="onlyOne")
    )
    assert error_of(answer)["details"]["errors"] == {"line 3": [message]}
    assert (await client.get("/relation/type/onlyOne", headers=project.headers)).status_code == 404

    created = await upload(
        client,
        project,
        ndjson(relation_type("onlyOne", cardinality="one"), relation(parent, taken, "onlyOne")),
    )
    assert created.status_code == 200, created.text
    again = await upload(
        client, project, ndjson(relation(parent, taken, "onlyOne", comment="same child: fine"))
    )
    assert again.json()["relations"] == {"created": 0, "updated": 1, "unchanged": 0}
    other = await upload(client, project, ndjson(relation(parent, guid(), "onlyOne")))
    assert error_of(other)["details"]["errors"] == {"line 1": [message]}

    several = guid()
    for _ in range(2):
        await post(client, project, several, guid(), "umbMember")
    tightened = await upload(
        client,
        project,
        ndjson(relation_type("umbMember", "Related Member", isDependency=True, cardinality="one")),
    )
    assert error_of(tightened)["details"]["errors"] == {
        "line 1": [
            messages.LINE_FIELD.format(
                kind="relationType", field="cardinality", message=messages.CARDINALITY_ONE_CONFLICT
            )
        ]
    }


async def test_at_most_a_hundred_problems(client: httpx.AsyncClient, project: Project) -> None:
    answer = await upload(client, project, b"nope\n" * 250)
    errors = error_of(answer)["details"]["errors"]
    assert list(errors) == [f"line {n}" for n in range(1, 101)]


async def test_scopes(client: httpx.AsyncClient, project: Project) -> None:
    writer = {"Api-Key": await project.key("relations:read", "relations:write")}
    reader = {"Api-Key": await project.key("relations:read")}
    new_type = ndjson(relation_type("fresh"), relation(guid(), guid(), "fresh"))
    assert (await upload(client, project, new_type, headers=writer)).status_code == 403
    assert (
        await upload(client, project, ndjson(relation(guid(), guid())), headers=reader)
    ).status_code == 403
    plain = await upload(
        client,
        project,
        ndjson(relation_type("umbMedia", "Related Media", isDependency=True), relation(guid(), guid())),
        headers=writer,
    )
    assert plain.status_code == 200, "an unchanged type needs no relation-types:write"
    assert (await client.get("/relation/export", headers=reader)).status_code == 200


async def test_request_problems(client: httpx.AsyncClient, project: Project) -> None:
    wrong = await client.post(
        "/relation/import",
        content=ndjson(relation(guid(), guid())),
        headers={**project.headers, "Content-Type": "application/json"},
    )
    assert wrong.status_code == 415 and error_of(wrong)["message"] == messages.IMPORT_MEDIA_TYPE
    empty = await upload(client, project, b"")
    assert empty.status_code == 400 and error_of(empty)["message"] == messages.EMPTY_BODY
    unknown = await client.get("/relation/export", params={"relationType": "nope"}, headers=project.headers)
    assert unknown.status_code == 404
    assert error_of(unknown)["message"] == messages.RELATION_TYPE_NOT_FOUND.format(alias="nope")
    # a body larger than the general limit (1 MiB) is fine here: the import has its own
    big = ndjson(*(relation(guid(), guid(), comment="x" * 900) for _ in range(1500)))
    assert len(big) > 1024 * 1024
    assert (await upload(client, project, big)).status_code == 200


async def test_truncated_upload(client: httpx.AsyncClient, project: Project) -> None:
    whole = ndjson(relation(guid(), guid()), relation(guid(), guid()))
    cut = await upload(client, project, whole[:-20])
    assert cut.status_code == 422
    assert error_of(cut)["details"]["errors"] == {"line 2": [messages.LINE_NOT_JSON]}
    assert [line for line in await export(client, project) if "relation" in line] == []


async def test_export_of_one_type(client: httpx.AsyncClient, project: Project) -> None:
    await post(client, project, guid(), guid(), "umbMedia")
    await post(client, project, guid(), guid(), "umbDocument")
    lines = await export(client, project, relationType="umbMedia")
    assert [next(iter(line)) for line in lines] == ["relationType", "relation"]
    assert lines[1]["relation"]["relationTypeAlias"] == "umbMedia"


async def test_export_line_is_the_representation(client: httpx.AsyncClient, project: Project) -> None:
    created = await post(client, project, guid(), guid(), "umbMedia", comment='tab\t "q" \\ é 😀 \x01')
    fetched = (await client.get(f"/relation/{created['_id']}", headers=project.headers)).json()
    del fetched["_links"]
    lines = await export(client, project)
    assert lines[-1] == {"relation": fetched}
    types = (await client.get("/relation/type", headers=project.headers)).json()["_embedded"]["relationtypes"]
    for item in types:
        del item["_links"]
    assert [line["relationType"] for line in lines[:-1]] == types


async def test_the_import_has_its_own_body_limit(settings: Settings, project: Project) -> None:
    small = create_app(replace(settings, import_max_bytes=2000))
    async with small.router.lifespan_context(small):
        transport = httpx.ASGITransport(app=small)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            fits = ndjson(*(relation(guid(), guid()) for _ in range(10)))
            assert len(fits) < 2000
            assert (await upload(http, project, fits)).status_code == 200
            big = ndjson(*(relation(guid(), guid()) for _ in range(30)))

            async def streamed() -> AsyncIterator[bytes]:  # no Content-Length: cut off while read
                for start in range(0, len(big), 500):
                    yield big[start : start + 500]

            for body in (big, streamed()):
                answer = await http.post(
                    "/relation/import",
                    content=body,
                    headers={**project.headers, "Content-Type": "application/x-ndjson"},
                )
                assert answer.status_code == 413, answer.text
                assert error_of(answer)["message"] == messages.BODY_TOO_LARGE.format(limit=2000)
            lines = await export(http, project)
    assert len([line for line in lines if "relation" in line]) == 10, "nothing of the large ones was stored"
