"""`/relation/parent/{guid}/{alias}` over HTTP: every rule and error of SPEC §6."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from service import messages
from service.child_lists.bodies import MAX_ITEMS
from tests.child_lists.helpers import JSON_API, call, children, listing, path
from tests.conftest import Project, error_of, guid


async def seed(
    client: httpx.AsyncClient, project: Project, parent: str, count: int, alias: str = "umbDocument"
) -> list[str]:
    ids = [guid() for _ in range(count)]
    response = await call(client, project, "PATCH", parent, {"connect": ids}, alias=alias)
    assert response.status_code == 200, response.text
    return ids


def changes(response: httpx.Response) -> dict[str, int]:
    assert response.status_code == 200, response.text
    result: dict[str, int] = response.json()["_changes"]
    return result


def invalid(response: httpx.Response) -> dict[str, list[str]]:
    assert response.status_code == 422, response.text
    error = error_of(response)
    assert error["code"] == "ValidationFailed"
    errors: dict[str, list[str]] = error["details"]["errors"]
    return errors


async def make_type(client: httpx.AsyncClient, project: Project, **fields: Any) -> str:
    alias = fields.setdefault("alias", "t" + guid().replace("-", "")[:12])
    fields.setdefault("name", alias)
    created = await client.post("/relation/type", json=fields, headers=project.headers)
    assert created.status_code == 201, created.text
    return str(alias)


# --- GET ---


async def test_get_is_ordered_paged_and_has_an_etag(client: httpx.AsyncClient, project: Project) -> None:
    parent = guid()
    ids = await seed(client, project, parent, 5)
    response = await client.get(path(parent) + "?pageSize=2&page=2", headers=project.headers)
    assert response.status_code == 200
    body = response.json()
    assert children(response) == ids[2:4]
    assert (body["_totalItems"], body["_totalPages"], body["_page"], body["_pageSize"]) == (5, 3, 2, 2)
    assert set(body["_links"]) == {"self", "relations", "page", "next", "prev"}
    assert body["_embedded"]["relations"][0]["parentId"] == parent
    assert response.headers["etag"].startswith('"')
    again = await client.get(path(parent), headers=project.headers)
    assert again.headers["etag"] == response.headers["etag"]


async def test_get_of_an_empty_list(client: httpx.AsyncClient, project: Project) -> None:
    response = await client.get(path(guid()), headers=project.headers)
    body = response.json()
    assert (body["_totalItems"], body["_totalPages"], body["_embedded"]) == (0, 0, {"relations": []})


async def test_unknown_type_is_404(client: httpx.AsyncClient, project: Project) -> None:
    for method in ("GET", "PATCH"):
        response = await call(
            client, project, method, guid(), {"connect": []} if method == "PATCH" else None, alias="nope"
        )
        assert response.status_code == 404
        assert error_of(response) == {
            "code": "NotFound",
            "message": messages.RELATION_TYPE_NOT_FOUND.format(alias="nope"),
        }


async def test_scopes(client: httpx.AsyncClient, project: Project) -> None:
    parent = guid()
    reader = {"Api-Key": await project.key("relations:read")}
    writer = {"Api-Key": await project.key("relations:write")}
    assert (await client.get(path(parent), headers=reader)).status_code == 200
    assert (await client.get(path(parent), headers=writer)).status_code == 403
    denied = await client.patch(path(parent), json={"connect": [guid()]}, headers=reader)
    assert denied.status_code == 403
    assert error_of(denied)["code"] == "Forbidden"
    assert (await client.patch(path(parent), json={"connect": [guid()]}, headers=writer)).status_code == 200


# --- connect ---


async def test_positions(client: httpx.AsyncClient, project: Project) -> None:
    parent = guid()
    a, b, c, d, e = (guid() for _ in range(5))
    await seed_ids(client, project, parent, [a, b])
    body = {
        "connect": [
            {"id": c, "position": {"before": b}},
            {"id": d, "position": {"start": True}},
            {"id": e, "position": {"after": a}},
        ]
    }
    response = await call(client, project, "PATCH", parent, body)
    assert children(response) == [d, a, e, c, b]
    assert changes(response) == {"added": 3, "removed": 0, "moved": 0}
    response = await call(
        client, project, "PATCH", parent, {"connect": [{"id": b, "position": {"end": True}}, a]}
    )
    assert children(response) == [d, e, c, b, a]
    assert changes(response) == {"added": 0, "removed": 0, "moved": 4}


async def seed_ids(
    client: httpx.AsyncClient, project: Project, parent: str, ids: list[str], alias: str = "umbDocument"
) -> None:
    response = await call(client, project, "PATCH", parent, {"connect": ids}, alias=alias)
    assert response.status_code == 200, response.text


async def test_an_existing_id_without_position_moves_to_the_end(
    client: httpx.AsyncClient, project: Project
) -> None:
    parent = guid()
    a, b, c = await seed(client, project, parent, 3)
    response = await call(client, project, "PATCH", parent, {"connect": [a]})
    assert children(response) == [b, c, a]
    assert changes(response) == {"added": 0, "removed": 0, "moved": 3}


async def test_identical_items_collapse(client: httpx.AsyncClient, project: Project) -> None:
    parent, a, b = guid(), guid(), guid()
    response = await call(
        client, project, "PATCH", parent, {"connect": [a, b, {"id": a.upper(), "position": {"end": True}}]}
    )
    assert children(response) == [a, b]
    assert changes(response)["added"] == 2


async def test_one_id_with_two_positions_is_422(client: httpx.AsyncClient, project: Project) -> None:
    parent, a = guid(), guid()
    response = await call(
        client, project, "PATCH", parent, {"connect": [a, {"id": a, "position": {"start": True}}]}
    )
    assert invalid(response) == {"connect[1]": [messages.LIST_DUPLICATE_ITEM.format(id=a)]}
    assert await listing(client, project, parent) == []


async def test_self_anchor_is_422_also_for_a_member(client: httpx.AsyncClient, project: Project) -> None:
    parent = guid()
    (a,) = await seed(client, project, parent, 1)
    response = await call(
        client, project, "PATCH", parent, {"connect": [{"id": a, "position": {"after": a}}]}
    )
    assert invalid(response) == {
        "connect[0].position": [messages.LIST_SELF_ANCHOR.format(id=a, relation="after")]
    }


async def test_missing_anchor(client: httpx.AsyncClient, project: Project) -> None:
    parent = guid()
    (a,) = await seed(client, project, parent, 1)
    b, ghost = guid(), guid()
    body: dict[str, Any] = {"connect": [{"id": b, "position": {"before": ghost}}]}
    response = await call(client, project, "PATCH", parent, body)
    message = messages.LIST_ANCHOR_MISSING.format(id=b, relation="before", anchor=ghost)
    assert invalid(response) == {"connect[0].position": [message]}
    response = await call(client, project, "PATCH", parent, {**body, "options": {"strict": False}})
    assert children(response) == [a, b]


async def test_cycle_is_422_naming_the_ids(client: httpx.AsyncClient, project: Project) -> None:
    parent, a, b = guid(), guid(), guid()
    body = {"connect": [{"id": a, "position": {"before": b}}, {"id": b, "position": {"after": a}}]}
    response = await call(client, project, "PATCH", parent, body)
    assert invalid(response) == {"connect": [messages.LIST_ANCHOR_CYCLE.format(ids=f"'{a}', '{b}'")]}


async def test_anchor_connected_later_applies_first(client: httpx.AsyncClient, project: Project) -> None:
    parent = guid()
    (x,) = await seed(client, project, parent, 1)
    a, b, c = guid(), guid(), guid()
    body = {
        "connect": [
            {"id": a, "position": {"after": b}},  # b is new and comes later: b applies first
            {"id": c, "position": {"start": True}},
            {"id": b, "position": {"before": x}},
        ]
    }
    response = await call(client, project, "PATCH", parent, body)
    assert children(response) == [c, b, a, x]


async def test_disconnect_applies_first(client: httpx.AsyncClient, project: Project) -> None:
    parent = guid()
    a, b, c = await seed(client, project, parent, 3)
    before = {
        r["childId"]: r["_id"]
        for r in (await client.get(path(parent), headers=project.headers)).json()["_embedded"]["relations"]
    }
    body = {"connect": [{"id": a, "position": {"after": c}}], "disconnect": [a, b, guid()]}
    response = await call(client, project, "PATCH", parent, body)
    assert children(response) == [c, a]
    assert changes(response) == {"added": 0, "removed": 1, "moved": 2}
    after = {r["childId"]: r["_id"] for r in response.json()["_embedded"]["relations"]}
    assert after[a] == before[a]  # still the same relation


async def test_anchor_removed_by_disconnect_is_missing(client: httpx.AsyncClient, project: Project) -> None:
    parent = guid()
    a, _ = await seed(client, project, parent, 2)
    body = {"connect": [{"id": guid(), "position": {"before": a}}], "disconnect": [a]}
    assert (await call(client, project, "PATCH", parent, body)).status_code == 422


async def test_comments(client: httpx.AsyncClient, project: Project) -> None:
    parent, a, b = guid(), guid(), guid()
    await call(client, project, "PATCH", parent, {"connect": [{"id": a, "comment": "first"}, b]})
    response = await call(
        client, project, "PATCH", parent, {"connect": [{"id": a, "position": {"end": True}}]}
    )
    assert [r["comment"] for r in response.json()["_embedded"]["relations"]] == ["", "first"]
    response = await call(client, project, "PUT", parent, [{"id": a, "comment": "new"}])
    assert [r["comment"] for r in response.json()["_embedded"]["relations"]] == ["new"]


async def test_too_many_items_is_422(client: httpx.AsyncClient, project: Project) -> None:
    ids = [guid() for _ in range(MAX_ITEMS + 1)]
    limit = [messages.LIST_TOO_MANY_ITEMS.format(limit=MAX_ITEMS)]
    assert invalid(await call(client, project, "PATCH", guid(), {"connect": ids})) == {"connect": limit}
    assert invalid(await call(client, project, "PUT", guid(), ids)) == {"set": limit}
    assert invalid(await call(client, project, "POST", guid(), ids)) == {"items": limit}
    assert (await call(client, project, "PATCH", guid(), {"connect": ids[:MAX_ITEMS]})).status_code == 200


# --- set ---


async def test_set_replaces_in_order(client: httpx.AsyncClient, project: Project) -> None:
    parent = guid()
    a, _b, c = await seed(client, project, parent, 3)
    d = guid()
    for method, body in (("PUT", {"set": [c, d, a, c]}), ("PATCH", [c, d, a])):
        response = await call(client, project, method, parent, body)
        assert children(response) == [c, d, a]
    response = await call(client, project, "PUT", parent, {"set": [a, c]})
    assert changes(response) == {"added": 0, "removed": 1, "moved": 2}


async def test_first_set_reports_its_changes(client: httpx.AsyncClient, project: Project) -> None:
    parent = guid()
    a, _b, c = await seed(client, project, parent, 3)
    response = await call(client, project, "PUT", parent, [c, guid(), a])
    assert changes(response) == {"added": 1, "removed": 1, "moved": 2}


async def test_set_with_connect_is_400(client: httpx.AsyncClient, project: Project) -> None:
    response = await call(client, project, "PATCH", guid(), {"set": [guid()], "connect": [guid()]})
    assert response.status_code == 400
    assert error_of(response)["message"] == messages.LIST_SET_WITH_CONNECT


async def test_position_in_set_is_422(client: httpx.AsyncClient, project: Project) -> None:
    response = await call(
        client, project, "PUT", guid(), {"set": [{"id": guid(), "position": {"start": True}}]}
    )
    assert invalid(response) == {"set[0].position": [messages.LIST_POSITION_NOT_ALLOWED]}


@pytest.mark.parametrize(
    ("method", "body", "status"),
    [
        ("PATCH", {"connect": "x"}, 400),
        ("PATCH", {"other": []}, 400),
        ("PATCH", {"connect": [], "options": {"strict": "no"}}, 400),
        ("PATCH", "text", 400),
        ("PATCH", {"connect": ["not-a-guid"]}, 422),
        ("PATCH", {"connect": [{"id": "a"}]}, 422),
        (
            "PATCH",
            {"connect": [{"id": "00000000-0000-0000-0000-000000000001", "position": {"first": True}}]},
            422,
        ),
        ("PATCH", {"connect": [{"id": "00000000-0000-0000-0000-000000000001", "extra": 1}]}, 422),
        (
            "PATCH",
            {"disconnect": [{"id": "00000000-0000-0000-0000-000000000001", "position": {"start": True}}]},
            422,
        ),
        ("PUT", {"connect": []}, 400),
        ("POST", {"set": []}, 400),
        ("DELETE", {"disconnect": []}, 400),
        ("PATCH", [1], 422),
    ],
)
async def test_malformed_bodies(
    client: httpx.AsyncClient, project: Project, method: str, body: Any, status: int
) -> None:
    response = await call(client, project, method, guid(), body)
    assert response.status_code == status, response.text


async def test_empty_or_unreadable_body(client: httpx.AsyncClient, project: Project) -> None:
    target = path(guid())
    empty = await client.patch(target, headers=project.headers)
    assert empty.status_code == 400 and error_of(empty)["message"] == messages.EMPTY_BODY
    broken = await client.patch(
        target, content=b"{", headers={**project.headers, "Content-Type": "application/json"}
    )
    assert broken.status_code == 400
    text = await client.patch(
        target, content=b"[]", headers={**project.headers, "Content-Type": "text/plain"}
    )
    assert text.status_code == 415


# --- add and remove ---


async def test_post_adds_and_leaves_members_in_place(client: httpx.AsyncClient, project: Project) -> None:
    parent = guid()
    a, b = await seed(client, project, parent, 2)
    c, d = guid(), guid()
    response = await call(client, project, "POST", parent, [c, a, d])
    assert children(response) == [a, b, c, d]
    assert changes(response) == {"added": 2, "removed": 0, "moved": 0}
    e = guid()
    response = await call(
        client,
        project,
        "POST",
        parent,
        {"connect": [{"id": e, "position": {"before": b}}, {"id": a, "position": {"end": True}}]},
    )
    assert children(response) == [a, e, b, c, d]
    assert changes(response) == {"added": 1, "removed": 0, "moved": 0}


async def test_delete_removes_or_clears(client: httpx.AsyncClient, project: Project) -> None:
    parent = guid()
    a, b, c = await seed(client, project, parent, 3)
    response = await call(client, project, "DELETE", parent, [b, guid()])
    assert children(response) == [a, c]
    assert changes(response) == {"added": 0, "removed": 1, "moved": 0}
    response = await call(client, project, "DELETE", parent, None)
    assert children(response) == []
    assert changes(response) == {"added": 0, "removed": 2, "moved": 0}


async def test_single_create_appends_and_single_delete_keeps_order(
    client: httpx.AsyncClient, project: Project
) -> None:
    parent = guid()
    a, b, c = await seed(client, project, parent, 3)
    await call(client, project, "PATCH", parent, {"connect": [{"id": c, "position": {"start": True}}]})
    d = guid()
    created = await client.post(
        "/relation",
        json={"parentId": parent, "childId": d, "relationTypeAlias": "umbDocument"},
        headers=project.headers,
    )
    assert created.status_code == 201
    assert await listing(client, project, parent) == [c, a, b, d]
    page = (await client.get(path(parent), headers=project.headers)).json()["_embedded"]["relations"]
    assert (await client.delete(f"/relation/{page[1]['_id']}", headers=project.headers)).status_code == 200
    assert await listing(client, project, parent) == [c, b, d]


# --- cardinality one ---


async def test_cardinality_one(client: httpx.AsyncClient, project: Project) -> None:
    alias = await make_type(client, project, cardinality="one")
    parent, a, b, c = guid(), guid(), guid(), guid()
    response = await call(client, project, "PATCH", parent, {"connect": [a, b]}, alias=alias)
    assert children(response) == [b]
    response = await call(client, project, "PUT", parent, [c, a], alias=alias)
    assert children(response) == [a]
    assert changes(response) == {"added": 1, "removed": 1, "moved": 0}
    several = await call(client, project, "POST", parent, [b, c], alias=alias)
    assert invalid(several) == {"items": [messages.LIST_ONE_ADD_SEVERAL.format(alias=alias, count=2)]}
    taken = await call(client, project, "POST", parent, [b], alias=alias)
    assert invalid(taken) == {"items": [messages.CARDINALITY_ONE_TAKEN.format(alias=alias)]}
    same = await call(client, project, "POST", parent, [a], alias=alias)
    assert changes(same) == {"added": 0, "removed": 0, "moved": 0}
    assert await listing(client, project, parent, alias) == [a]


# --- Backendless ---


async def test_backendless_alias_creates_the_type(client: httpx.AsyncClient, project: Project) -> None:
    parent, a = guid(), guid()
    response = await call(client, project, "PUT", parent, [a], alias="friends:Users:n")
    assert children(response) == [a]
    created = (await client.get("/relation/type/friends", headers=project.headers)).json()
    assert (created["cardinality"], created["childObjectType"]) == ("many", "USERS")
    assert await listing(client, project, parent, "friends") == [a]
    assert await listing(client, project, parent, "friends:Users:n") == [a]
    mismatch = await call(client, project, "POST", parent, [guid()], alias="friends:Users:1")
    assert invalid(mismatch) == {
        "relationTypeAlias": [
            messages.LIST_TYPE_MISMATCH.format(alias="friends", cardinality="many", child_object_type="USERS")
        ]
    }
    other_type = await call(client, project, "POST", parent, [guid()], alias="friends:OrderItem:n")
    assert other_type.status_code == 422


async def test_backendless_one_and_scope(client: httpx.AsyncClient, project: Project) -> None:
    writer = {"Api-Key": await project.key("relations:write", "relations:read")}
    parent = guid()
    denied = await client.put(path(parent, "address:Address:1"), json=[guid()], headers=writer)
    assert denied.status_code == 403
    assert (await client.get("/relation/type/address", headers=writer)).status_code == 404
    ok = await call(
        client, project, "PATCH", parent, {"connect": [guid(), (b := guid())]}, alias="address:Address:1"
    )
    assert children(ok) == [b]
    created = (await client.get("/relation/type/address", headers=writer)).json()
    assert (created["cardinality"], created["childObjectType"]) == ("one", "ADDRESS")
    # The type exists now: a key without relation-types:write may use the form.
    assert (await client.put(path(parent, "address:Address:1"), json=[b], headers=writer)).status_code == 200


async def test_failed_backendless_edit_creates_nothing(client: httpx.AsyncClient, project: Project) -> None:
    response = await call(
        client,
        project,
        "PATCH",
        guid(),
        {"connect": [{"id": guid(), "position": {"before": guid()}}]},
        alias="gone:Thing:n",
    )
    assert response.status_code == 422
    assert (await client.get("/relation/type/gone", headers=project.headers)).status_code == 404


# --- JSON:API ---


async def test_json_api(client: httpx.AsyncClient, project: Project) -> None:
    alias = await make_type(client, project, childObjectType="ARTICLE")
    parent, a, b, c = guid(), guid(), guid(), guid()

    async def send(method: str, data: Any) -> httpx.Response:
        return await call(client, project, method, parent, {"data": data}, alias=alias, content_type=JSON_API)

    added = await send("POST", [{"type": "articles", "id": a}, {"type": "Article", "id": b}])
    assert added.status_code == 204 and added.content == b""
    assert added.headers["etag"]
    assert await listing(client, project, parent, alias) == [a, b]
    replaced = await send("PATCH", [{"type": "article", "id": c}, {"type": "ARTICLES", "id": a}])
    assert replaced.status_code == 204
    assert await listing(client, project, parent, alias) == [c, a]
    removed = await send("DELETE", [{"type": "article", "id": c}])
    assert removed.status_code == 204
    assert await listing(client, project, parent, alias) == [a]
    conflict = await send("POST", [{"type": "people", "id": b}])
    assert conflict.status_code == 409
    assert conflict.json()["errors"][0]["detail"] == messages.JSON_API_TYPE_MISMATCH.format(
        type="people", expected="ARTICLE", alias=alias
    )
    put = await call(client, project, "PUT", parent, {"data": []}, alias=alias, content_type=JSON_API)
    assert put.status_code == 415
    single = await send("PATCH", {"type": "article", "id": b})
    assert single.status_code == 422, single.text
    assert await listing(client, project, parent, alias) == [a]


async def test_json_api_to_one_and_unknown_type(client: httpx.AsyncClient, project: Project) -> None:
    alias = await make_type(client, project, cardinality="one", childObjectType="PERSON")
    parent, a = guid(), guid()

    async def send(method: str, data: Any, to: str = alias) -> httpx.Response:
        return await call(client, project, method, parent, {"data": data}, alias=to, content_type=JSON_API)

    assert (await send("PATCH", {"type": "person", "id": a})).status_code == 204
    assert await listing(client, project, parent, alias) == [a]
    assert (await send("PATCH", None)).status_code == 204
    assert await listing(client, project, parent, alias) == []
    assert (await send("POST", None)).status_code == 400
    # umbDocument's child object type is Unknown: any type matches.
    assert (await send("POST", [{"type": "whatever", "id": a}], "umbDocument")).status_code == 204


# --- If-Match ---


async def test_if_match(client: httpx.AsyncClient, project: Project) -> None:
    parent = guid()
    await seed(client, project, parent, 2)
    etag = (await client.get(path(parent), headers=project.headers)).headers["etag"]
    first = await call(client, project, "PATCH", parent, {"connect": [guid()]}, headers={"If-Match": etag})
    assert first.status_code == 200
    assert first.headers["etag"] != etag
    stale = await call(client, project, "PATCH", parent, {"connect": [guid()]}, headers={"If-Match": etag})
    assert stale.status_code == 412
    assert error_of(stale) == {"code": "PreconditionFailed", "message": messages.LIST_CHANGED}
    fresh = first.headers["etag"]
    for header in (fresh, f'"x", {fresh}', "*", f"W/{fresh}"):
        response = await call(client, project, "DELETE", parent, [guid()], headers={"If-Match": header})
        assert response.status_code == 200, header
    moved = await call(
        client, project, "PATCH", parent, {"connect": [{"id": children(first)[0], "position": {"end": True}}]}
    )
    assert moved.headers["etag"] != fresh


# --- a long list, edited through a window ---


async def test_long_list_moves_and_counts(client: httpx.AsyncClient, project: Project) -> None:
    parent = guid()
    ids = await seed(client, project, parent, 400)
    order = list(ids)
    body = {
        "connect": [
            {"id": ids[10], "position": {"after": ids[300]}},
            {"id": ids[350], "position": {"start": True}},
            {"id": (new := guid()), "position": {"before": ids[200]}},
        ],
        "disconnect": [ids[5]],
    }
    response = await call(client, project, "PATCH", parent, body)
    order.remove(ids[5])
    order.remove(ids[10])
    order.insert(order.index(ids[300]) + 1, ids[10])
    order.remove(ids[350])
    order.insert(0, ids[350])
    order.insert(order.index(ids[200]), new)
    before = [c for c in ids if c in order]
    after = [c for c in order if c in ids]
    moved = sum(before.index(c) != after.index(c) for c in before)
    assert changes(response) == {"added": 1, "removed": 1, "moved": moved}
    assert await listing(client, project, parent) == order


async def test_items_are_rendered_as_everywhere_else(client: httpx.AsyncClient, project: Project) -> None:
    parent = guid()
    await call(client, project, "PATCH", parent, {"connect": [{"id": guid(), "comment": "c"}, guid()]})
    mine = (await client.get(path(parent), headers=project.headers)).json()["_embedded"]["relations"]
    heartcore = await client.get(f"/relation/parent/{parent}", headers=project.headers)
    assert mine == heartcore.json()["_embedded"]["relations"]
    for item in mine:
        assert (await client.get(f"/relation/{item['_id']}", headers=project.headers)).json() == item


@pytest.mark.parametrize(
    ("method", "body"),
    [
        ("PATCH", {"connect": [{"id": "new", "position": {"start": True}}]}),  # one round trip
        ("PATCH", {"connect": ["new"]}),
        ("POST", ["new"]),
        ("POST", ["first"]),  # a member already: nothing added
        ("PATCH", {"connect": [{"id": "first", "position": {"end": True}}]}),  # a move
        ("PATCH", {"connect": [{"id": "new", "position": {"after": "first"}}]}),
        ("PUT", ["new", "first"]),
        ("DELETE", ["first"]),
    ],
)
async def test_answer_is_the_list_as_get_shows_it(
    client: httpx.AsyncClient, project: Project, method: str, body: Any
) -> None:
    parent = guid()
    ids = await seed(client, project, parent, 3)
    names = {"new": guid(), "first": ids[0]}

    def named(value: Any) -> Any:
        if isinstance(value, str):
            return names.get(value, value)
        if isinstance(value, list):
            return [named(v) for v in value]
        if isinstance(value, dict):
            return {k: named(v) for k, v in value.items()}
        return value

    response = await call(client, project, method, parent, named(body), headers={"If-Match": "*"})
    assert response.status_code == 200, response.text
    answer = response.json()
    shown = await client.get(path(parent), headers=project.headers)
    assert response.headers["etag"] == shown.headers["etag"]
    assert {k: v for k, v in answer.items() if k != "_changes"} == shown.json()


async def test_json_api_delete_needs_a_body(client: httpx.AsyncClient, project: Project) -> None:
    parent = guid()
    await seed(client, project, parent, 2)
    headers = {**project.headers, "Content-Type": JSON_API}
    response = await client.delete(path(parent), headers=headers)
    assert response.status_code == 400
    assert response.json()["errors"][0]["detail"] == messages.EMPTY_BODY
    assert len(await listing(client, project, parent)) == 2


async def test_empty_patch_changes_nothing(client: httpx.AsyncClient, project: Project) -> None:
    parent = guid()
    ids = await seed(client, project, parent, 2)
    response = await call(client, project, "PATCH", parent, {})
    assert children(response) == ids
    assert changes(response) == {"added": 0, "removed": 0, "moved": 0}
