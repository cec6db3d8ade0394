"""Shared by the bulk tests: NDJSON in and out of the app."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

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
