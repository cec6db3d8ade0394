"""JSON:API on the child lists (service/jsonapi.py): the seed's four requests, the linkage read chosen by
content negotiation, error objects for every non-2xx answer to a JSON:API request (also those made
outside the handlers), the media-type rules (415, 406), and members that must be ignored."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import orjson
import pytest
from starlette.applications import Starlette

from service import jsonapi, messages
from service.child_lists import queries as list_queries
from service.db import Database
from service.errors import ServiceUnavailable, TooManyRequests, ValidationFailed
from service.jsonapi import JSON_API
from service.middleware import error_response
from service.relations.queries import POSITION_GAP
from tests.child_lists.helpers import listing, path
from tests.conftest import MakeProject, Project, error_of, guid

JSON_API_HEADERS = {"Content-Type": JSON_API, "Accept": JSON_API}


async def make_type(client: httpx.AsyncClient, project: Project, **fields: Any) -> str:
    alias = f"t{uuid.uuid4().hex[:12]}"
    body = {"alias": alias, "name": alias, "childObjectType": "ARTICLE", **fields}
    response = await client.post("/relation/type", json=body, headers=project.headers)
    assert response.status_code == 201, response.text
    return alias


async def send(
    client: httpx.AsyncClient,
    project: Project,
    method: str,
    url: str,
    body: Any,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    sent = {**project.headers, **JSON_API_HEADERS, **(headers or {})}
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return await client.request(method, url, content=content, headers=sent)


async def read(
    client: httpx.AsyncClient, project: Project, url: str, accept: str = JSON_API, **params: str
) -> httpx.Response:
    return await client.get(url, params=params, headers={**project.headers, "Accept": accept})


def errors_of(response: httpx.Response) -> list[dict[str, Any]]:
    """The error objects of a JSON:API error document (and that it is one, exactly)."""
    assert response.headers["content-type"] == JSON_API, response.text
    body = response.json()
    assert set(body) == {"errors", "jsonapi"}, body
    assert body["jsonapi"] == {"version": "1.1"}
    for error in body["errors"]:
        assert error["status"] == str(response.status_code)
        assert set(error) <= {"status", "code", "title", "detail", "source", "meta"}
    found: list[dict[str, Any]] = body["errors"]
    return found


def identifiers(kind: str, *ids: str) -> list[dict[str, str]]:
    return [{"type": kind, "id": child} for child in ids]


# --- the seed's four requests (flask-restless' "Updating relationships") ---


async def test_the_seed_requests(client: httpx.AsyncClient, project: Project) -> None:
    author = await make_type(client, project, childObjectType="PERSON", cardinality="one")
    articles = await make_type(client, project, childObjectType="ARTICLE")
    article, person = guid(), guid()
    one, two = guid(), guid()

    to_one = await send(
        client, project, "PATCH", path(article, author), {"data": {"type": "person", "id": one}}
    )
    assert (to_one.status_code, to_one.content) == (204, b"")
    replace = {"data": identifiers("article", one, two)}
    assert (await send(client, project, "PATCH", path(person, articles), replace)).status_code == 204
    assert await listing(client, project, person, articles) == [one, two]
    third = guid()
    add = {"data": identifiers("article", third, one)}
    assert (await send(client, project, "POST", path(person, articles), add)).status_code == 204
    assert await listing(client, project, person, articles) == [one, two, third]
    remove = {"data": identifiers("article", one, two)}
    removed = await send(client, project, "DELETE", path(person, articles), remove)
    assert (removed.status_code, removed.content) == (204, b"")
    assert await listing(client, project, person, articles) == [third]

    linkage = (await read(client, project, path(article, author))).json()
    assert linkage["data"] == {"type": "person", "id": one}


# --- the read ---


async def test_linkage_in_list_order_with_links_and_total(
    client: httpx.AsyncClient, project: Project
) -> None:
    alias = await make_type(client, project, childObjectType="ORDER_ITEM")
    parent, ids = guid(), [guid() for _ in range(5)]
    put = await client.put(path(parent, alias), json=ids, headers=project.headers)
    assert put.status_code == 200

    response = await read(client, project, path(parent, alias), **{"page[size]": "2"})
    assert response.status_code == 200
    assert response.headers["content-type"] == JSON_API
    assert response.headers["etag"] == put.headers["etag"]
    assert response.headers["vary"] == "Accept"
    body = response.json()
    assert set(body) == {"data", "links", "meta", "jsonapi"}
    assert body["data"] == identifiers("order-item", *ids[:2])
    assert body["meta"] == {"total": 5}
    base = f"http://testserver/relation/parent/{parent}/{alias}"
    links = body["links"]
    assert links["self"] == f"{base}?page%5Bsize%5D=2"
    assert links["related"] == f"http://testserver/relation/parent/{parent}?relationType={alias}"
    assert links["prev"] is None
    assert links["first"] == f"{base}?page%5Bnumber%5D=1&page%5Bsize%5D=2"

    seen, url = [], links["first"]
    while url is not None:  # follow `next` to the end, as a client does
        page = await client.get(url, headers={**project.headers, "Accept": JSON_API})
        seen += [item["id"] for item in page.json()["data"]]
        url = page.json()["links"]["next"]
    assert seen == ids
    last = page.json()["links"]
    assert last["next"] is None
    # `next` and `prev` are cursor links (the cursor pagination profile's page[after]/page[before]).
    assert set(dict(parse_qsl(urlsplit(last["prev"]).query))) == {"page[before]", "page[size]"}
    back = await client.get(last["prev"], headers={**project.headers, "Accept": JSON_API})
    assert back.json()["data"] == identifiers("order-item", *ids[2:4])

    # Our own page/pageSize work too; other query parameters stay in the paging links.
    spelt = {"page[number]": "3", "page[size]": "2"}
    both = await read(client, project, path(parent, alias), page="1", **spelt)
    assert both.json()["data"] == identifiers("order-item", ids[4])  # JSON:API's spelling wins
    ours = await read(client, project, path(parent, alias), page="2", pageSize="2", **{"api-version": "2"})
    assert ours.json()["data"] == identifiers("order-item", *ids[2:4])
    query = dict(parse_qsl(urlsplit(ours.json()["links"]["next"]).query))
    assert set(query) == {"page[after]", "page[size]", "api-version"}
    assert (query["page[size]"], query["api-version"]) == ("2", "2")
    after = await client.get(ours.json()["links"]["next"], headers={**project.headers, "Accept": JSON_API})
    assert after.json()["data"] == identifiers("order-item", ids[4])

    related = await client.get(links["related"], headers=project.headers)
    assert [item["childId"] for item in related.json()["_embedded"]["relations"]] == ids


# --- cursors: the cursor pagination profile's page[after] and page[before] (SPEC §8) ---

DEEP_LIST = 12_000
DEEP_PAGE = 1_000
LOAD_LIST = f"""
INSERT INTO relation (project, type_alias, parent, child, position)
SELECT $1, $2, $3, md5($1 || 'deep' || g)::uuid, g::bigint * {POSITION_GAP}
FROM generate_series(1, $4) AS g"""
ORDERED = """
SELECT child::text FROM relation WHERE project = $1 AND parent = $2 AND type_alias = $3
ORDER BY position, id OFFSET $4 LIMIT $5"""


def query_of(href: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(href).query))


async def test_a_deep_cursor_step_reads_the_rows_sql_orders(
    client: httpx.AsyncClient, db: Database, project: Project
) -> None:
    """Following `next` through a 12,000-item list: each page is the list's rows at that depth, read by
    the key after the previous page (the statement tests/test_query_plans.py shows to be an index
    range), and `prev` from deep in it is the page before."""
    alias = await make_type(client, project)
    parent = uuid.uuid4()
    await db.execute(LOAD_LIST, project.alias, alias, parent, DEEP_LIST)
    url: str | None = path(str(parent), alias) + f"?page%5Bsize%5D={DEEP_PAGE}"
    pages = []
    while url is not None:
        page = await client.get(url, headers={**project.headers, "Accept": JSON_API})
        assert page.status_code == 200, page.text
        pages.append(page.json())
        url = page.json()["links"]["next"]
    assert len(pages) == DEEP_LIST // DEEP_PAGE
    last = pages[-1]
    assert last["meta"] == {"total": DEEP_LIST}
    deep = (DEEP_LIST // DEEP_PAGE - 1) * DEEP_PAGE
    expected = [
        row["child"] for row in await db.fetch(ORDERED, project.alias, parent, alias, deep, DEEP_PAGE)
    ]
    assert [item["id"] for item in last["data"]] == expected
    # The step to the last page went by cursor, and page[number] still answers the same rows.
    assert "page[after]" in query_of(pages[-2]["links"]["next"])
    numbered = await read(
        client, project, path(str(parent), alias), **{"page[number]": "12", "page[size]": str(DEEP_PAGE)}
    )
    assert numbered.json()["data"] == last["data"]
    back = await client.get(last["links"]["prev"], headers={**project.headers, "Accept": JSON_API})
    assert back.json()["data"] == pages[-2]["data"]


async def test_bad_cursors_are_400_with_the_parameter(
    client: httpx.AsyncClient, project: Project, make_project: MakeProject
) -> None:
    parent, ids = guid(), [guid() for _ in range(5)]
    await client.put(path(parent), json=ids, headers=project.headers)
    first = await read(client, project, path(parent), **{"page[size]": "2"})
    after = query_of(first.json()["links"]["next"])["page[after]"]
    second = await read(client, project, path(parent), **{"page[size]": "2", "page[after]": after})
    before = query_of(second.json()["links"]["prev"])["page[before]"]
    assert second.json()["data"] == identifiers("unknown", *ids[2:4])

    other = await make_project()
    tampered = ("A" if after[0] != "A" else "B") + after[1:]
    cases = [
        (project, {"page[after]": tampered}, messages.CURSOR_FOREIGN.format(name="page[after]")),
        (project, {"page[after]": after[:-3]}, messages.CURSOR_MALFORMED.format(name="page[after]")),
        (other, {"page[after]": after}, messages.CURSOR_FOREIGN.format(name="page[after]")),
        (
            project,
            {"page[size]": "3", "page[after]": after},
            messages.CURSOR_FOREIGN.format(name="page[after]"),
        ),
        (project, {"page[before]": after}, messages.JSON_API_CURSOR_DIRECTION.format(name="page[before]")),
        (project, {"page[after]": before}, messages.JSON_API_CURSOR_DIRECTION.format(name="page[after]")),
        (project, {"page[after]": after, "page[before]": before}, messages.JSON_API_RANGE_PAGINATION),
    ]
    for owner, given, detail in cases:
        response = await read(client, owner, path(parent), **{"page[size]": "2", **given})
        assert response.status_code == 400, (given, response.text)
        (error,) = errors_of(response)
        assert (error["code"], error["detail"]) == ("BadRequest", detail), given
        assert error["source"]["parameter"] in given, given
    # A HAL read names the parameter in the envelope of SPEC §3.
    hal = await read(
        client, project, path(parent), accept="*/*", **{"page[size]": "2", "page[after]": tampered}
    )
    assert error_of(hal) == {
        "code": "BadRequest",
        "message": messages.CURSOR_FOREIGN.format(name="page[after]"),
    }


async def test_the_types_read_are_accepted_back(client: httpx.AsyncClient, project: Project) -> None:
    """type_name and SPEC §6's 409 rule agree: what a client reads, it can write back (and its plural)."""
    for object_type in ("ORDER_ITEM", "NEWS", "DOCUMENT", "MEDIA"):
        alias = await make_type(client, project, childObjectType=object_type)
        parent, child = guid(), guid()
        await client.put(path(parent, alias), json=[child], headers=project.headers)
        data = (await read(client, project, path(parent, alias))).json()["data"]
        written = await send(client, project, "PATCH", path(parent, alias), {"data": data})
        assert written.status_code == 204, (object_type, written.text)
        if not data[0]["type"].endswith("s"):
            plural = {"data": [{"type": data[0]["type"] + "s", "id": child}]}
            assert (await send(client, project, "POST", path(parent, alias), plural)).status_code == 204
    assert jsonapi.type_name("Unknown") == "unknown"


