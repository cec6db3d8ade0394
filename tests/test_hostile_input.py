"""Hostile input in credentials, project aliases, versions, paths and query parameters: always a clean
4xx in the error envelope, never a 500 (an oversized header over a real socket is in test_e2e_socket)."""

from __future__ import annotations

import base64
import re
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from service import messages
from service.app import create_app
from service.endpoint import ApiRoute
from tests.conftest import Project, error_of, guid
from tests.test_auth import ROUTE_IDS, ROUTES, claims_for, hs256, jwt_settings, method_of, serving

PATH_PARAM = re.compile(r"{\w+(?::\w+)?}")

HOSTILE_STRINGS = [
    "' OR '1'='1",
    "x'; DROP TABLE api_key; --",
    "rr_000000000000_' OR 1=1 --" + "A" * 20,
    "\x00",
    "rr_\x00" + "a" * 40,
    "ключ🔑",
    "é" * 300,
    "a" * 7 * 1024,
    "a" * 9000,
    "%00",
    "../../etc/passwd",
    "${jndi:ldap://x}",
    "\r\n\tspaced",
]


def header_bytes(value: str) -> bytes:
    """Header values are bytes on the wire; non-ASCII is sent as UTF-8, as a hostile client might."""
    return value.encode("utf-8")


def assert_envelope(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    assert response.status_code in statuses, (response.status_code, response.text[:300])
    error = error_of(response)
    assert isinstance(error["code"], str) and isinstance(error["message"], str)
    assert "Traceback" not in response.text and "asyncpg" not in response.text
    return error


def credential_headers(value: str) -> list[dict[bytes, bytes]]:
    raw = header_bytes(value)
    return [
        {b"Api-Key": raw},
        {b"Authorization": b"Bearer " + raw},
        {b"Authorization": b"Basic " + raw},
        {b"Authorization": b"Basic " + base64.b64encode(raw + b":")},
        {b"Authorization": raw},
    ]


@pytest.mark.parametrize("value", HOSTILE_STRINGS, ids=range(len(HOSTILE_STRINGS)))
async def test_hostile_credentials_are_401(client: httpx.AsyncClient, value: str) -> None:
    for headers in credential_headers(value):
        response = await client.get("/relation/type", headers=headers)
        error = assert_envelope(response, 401)
        assert error == {"code": "Unauthorized", "message": messages.UNAUTHORIZED}


async def test_hostile_project_claims_are_401(database_url: str) -> None:
    """A correctly signed token naming a hostile project is refused before any lookup."""
    async with serving(create_app(jwt_settings(database_url))) as client:
        for value in HOSTILE_STRINGS:
            token = hs256(claims_for(value))
            response = await client.get("/relation/type", headers={"Authorization": f"Bearer {token}"})
            error = assert_envelope(response, 401)
            assert error == {"code": "Unauthorized", "message": messages.UNAUTHORIZED}


@pytest.mark.parametrize("value", HOSTILE_STRINGS, ids=range(len(HOSTILE_STRINGS)))
async def test_hostile_project_alias_is_403(client: httpx.AsyncClient, project: Project, value: str) -> None:
    header = await client.get(
        "/relation/type", headers={**project.headers, "Umb-Project-Alias": header_bytes(value)}
    )
    assert_envelope(header, 403)
    query = await client.get("/relation/type", headers=project.headers, params={"Umb-Project-Alias": value})
    # A NUL anywhere in the URL is refused as a bad request before the credential is looked at.
    error = assert_envelope(query, 400 if "\x00" in value else 403)
    if "\x00" not in value:
        assert error == {"code": "Forbidden", "message": messages.FORBIDDEN}


@pytest.mark.parametrize("value", HOSTILE_STRINGS, ids=range(len(HOSTILE_STRINGS)))
async def test_hostile_version_is_400(client: httpx.AsyncClient, project: Project, value: str) -> None:
    response = await client.get(
        "/relation/type", headers={**project.headers, "Api-Version": header_bytes(value)}
    )
    error = assert_envelope(response, 400)
    assert error["code"] == "BadRequest"


PATH_VALUES = [
    "%00",
    "a%00b",
    quote("' OR '1'='1", safe=""),
    quote("x'; DROP TABLE relation; --", safe=""),
    quote("ключ🔑", safe=""),
    "%C3%28",  # not UTF-8
    "%FF%FE",
    "a" * 5000,
    "9" * 40,
    "-1",
    quote(guid().upper() + "\x00", safe=""),
    "..%2F..%2Fetc",
]


@pytest.mark.parametrize("value", PATH_VALUES, ids=range(len(PATH_VALUES)))
@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
async def test_hostile_path_params(
    client: httpx.AsyncClient, project: Project, route: ApiRoute, value: str
) -> None:
    """Every path parameter of every route filled with hostile text: a clean answer, never a 500."""
    path = PATH_PARAM.sub(lambda found: value, route.path)
    body = b"[]" if method_of(route) in ("POST", "PUT", "PATCH") else None
    headers = {**project.headers, "Content-Type": "application/json"}
    response = await client.request(method_of(route), path, headers=headers, content=body)
    assert response.status_code < 500, (path[:200], response.text[:300])
    if response.status_code >= 400:
        assert_envelope(response, response.status_code)


@pytest.mark.parametrize("value", ["%00", "a%00", quote("' OR 1=1 --"), quote("ключ"), "a" * 5000, "%FF"])
async def test_hostile_query_parameters(client: httpx.AsyncClient, project: Project, value: str) -> None:
    parent = guid()
    for path in (
        f"/relation/parent/{parent}?relationType={value}",
        f"/relation/child/{parent}?relationType={value}&dependency={value}",
        f"/relation/parent/{parent}?page={value}",
        f"/relation/parent/{parent}?pageSize={value}",
        f"/relation/referenced?id={value}",
        f"/relation/type?page=1&{value}={value}",
        f"/relation/type/relateDocumentOnCopy?force={value}",
    ):
        response = await client.get(path, headers=project.headers)
        assert response.status_code < 500, (path[:200], response.text[:300])
        if response.status_code >= 400:
            assert_envelope(response, response.status_code)


async def test_very_long_path(client: httpx.AsyncClient, project: Project) -> None:
    for path in ("/relation/" + "a" * 50_000, "/relation/type/" + "b" * 50_000, "/" + "c/" * 10_000):
        response = await client.get(path, headers=project.headers)
        assert 400 <= response.status_code < 500, response.text[:300]
        assert_envelope(response, response.status_code)
