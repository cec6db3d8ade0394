"""Shared by the bulk tests: NDJSON in and out of the app."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from service.db import Database
from service.projects.service import create_key
from tests.conftest import Project

NDJSON = "application/x-ndjson"


def ndjson(*lines: Any) -> bytes:
    """Lines from objects (bytes and str are taken as they are)."""
    out = []
    for line in lines:
        if isinstance(line, bytes):
            out.append(line)
        elif isinstance(line, str):
            out.append(line.encode())
        else:
            out.append(orjson.dumps(line))
    return b"\n".join(out) + b"\n"


def relation(parent: str, child: str, alias: str = "umbDocument", **more: Any) -> dict[str, Any]:
    return {"relation": {"parentId": parent, "childId": child, "relationTypeAlias": alias, **more}}


def relation_type(alias: str, name: str | None = None, **more: Any) -> dict[str, Any]:
    return {"relationType": {"alias": alias, "name": name or alias, **more}}


async def export(client: httpx.AsyncClient, project: Project, **params: str) -> list[dict[str, Any]]:
    answer = await client.get("/relation/export", params=params, headers=project.headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == NDJSON
    return [orjson.loads(line) for line in answer.content.splitlines()]


async def upload(
    client: httpx.AsyncClient, project: Project, body: bytes, headers: dict[str, str] | None = None
) -> httpx.Response:
    return await client.post(
        "/relation/import",
        content=body,
        headers={"Content-Type": NDJSON, **project.headers, **(headers or {})},
    )


async def children(client: httpx.AsyncClient, project: Project, parent: str, alias: str) -> list[str]:
    answer = await client.get(
        f"/relation/parent/{parent}",
        params={"relationType": alias, "pageSize": 1000},
        headers=project.headers,
    )
    assert answer.status_code == 200, answer.text
    return [item["childId"] for item in answer.json()["_embedded"]["relations"]]


def asgi_scope(method: str, path: str, project: Project, *headers: tuple[bytes, bytes]) -> dict[str, Any]:
    """An HTTP request's ASGI scope, to call the app with receive() and send() of the test's own."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"api-key", project.api_key.encode()), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }


async def export_of(client: httpx.AsyncClient, db: Database, alias: str) -> list[dict[str, Any]]:
    """The export of a project the test did not make itself (the CLI did)."""
    new = await create_key(db, project=alias, scopes=["relations:read"])
    return await export(client, Project(alias=alias, api_key=new.key, db=db))