async def test_to_one_linkage_is_an_object_or_null(client: httpx.AsyncClient, project: Project) -> None:
    alias = await make_type(client, project, childObjectType="PERSON", cardinality="one")
    parent, child = guid(), guid()
    empty = (await read(client, project, path(parent, alias))).json()
    assert empty["data"] is None and empty["meta"] == {"total": 0}
    assert set(empty["links"]) == {"self", "related"}
    await send(client, project, "PATCH", path(parent, alias), {"data": {"type": "person", "id": child}})
    assert (await read(client, project, path(parent, alias))).json()["data"] == {
        "type": "person",
        "id": child,
    }


@pytest.mark.parametrize(
    ("accept", "json_api"),
    [
        ("*/*", False),
        ("application/json", False),
        ("application/hal+json", False),
        ("application/json+hal", False),
        ("text/html", False),
        (JSON_API, True),
        (f"{JSON_API}, */*", True),
        (f"application/json, {JSON_API}", True),  # a tie goes to JSON:API
        (f"{JSON_API};q=0.5, application/hal+json", False),
        (f"application/json;q=0.5, {JSON_API}", True),
        (f'{JSON_API}; profile="https://example.com/unknown-profile"', True),  # unknown profiles: ignored
        (f"{JSON_API}; ext=https://example.com/ext, {JSON_API}", True),  # one usable instance is enough
        (f"{JSON_API};q=0", False),
        (f"{JSON_API}; ext=https://example.com/ext; q=0, application/json", False),  # refused, not 406
    ],
)
async def test_content_negotiation(
    client: httpx.AsyncClient, project: Project, accept: str, json_api: bool
) -> None:
    parent = guid()
    await client.put(path(parent), json=[guid()], headers=project.headers)
    hal = await client.get(path(parent), headers=project.headers)
    response = await read(client, project, path(parent), accept=accept)
    assert response.status_code == 200
    if json_api:
        assert response.headers["content-type"] == JSON_API
        assert response.json()["data"][0]["type"] == "unknown"
    else:  # HAL exactly as without Accept
        assert response.headers["content-type"] == "application/hal+json"
        assert response.json() == hal.json()


