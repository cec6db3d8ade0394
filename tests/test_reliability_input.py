"""Bad input never gets a 500: body limits (declared or chunked), malformed and hostile JSON, wrong types,
NUL bytes, huge numbers, unicode, and garbage in every path parameter of every route."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from starlette.applications import Starlette

from service import messages
from service.app import api_routes
from service.bulk.routes import IMPORT_ROUTE
from service.db import Database
from service.endpoint import ApiRoute
from service.errors import BadRequest
from tests.conftest import Project, error_of, guid

WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
CHUNK = 64 * 1024
_PARAM = re.compile(r"{(\w+)(?::(\w+))?}")


def relation_body(**fields: Any) -> dict[str, Any]:
    return {"parentId": guid(), "childId": guid(), "relationTypeAlias": "relateDocumentOnCopy", **fields}


def route_url(route: ApiRoute, values: dict[str, str]) -> str:
    return _PARAM.sub(lambda found: values.get(found.group(1), "x"), route.path)


def method_of(route: ApiRoute) -> str:
    return next(iter((route.methods or {"GET"}) - {"HEAD"}))


def body_routes() -> list[ApiRoute]:
    """Every route whose handler reads a body (POST, PUT, PATCH) under the general limit (the import
    has its own, RELATIONS_IMPORT_MAX_BYTES: tests/bulk/test_routes.py)."""
    routes = [route for route in api_routes() if isinstance(route, ApiRoute) and route.name != IMPORT_ROUTE]
    return [route for route in routes if method_of(route) in ("POST", "PUT", "PATCH")]


def route_id(route: ApiRoute) -> str:
    return f"{method_of(route)} {route.path}"


class Chunks:
    """A chunked request body (no Content-Length) that counts how much of it was pulled."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.sent < self.total:
            self.sent += CHUNK
            yield b" " * CHUNK


async def existing_params(client: httpx.AsyncClient, project: Project) -> dict[str, str]:
    created = await client.post("/relation", json=relation_body(), headers=project.headers)
    assert created.status_code == 201
    return {"id": str(created.json()["_id"]), "guid": guid(), "alias": "relateDocumentOnCopy"}


