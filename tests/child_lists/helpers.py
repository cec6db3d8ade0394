"""Calls of the child-list routes shared by the HTTP, state-machine and concurrency tests."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import Project

JSON_API = "application/vnd.api+json"


def path(parent: str, alias: str = "umbDocument") -> str:
    return f"/relation/parent/{parent}/{alias}"


async def call(
    client: httpx.AsyncClient,
    project: Project,
    method: str,
    parent: str,
    body: Any = None,
    *,
    alias: str = "umbDocument",
    headers: dict[str, str] | None = None,
    content_type: str | None = None,
) -> httpx.Response:
    sent = {**project.headers, **(headers or {})}
    kwargs: dict[str, Any] = {}
    if body is not None:
        import orjson

        kwargs["content"] = orjson.dumps(body)
        sent["Content-Type"] = content_type or "application/json"
    return await client.request(method, path(parent, alias), headers=sent, **kwargs)


def children(response: httpx.Response) -> list[str]:
    body = response.json()
    return [item["childId"] for item in body["_embedded"]["relations"]]


async def listing(
    client: httpx.AsyncClient, project: Project, parent: str, alias: str = "umbDocument"
) -> list[str]:
    response = await client.get(path(parent, alias) + "?pageSize=1000", headers=project.headers)
    assert response.status_code == 200, response.text
    return children(response)