@pytest.mark.parametrize(
    "accept",
    [
        f"{JSON_API}; charset=utf-8",
        f"{JSON_API}; ext=https://example.com/ext",
        f'{JSON_API}; ext="https://example.com/a https://example.com/b", {JSON_API}; v=2, application/json',
    ],
)
async def test_406_when_every_json_api_type_in_accept_is_unusable(
    client: httpx.AsyncClient, project: Project, accept: str
) -> None:
    for method in ("GET", "POST"):
        content = orjson.dumps({"data": []}) if method == "POST" else None
        headers = {**project.headers, "Accept": accept, "Content-Type": JSON_API}
        response = await client.request(method, path(guid()), content=content, headers=headers)
        assert response.status_code == 406
        assert errors_of(response) == [
            {
                "status": "406",
                "code": "NotAcceptable",
                "title": "Not acceptable",
                "detail": messages.JSON_API_NOT_ACCEPTABLE,
                "source": {"header": "Accept"},
            }
        ]


async def test_other_routes_never_406(client: httpx.AsyncClient, project: Project) -> None:
    headers = {**project.headers, "Accept": f"{JSON_API}; ext=https://example.com/ext"}
    response = await client.get("/relation/type", headers=headers)
    assert response.status_code == 200 and response.headers["content-type"] == "application/hal+json"


