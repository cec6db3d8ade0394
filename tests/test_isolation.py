"""No request may read or change another project's data (SPEC §2).

Projects A and B hold the same parent/child/type triples independently; A also has data of its own.
For every API route (from `api_routes()`, so routes added later are included), a credential of B aims
at A's identifiers; A's rows are compared in the database before and after, and nothing of A may appear
in any answer to B."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest

from service import messages
from service.db import Database
from service.endpoint import ApiRoute
from tests.conftest import MakeProject, Project, error_of, guid
from tests.test_auth import ROUTES, concrete_path, method_of
from tests.webhooks.helpers import add_delivery

SHARED_TYPE = "sharedType"
A_ONLY_TYPE = "aOnlyType"

RELATIONS_OF_A = """
SELECT id, type_alias, parent, child, position, comment, created_at
FROM relation WHERE project = $1 ORDER BY id
"""
WEBHOOKS_OF_A = """
SELECT w.id, w.url, w.events, w.enabled, w.secret, w.updated_at, d.id AS delivery, d.state, d.next_attempt_at
FROM webhook AS w LEFT JOIN webhook_delivery AS d ON d.project = w.project AND d.webhook_id = w.id
WHERE w.project = $1 ORDER BY w.id, d.id
"""
TYPES_OF_A = """
SELECT alias, type_id, name, parent_object_type, child_object_type, is_bidirectional, is_dependency,
       cardinality, is_builtin, created_at, updated_at