@pytest.mark.parametrize("route", body_routes(), ids=route_id)
async def test_declared_oversized_body_is_413_on_every_body_route(
    client: httpx.AsyncClient, app: Starlette, project: Project, route: ApiRoute
) -> None:
    limit = app.state.settings.max_body_bytes
    url = route_url(route, await existing_params(client, project))
    response = await client.request(
        method_of(route),
        url,
        content=b" " * (limit + 1),
        headers={**project.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 413, response.text
    assert error_of(response) == {
        "code": "PayloadTooLarge",
        "message": messages.BODY_TOO_LARGE.format(limit=limit),
    }


@pytest.mark.parametrize("route", body_routes(), ids=route_id)
async def test_chunked_oversized_body_is_cut_off_at_the_limit(
    client: httpx.AsyncClient, app: Starlette, project: Project, route: ApiRoute
) -> None:
    limit = app.state.settings.max_body_bytes
    url = route_url(route, await existing_params(client, project))
    body = Chunks(64 * limit)
    response = await client.request(
        method_of(route), url, content=body, headers={**project.headers, "Content-Type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert response.status_code == 413, response.text
    assert error_of(response)["code"] == "PayloadTooLarge"
    # Refused while streaming: the rest of the 64 MiB was never pulled.
    assert body.sent <= limit + 2 * CHUNK


async def test_body_at_the_limit_is_read(client: httpx.AsyncClient, app: Starlette, project: Project) -> None:
    limit = app.state.settings.max_body_bytes
    payload = orjson.dumps(relation_body())
    padded = payload + b" " * (limit - len(payload))
    assert len(padded) == limit
    response = await client.post(
        "/relation", content=padded, headers={**project.headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 201, response.text


async def test_chunked_body_under_the_limit_is_read(client: httpx.AsyncClient, project: Project) -> None:
    payload = orjson.dumps(relation_body())

    async def pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(payload), 7):
            yield payload[start : start + 7]

    response = await client.post(
        "/relation", content=pieces(), headers={**project.headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{", messages.INVALID_JSON),
        (b'{"parentId": ', messages.INVALID_JSON),
        (b"[" * 100_000 + b"]" * 100_000, messages.INVALID_JSON),
        (b'{"a":' * 5000 + b"1" + b"}" * 5000, messages.INVALID_JSON),
        (b'{"comment": NaN}', messages.INVALID_JSON),
        (b'{"comment": Infinity}', messages.INVALID_JSON),
        (b'{"comment": 1e999}', messages.INVALID_JSON),
        (b"\xef\xbb\xbf{}", messages.INVALID_JSON),
        (b'{"comment": "\\ud800"}', messages.INVALID_JSON),
        (b'{"comment": "caf\xe9"}', messages.INVALID_UTF8),
        (b'{"comment": "\xff\xfe"}', messages.INVALID_UTF8),
        (b'"just a string"', messages.BODY_NOT_OBJECT),
        (b"[1, 2, 3]", messages.BODY_NOT_OBJECT),
        (b"null", messages.BODY_NOT_OBJECT),
        (b"12345678901234567890123456789012345678901234567890", messages.BODY_NOT_OBJECT),
        (b"   ", messages.EMPTY_BODY),
        (b"", messages.EMPTY_BODY),
    ],
)
async def test_malformed_bodies_are_400(
    client: httpx.AsyncClient, project: Project, raw: bytes, message: str
) -> None:
    response = await client.post(
        "/relation", content=raw, headers={**project.headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert error_of(response) == {"code": "BadRequest", "message": message}


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"parentId": 123}, "parentId"),
        ({"parentId": 1e308}, "parentId"),
        ({"parentId": 123456789012345678901234567890}, "parentId"),
        ({"childId": ["a", "b"]}, "childId"),
        ({"childId": {"id": guid()}}, "childId"),
        ({"childId": True}, "childId"),
        ({"parentId": "\x00" * 36}, "parentId"),
        ({"parentId": "00000000-0000-0000-0000-00000000000\x00"}, "parentId"),
        ({"relationTypeAlias": 42}, "relationTypeAlias"),
        ({"relationTypeAlias": "relate\x00DocumentOnCopy"}, "relationTypeAlias"),
        ({"relationTypeAlias": "\x00"}, "relationTypeAlias"),
        ({"relationTypeAlias": "x" * 100_000}, "relationTypeAlias"),
        ({"comment": "before\x00after"}, "comment"),
        ({"comment": 7}, "comment"),
        ({"comment": 10**40}, "comment"),
        ({"comment": {"nested": [[[[[[[[[[[]]]]]]]]]]]}}, "comment"),
        ({"comment": "é" * 1001}, "comment"),
        ({"\x00": "nul-named field"}, "\x00"),
    ],
    ids=lambda value: repr(value)[:40],
)
async def test_wrong_types_and_nul_bytes_are_422(
    client: httpx.AsyncClient, project: Project, fields: dict[str, Any], field: str
) -> None:
    payload = relation_body()
    payload.update(fields)
    raw = _dumps(payload)
    response = await client.post(
        "/relation", content=raw, headers={**project.headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    error = error_of(response)
    assert error["code"] == "ValidationFailed"
    assert error["message"] == messages.RELATION_INVALID
    assert field in error["details"]["errors"], error


def _dumps(payload: dict[str, Any]) -> bytes:
    """JSON with integers of any size (orjson stops at 64 bits; the standard library does not)."""
    import json

    return json.dumps(payload).encode()


@pytest.mark.parametrize(
    "fields",
    [
        {"name": "bad\x00name"},
        {"alias": "ab\x00c"},
        {"isBidirectional": "yes"},
        {"isDependency": 10**30},
        {"cardinality": 1e308},
        {"parentObjectType": "\x00"},
        {"childObjectType": ["DOCUMENT"]},
    ],
    ids=lambda value: repr(value)[:40],
)
async def test_relation_type_bodies_with_bad_values_are_422(
    client: httpx.AsyncClient, project: Project, fields: dict[str, Any]
) -> None:
    payload = {"alias": "tidy", "name": "Tidy", **fields}
    response = await client.post(
        "/relation/type",
        content=_dumps(payload),
        headers={**project.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    error = error_of(response)
    assert error["message"] == messages.RELATION_TYPE_INVALID
    assert set(error["details"]["errors"]) & set(fields), error


async def test_unicode_round_trips(client: httpx.AsyncClient, project: Project) -> None:
    comment = "😀 עברית ä̊ 中文 \u200b\u2028 " + "\U0001d518" * 900
    created = await client.post("/relation", json=relation_body(comment=comment), headers=project.headers)
    assert created.status_code == 201, created.text
    fetched = await client.get(f"/relation/{created.json()['_id']}", headers=project.headers)
    assert fetched.json()["comment"] == comment


@pytest.mark.parametrize(
    "url",
    [
        "/relation/parent/%00",
        "/relation/child/abc%00def",
        "/relation/type/%00",
        "/relation/%00",
        "/relation/related/%00",
        "/relation/type?Umb-Project-Alias=%00",
        "/relation/parent/0b6f1a7e-8f3c-4c1e-9d3a-5d2f6b7c8e9a?relationType=%00",
        "/relation/referenced?id=%00",
        "/relation/relateDocumentOnCopy?page=1%00",
    ],
)
async def test_nul_in_the_url_is_400(client: httpx.AsyncClient, project: Project, url: str) -> None:
    response = await client.get(url, headers=project.headers)
    assert response.status_code == 400, response.text
    assert error_of(response) == {"code": "BadRequest", "message": messages.NUL_IN_URL}


GARBAGE = [
    "%FF%FE",
    "%F0%9F%98%80",
    "x" * 5000,
    "..%2F..%2Fetc",
    "-1",
    "1e999",
    "99999999999999999999999999999999",
    "%20",
    "%E2%80%AE",
    "{0}",
]


def all_routes() -> list[ApiRoute]:
    return [route for route in api_routes() if isinstance(route, ApiRoute)]


@pytest.mark.parametrize("route", all_routes(), ids=route_id)
async def test_garbage_in_every_path_parameter_is_never_a_500(
    client: httpx.AsyncClient, project: Project, route: ApiRoute
) -> None:
    names = [found.group(1) for found in _PARAM.finditer(route.path)]
    for value in GARBAGE:
        url = route_url(route, dict.fromkeys(names, value)) + f"?page={value}&relationType={value}&id={value}"
        response = await client.request(method_of(route), url, headers=project.headers, json=[value])
        assert response.status_code < 500, (url, response.text)
        if response.status_code >= 400:
            assert set(error_of(response)) >= {"code", "message"}


async def test_huge_relation_id_is_404(client: httpx.AsyncClient, project: Project) -> None:
    response = await client.get("/relation/" + "9" * 40, headers=project.headers)
    assert response.status_code == 404
    assert error_of(response)["message"] == messages.RELATION_NOT_FOUND.format(id="9" * 40)


async def test_database_refusals_of_values_are_400_not_500(db: Database) -> None:
    """The safety net under the validation: PostgreSQL's NUL refusal and the driver's range check."""
    with pytest.raises(BadRequest) as nul:
        await db.fetchval("SELECT $1::text", "a\x00b")
    assert nul.value.message == messages.INVALID_VALUE
    with pytest.raises(BadRequest) as too_big:
        await db.fetchval("SELECT $1::integer", 2**40)
    assert too_big.value.message == messages.INVALID_VALUE