async def test_query_parameters_json_api_refuses(client: httpx.AsyncClient, project: Project) -> None:
    url = path(guid())
    cases = {
        "page[offset]": messages.JSON_API_PAGE_PARAMETER.format(name="page[offset]"),
        "page[after]": messages.CURSOR_MALFORMED.format(name="page[after]"),
        "page[before]": messages.CURSOR_MALFORMED.format(name="page[before]"),
        "include": messages.JSON_API_PARAMETER_UNSUPPORTED.format(name="include"),
        "sort": messages.JSON_API_PARAMETER_UNSUPPORTED.format(name="sort"),
    }
    for name, detail in cases.items():
        response = await read(client, project, url, **{name: "x"})
        assert response.status_code == 400
        (error,) = errors_of(response)
        assert (error["code"], error["detail"], error["source"]) == (
            "BadRequest",
            detail,
            {"parameter": name},
        )
    for value in ("0", "x", "1001"):
        bad = await read(client, project, url, **{"page[size]": value})
        assert errors_of(bad)[0]["detail"] == messages.JSON_API_INVALID_PAGE_SIZE
    bad_number = await read(client, project, url, **{"page[number]": "0"})
    assert errors_of(bad_number)[0]["detail"] == messages.JSON_API_INVALID_PAGE_NUMBER
    assert errors_of(bad_number)[0]["source"] == {"parameter": "page[number]"}
    assert (await read(client, project, url, **{"fields[article]": "title"})).status_code == 200