FROM relation_type WHERE project = $1 ORDER BY alias
"""


async def snapshot(db: Database, project: str) -> tuple[list[dict[str, Any]], ...]:
    relations = [dict(row) for row in await db.fetch(RELATIONS_OF_A, project)]
    types = [dict(row) for row in await db.fetch(TYPES_OF_A, project)]
    webhooks = [dict(row) for row in await db.fetch(WEBHOOKS_OF_A, project)]
    return relations, types, webhooks


@dataclass
class Pair:
    a: Project
    b: Project
    parent: str
    child: str
    a_only_entity: str
    a_ids: list[int]
    b_ids: list[int]
    b_shared_id: int
    a_webhook: str
    a_delivery: int


async def _type(client: httpx.AsyncClient, project: Project, alias: str) -> None:
    body = {"alias": alias, "name": alias, "isDependency": False}
    response = await client.post("/relation/type", json=body, headers=project.headers)
    assert response.status_code == 201, response.text


async def _relation(client: httpx.AsyncClient, project: Project, alias: str, parent: str, child: str) -> int:
    body = {"parentId": parent, "childId": child, "relationTypeAlias": alias}
    response = await client.post("/relation", json=body, headers=project.headers)
    assert response.status_code == 201, response.text
    relation_id: int = response.json()["_id"]
    return relation_id


@pytest.fixture
async def pair(client: httpx.AsyncClient, make_project: MakeProject) -> Pair:
    a, b = await make_project(), await make_project()
    parent, child, a_only = guid(), guid(), guid()
    ids: dict[str, list[int]] = {}
    shared_ids: dict[str, int] = {}
    for project in (a, b):
        await _type(client, project, SHARED_TYPE)
        made = [
            await _relation(client, project, "relateDocumentOnCopy", parent, child),
            await _relation(client, project, "umbDocument", parent, child),
            await _relation(client, project, SHARED_TYPE, parent, child),
        ]
        shared_ids[project.alias] = made[-1]
        ids[project.alias] = made
    await _type(client, a, A_ONLY_TYPE)
    ids[a.alias] += [
        await _relation(client, a, "relateDocumentOnCopy", parent, a_only),
        await _relation(client, a, "umbDocument", parent, a_only),  # a_only is "referenced" in A only
        await _relation(client, a, SHARED_TYPE, a_only, child),
        await _relation(client, a, A_ONLY_TYPE, parent, child),
    ]
    hook = await client.post("/webhook", json={"url": "https://a.example.org/hook"}, headers=a.headers)
    assert hook.status_code == 201, hook.text
    a_webhook = hook.json()["id"]
    delivery = await add_delivery(a.db, a.alias, uuid.UUID(a_webhook), event_id="a-event")
    return Pair(
        a, b, parent, child, a_only, ids[a.alias], ids[b.alias], shared_ids[b.alias], a_webhook, delivery
    )


def int_ids(value: Any) -> set[int]:
    """Every integer `_id` and every /relation/{n} href anywhere in a JSON answer."""
    found: set[int] = set()
    if isinstance(value, dict):
        for name, item in value.items():
            if name == "_id" and isinstance(item, int):
                found.add(item)
            elif name == "href" and isinstance(item, str):
                tail = item.split("?")[0].rsplit("/", 1)[-1]
                if tail.isdigit() and "/relation/" in item:
                    found.add(int(tail))
            else:
                found |= int_ids(item)
    elif isinstance(value, list):
        for item in value:
            found |= int_ids(item)
    return found


def aimed_at_a(route: ApiRoute, pair: Pair, alias: str) -> tuple[str, dict[str, Any], Any]:
    """Path, query and JSON body of B's request, aimed at A's identifiers."""
    entity = pair.child if "/child/" in route.path else pair.parent
    own_id = pair.a_webhook if route.path.startswith("/webhook") else str(pair.a_ids[0])
    values = {"id": own_id, "guid": entity, "alias": alias, "deliveryId": str(pair.a_delivery)}
    path = concrete_path(route, values)
    query: dict[str, Any] = {}
    body: Any = None
    method = method_of(route)
    if route.name == "relations:referenced":
        query = {"id": [pair.child, pair.a_only_entity]}
    elif route.name == "relation-types:delete":
        query = {"force": "true"}
    if route.name == "relations:create":
        body = {"parentId": pair.parent, "childId": guid(), "relationTypeAlias": SHARED_TYPE}
    elif route.name == "relations:update":
        body = {"comment": "hijacked"}
    elif route.name == "relation-types:create":
        body = {"alias": A_ONLY_TYPE, "name": "Hijacked"}
    elif route.name == "relation-types:update":
        body = {"name": "Hijacked"}
    elif route.name == "webhooks:create":
        body = {"url": "https://b.example.org/hook"}
    elif route.name == "webhooks:update":
        body = {"url": "https://b.example.org/hijacked", "enabled": False, "rotateSecret": True}
    elif route.name == "webhooks:retry":
        body = None
    elif method == "PATCH":
        body = {"connect": [guid(), pair.child], "disconnect": [pair.child]}
    elif method in ("PUT", "POST"):
        body = [guid()]
    return path, query, body


# (route, alias) pairs: routes with an {alias} run once against the alias both projects have and once
# against the alias only A has.
CASES = [
    pytest.param(route, alias, id=f"{method_of(route)} {route.path} {alias}")
    for route in ROUTES
    for alias in ((SHARED_TYPE, A_ONLY_TYPE) if "{alias" in route.path else (SHARED_TYPE,))
]


@pytest.mark.parametrize(("route", "alias"), CASES)
async def test_project_b_cannot_reach_project_a(
    client: httpx.AsyncClient, db: Database, pair: Pair, route: ApiRoute, alias: str
) -> None:
    before = await snapshot(db, pair.a.alias)
    path, query, body = aimed_at_a(route, pair, alias)
    method = method_of(route)
    kwargs: dict[str, Any] = {"params": query}
    if route.name == "relations:import":  # NDJSON lines aimed at A's lists and types
        line = {"parentId": pair.parent, "childId": pair.child, "relationTypeAlias": SHARED_TYPE}
        kwargs["content"] = orjson.dumps({"relation": line}) + b"\n"
        kwargs["headers"] = {"Content-Type": "application/x-ndjson"}
    elif body is not None:
        kwargs["json"] = body

    # Naming project A with B's credential is refused outright.
    for headers, params in (
        ({**pair.b.headers, "Umb-Project-Alias": pair.a.alias}, query),
        (pair.b.headers, {**query, "Umb-Project-Alias": pair.a.alias}),
    ):
        headers = {**headers, **kwargs.get("headers", {})}
        request = {**kwargs, "params": params, "headers": headers}
        refused = await client.request(method, path, **request)
        assert refused.status_code == 403, refused.text
        assert error_of(refused) == {"code": "Forbidden", "message": messages.FORBIDDEN}

    # B's credential on its own project, with A's ids, guids and aliases.
    request = {**kwargs, "headers": {**pair.b.headers, **kwargs.get("headers", {})}}
    response = await client.request(method, path, **request)
    assert response.status_code < 500, response.text
    if response.content:
        answer = (
            response.json()
            if "ndjson" not in response.headers["content-type"]
            else [orjson.loads(line) for line in response.content.splitlines()]
        )
        leaked = int_ids(answer) & set(pair.a_ids)
        assert not leaked, f"A's relations {leaked} in B's answer: {response.text}"
        if route.name == "relations:export":
            assert int_ids(answer) == set(pair.b_ids), "B's export is all of B and only B"
    assert await snapshot(db, pair.a.alias) == before

    if "{id" in route.path and route.path.startswith("/relation"):
        assert response.status_code == 404
        assert error_of(response)["message"] == messages.RELATION_NOT_FOUND.format(id=pair.a_ids[0])
    if "{id}" in route.path and route.path.startswith("/webhook"):
        assert response.status_code == 404
        assert error_of(response)["message"] == messages.WEBHOOK_NOT_FOUND.format(id=pair.a_webhook)
    if route.name == "webhooks:list":
        assert response.status_code == 200 and response.json()["_totalItems"] == 0
    if "{alias" in route.path and alias == A_ONLY_TYPE:  # A's own type does not exist for B
        assert response.status_code == 404
        assert error_of(response)["message"] == messages.RELATION_TYPE_NOT_FOUND.format(alias=A_ONLY_TYPE)
    expected_lists = {
        "relations:list-by-parent": set(pair.b_ids),
        "relations:list-by-child": set(pair.b_ids),
        "relations:related": set(pair.b_ids),
        "relations:list-by-type": {pair.b_shared_id} if alias == SHARED_TYPE else None,
        "child-lists:get": {pair.b_shared_id} if alias == SHARED_TYPE else None,
    }
    if route.name in expected_lists:
        expected = expected_lists[route.name]
        if expected is None:
            assert response.status_code == 404
        else:
            assert response.status_code == 200, response.text
            listed = response.json()
            assert {item["_id"] for item in listed["_embedded"]["relations"]} == expected
            assert listed["_totalItems"] == len(expected)
    # B's own writes succeed (in B): the unchanged snapshot of A above is not for want of trying.
    succeeds_in_b = {
        "relations:create": 201,
        "relation-types:create": 201,
        "relations:import": 200,
        "webhooks:create": 201,
    }
    if alias == SHARED_TYPE:
        succeeds_in_b |= {
            "relation-types:update": 200,
            "relation-types:delete": 200,
            "relation-types:get": 200,
        }
        succeeds_in_b |= {f"child-lists:{verb}": 200 for verb in ("patch", "put", "post", "delete")}
    if route.name in succeeds_in_b:
        assert response.status_code == succeeds_in_b[route.name], response.text
    if route.name == "relations:referenced":
        assert response.json() == {"referenced": [pair.child]}
    if route.name == "relation-types:list":
        aliases = {item["alias"] for item in response.json()["_embedded"]["relationtypes"]}
        assert SHARED_TYPE in aliases and A_ONLY_TYPE not in aliases
    if route.name in ("relations:delete-by-parent", "relations:delete-by-child"):
        assert response.json() == {"deleted": len(pair.b_ids)}


async def test_same_triple_lives_independently(client: httpx.AsyncClient, db: Database, pair: Pair) -> None:
    """B deletes its copy of the shared triple and its shared type; A keeps both."""
    before = await snapshot(db, pair.a.alias)
    gone = await client.delete(f"/relation/{pair.b_shared_id}", headers=pair.b.headers)
    assert gone.status_code == 200
    dropped = await client.delete(f"/relation/type/{SHARED_TYPE}?force=true", headers=pair.b.headers)
    assert dropped.status_code == 200, dropped.text
    assert await snapshot(db, pair.a.alias) == before
    still = await client.get(f"/relation/type/{SHARED_TYPE}", headers=pair.a.headers)
    assert still.status_code == 200
    listed = await client.get(f"/relation/{SHARED_TYPE}", headers=pair.a.headers)
    assert listed.json()["_totalItems"] == 2
    missing = await client.get(f"/relation/type/{SHARED_TYPE}", headers=pair.b.headers)
    assert missing.status_code == 404