async def test_hal_reads_the_json_api_page_parameters_too(
    client: httpx.AsyncClient, project: Project
) -> None:
    parent, ids = guid(), [guid() for _ in range(3)]
    await client.put(path(parent), json=ids, headers=project.headers)
    hal = await read(client, project, path(parent), accept="*/*", **{"page[number]": "2", "page[size]": "1"})
    body = hal.json()
    assert (body["_page"], body["_pageSize"]) == (2, 1)
    assert [item["childId"] for item in body["_embedded"]["relations"]] == [ids[1]]
    following = await client.get(body["_links"]["next"]["href"], headers=project.headers)
    assert [item["childId"] for item in following.json()["_embedded"]["relations"]] == [ids[2]]
    refused = await read(client, project, path(parent), accept="*/*", **{"page[size]": "1001"})
    assert error_of(refused) == {"code": "BadRequest", "message": messages.JSON_API_INVALID_PAGE_SIZE}
    # include/sort are JSON:API's: a HAL read ignores them, as it ignores any unknown parameter
    assert (await read(client, project, path(parent), accept="*/*", sort="x")).status_code == 200


# --- the media types of a body ---


@pytest.mark.parametrize(
    ("content_type", "detail"),
    [
        (
            f"{JSON_API}; charset=utf-8",
            messages.JSON_API_CONTENT_TYPE_PARAMETERS.format(parameters="charset=utf-8"),
        ),
        (
            f'{JSON_API}; ext="https://jsonapi.org/ext/atomic"',
            messages.JSON_API_EXTENSION_UNSUPPORTED.format(ext="https://jsonapi.org/ext/atomic"),
        ),
    ],
)
async def test_415_for_content_type_parameters_and_extensions(
    client: httpx.AsyncClient, project: Project, content_type: str, detail: str
) -> None:
    parent = guid()
    body = {"data": [{"type": "x", "id": guid()}]}
    response = await send(client, project, "POST", path(parent), body, headers={"Content-Type": content_type})
    assert response.status_code == 415
    assert errors_of(response) == [
        {
            "status": "415",
            "code": "UnsupportedMediaType",
            "title": "Unsupported media type",
            "detail": detail,
            "source": {"header": "Content-Type"},
        }
    ]
    assert await listing(client, project, parent) == []


async def test_an_unknown_profile_is_ignored(client: httpx.AsyncClient, project: Project) -> None:
    parent, child = guid(), guid()
    headers = {"Content-Type": f'{JSON_API}; profile="https://example.com/p1 https://example.com/p2"'}
    body = {"data": [{"type": "x", "id": child}]}
    assert (await send(client, project, "POST", path(parent), body, headers=headers)).status_code == 204
    assert await listing(client, project, parent) == [child]


async def test_a_json_api_document_sent_as_json_is_415(client: httpx.AsyncClient, project: Project) -> None:
    parent = guid()
    body = {"data": [{"type": "x", "id": guid()}]}
    for method in ("POST", "PATCH", "DELETE"):
        response = await client.request(method, path(parent), json=body, headers=project.headers)
        assert response.status_code == 415
        assert error_of(response) == {"code": "UnsupportedMediaType", "message": messages.JSON_API_AS_JSON}
        assert JSON_API in messages.JSON_API_AS_JSON
    # An Accept that prefers JSON:API makes the same 415 a JSON:API error.
    preferred = await client.post(path(parent), json=body, headers={**project.headers, "Accept": JSON_API})
    assert errors_of(preferred)[0]["detail"] == messages.JSON_API_AS_JSON


# --- members to ignore, and what must be refused ---


async def test_members_json_api_allows_or_says_to_ignore(client: httpx.AsyncClient, project: Project) -> None:
    alias = await make_type(client, project)
    parent, a, b = guid(), guid(), guid()
    body = {
        "data": [
            {"type": "articles", "id": a, "meta": {"note": 1}, "attributes": {"title": "x"}, "lid": "l1"},
            {"type": "article", "id": b, "unknown": True, "links": {"self": "x"}},
        ],
        "links": {"self": "http://example.com"},
        "meta": {"by": "test"},
        "jsonapi": {"version": "1.1"},
        "included": [{"type": "article", "id": a}],
        "somethingElse": [1, 2],
        "ext:member": {},
    }
    response = await send(client, project, "PATCH", path(parent, alias), body)
    assert response.status_code == 204, response.text
    assert await listing(client, project, parent, alias) == [a, b]


async def test_what_must_be_refused_is_refused(client: httpx.AsyncClient, project: Project) -> None:
    url = path(guid())
    refused = {
        b"[]": (messages.JSON_API_SHAPE, ""),
        b'{"meta": {}}': (messages.JSON_API_DATA_MISSING, ""),
        b'{"data": "x"}': (messages.JSON_API_SHAPE, "/data"),
        b'{"data": [], "errors": []}': (messages.JSON_API_DATA_AND_ERRORS, "/errors"),
    }
    for body, (detail, where) in refused.items():
        response = await send(client, project, "POST", url, body)
        assert response.status_code == 400, body
        assert errors_of(response) == [
            {
                "status": "400",
                "code": "BadRequest",
                "title": "Bad request",
                "detail": detail,
                "source": {"pointer": where},
            }
        ]
    empty = await send(client, project, "POST", url, b"")
    assert errors_of(empty)[0]["detail"] == messages.EMPTY_BODY


async def test_validation_failed_is_one_object_per_problem(
    client: httpx.AsyncClient, project: Project
) -> None:
    data = [{"type": "t", "id": guid()}, {"id": guid()}, {"type": "t"}, 5, {"type": 3, "id": "nope"}]
    response = await send(client, project, "POST", path(guid()), {"data": data})
    assert response.status_code == 422
    found = [(error["source"]["pointer"], error["detail"]) for error in errors_of(response)]
    assert found == [
        ("/data/1/type", messages.FIELD_REQUIRED),
        ("/data/2/id", messages.FIELD_NOT_GUID),
        ("/data/3", messages.JSON_API_SHAPE),
        ("/data/4/type", messages.FIELD_NOT_STRING),
        ("/data/4/id", messages.FIELD_NOT_GUID),
    ]
    first = errors_of(response)[0]
    assert first["code"] == "ValidationFailed" and first["title"] == "Validation failed"
    assert first["meta"] == {"field": "data[1].type", "message": messages.RELATION_INVALID}


async def test_codes_of_spec_3_inside_the_handler(client: httpx.AsyncClient, project: Project) -> None:
    alias = await make_type(client, project, childObjectType="ARTICLE")
    parent = guid()
    conflict = await send(
        client, project, "POST", path(parent, alias), {"data": [{"type": "people", "id": guid()}]}
    )
    assert [(e["status"], e["code"]) for e in errors_of(conflict)] == [("409", "Conflict")]
    put = await send(client, project, "PUT", path(parent, alias), {"data": []})
    assert errors_of(put)[0]["detail"] == messages.JSON_API_PUT
    stale = await send(
        client, project, "POST", path(parent, alias), {"data": []}, headers={"If-Match": '"999-9"'}
    )
    assert errors_of(stale)[0]["code"] == "PreconditionFailed"
    unknown_type = await read(client, project, path(parent, "nosuchtype"))
    (missing,) = errors_of(unknown_type)
    assert missing["code"] == "NotFound"
    assert missing["detail"] == messages.RELATION_TYPE_NOT_FOUND.format(alias="nosuchtype")
    bad_guid = await read(client, project, "/relation/parent/not-a-guid/umbDocument")
    assert errors_of(bad_guid)[0]["code"] == "BadRequest"
    headers = {"Idempotency-Key": "k-" + guid()}
    first = await send(client, project, "POST", path(parent), {"data": []}, headers=headers)
    assert first.status_code == 204
    reused = await send(client, project, "POST", path(guid()), {"data": []}, headers=headers)
    (error,) = errors_of(reused)
    assert error["source"] == {"header": "Idempotency-Key"}
    assert error["detail"] == messages.IDEMPOTENCY_KEY_REUSED


# --- answers made outside the handlers ---


async def test_errors_outside_the_handler(client: httpx.AsyncClient, project: Project) -> None:
    accept = {"Accept": JSON_API}
    unknown = await client.get("/relation/nowhere/at/all", headers={**project.headers, **accept})
    assert [(e["status"], e["code"]) for e in errors_of(unknown)] == [("404", "NotFound")]
    wrong_method = await client.request("PATCH", "/relation/type", headers={**project.headers, **accept})
    assert errors_of(wrong_method)[0]["code"] == "MethodNotAllowed"
    assert wrong_method.headers["allow"]
    anonymous = await client.get(path(guid()), headers=accept)
    assert errors_of(anonymous) == [
        {"status": "401", "code": "Unauthorized", "title": "Unauthorized", "detail": messages.UNAUTHORIZED}
    ]
    reader = await project.key("relations:read")
    forbidden = await send(client, project, "POST", path(guid()), {"data": []}, headers={"Api-Key": reader})
    assert errors_of(forbidden)[0]["detail"] == messages.FORBIDDEN
    wrong_version = await read(client, project, path(guid()), **{"api-version": "9"})
    assert errors_of(wrong_version)[0]["code"] == "BadRequest"
    huge = b'{"data": [' + b" " * 1_100_000 + b"]}"
    too_large = await send(client, project, "POST", path(guid()), huge)
    assert [(e["status"], e["code"]) for e in errors_of(too_large)] == [("413", "PayloadTooLarge")]
    nul = await client.get(path(guid()) + "?x=%00", headers=accept)
    assert errors_of(nul)[0]["detail"] == messages.NUL_IN_URL


@pytest.mark.parametrize(
    ("failure", "status", "code"),
    [
        (RuntimeError("a secret that must not leak"), 500, "InternalServerError"),
        (ServiceUnavailable(), 503, "ServiceUnavailable"),
        (TooManyRequests(), 429, "TooManyRequests"),
    ],
)
async def test_crashes_outages_and_limits(
    app: Starlette,
    project: Project,
    monkeypatch: pytest.MonkeyPatch,
    failure: Exception,
    status: int,
    code: str,
) -> None:
    async def failing(*args: object, **kwargs: object) -> None:
        raise failure

    monkeypatch.setattr(list_queries, "page", failing)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await read(client, project, path(guid()))
        heartcore = await read(client, project, path(guid()), accept="application/json")
    (error,) = errors_of(response)
    assert (response.status_code, error["code"]) == (status, code)
    assert "secret" not in response.text
    if status == 503:
        assert response.headers["retry-after"] == "2"
    assert heartcore.status_code == status and error_of(heartcore)["code"] == code


# --- Heartcore-form requests keep SPEC §3's envelope ---


async def test_heartcore_requests_keep_the_envelope(client: httpx.AsyncClient, project: Project) -> None:
    for accept in (None, "*/*", "application/json", "application/hal+json", "application/json+hal"):
        headers = {"Accept": accept} if accept else {}
        unknown = await client.get("/relation/4", headers={**project.headers, **headers})
        assert unknown.headers["content-type"] == "application/hal+json"
        assert error_of(unknown) == {"code": "NotFound", "message": messages.RELATION_NOT_FOUND.format(id=4)}
        anonymous = await client.get(path(guid()), headers=headers)
        assert error_of(anonymous) == {"code": "Unauthorized", "message": messages.UNAUTHORIZED}
    invalid = await client.patch(path(guid()), json={"connect": ["x"]}, headers=project.headers)
    assert error_of(invalid) == {
        "code": "ValidationFailed",
        "message": messages.RELATION_INVALID,
        "details": {"errors": {"connect[0]": [messages.FIELD_NOT_GUID]}},
    }


# --- the pure parts ---


def test_media_ranges() -> None:
    (found,) = jsonapi.media_ranges('Application/Vnd.Api+JSON; EXT="a, b"; q=0.3')
    assert (found.media_type, dict(found.parameters), found.q) == (JSON_API, {"ext": "a, b"}, 0.3)
    assert not found.supported
    assert [r.media_type for r in jsonapi.media_ranges("text/html, */*;q=0.1,,")] == ["text/html", "*/*"]
    assert jsonapi.parse_media_range(f"{JSON_API}; profile=x").supported


def test_pointers() -> None:
    assert jsonapi.pointer("data") == "/data"
    assert jsonapi.pointer("data[12].type") == "/data/12/type"
    assert jsonapi.pointer("data.id") == "/data/id"
    assert jsonapi.pointer("connect[0]") is None
    assert jsonapi.pointer("relationTypeAlias") is None


def test_error_response_chooses_by_the_request() -> None:
    error = ValidationFailed(messages.RELATION_INVALID, errors={"relationTypeAlias": ["a", "b"]})
    speaking: dict[str, Any] = {"type": "http", "headers": [(b"content-type", JSON_API.encode())]}
    document = orjson.loads(error_response(error, speaking).body)
    assert [item["detail"] for item in document["errors"]] == ["a", "b"]
    assert "source" not in document["errors"][0]
    plain: dict[str, Any] = {"type": "http", "headers": [(b"accept", b"application/json")]}
    assert orjson.loads(error_response(error, plain).body) == error.body()
    assert orjson.loads(error_response(error).body) == error.body()


async def test_an_edit_of_our_own_forms_from_a_json_api_client(
    client: httpx.AsyncClient, project: Project
) -> None:
    """A Strapi body with an Accept that prefers JSON:API: the answer is the list's first page as
    linkage, with the changes under `meta`."""
    parent, a, b = guid(), guid(), guid()
    headers = {**project.headers, "Accept": JSON_API}
    response = await client.patch(path(parent), json={"connect": [a, b]}, headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == JSON_API
    body = response.json()
    assert body["data"] == identifiers("unknown", a, b)
    assert body["meta"] == {"total": 2, "changes": {"added": 2, "removed": 0, "moved": 0}}
    assert (
        response.headers["etag"] == (await client.get(path(parent), headers=project.headers)).headers["etag"]
    )
