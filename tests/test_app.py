"""App assembly (service/app.py, service/endpoint.py): the envelope on every failure, the order of
checks, versions and media types."""

from __future__ import annotations

import httpx
import pytest

from service import messages
from tests.conftest import Project, error_of


async def test_unknown_route_is_404_envelope(client: httpx.AsyncClient) -> None:
    response = await client.get("/nowhere")
    assert response.status_code == 404
    assert error_of(response) == {
        "code": "NotFound",
        "message": messages.ROUTE_NOT_FOUND.format(path="/nowhere"),
    }


async def test_wrong_method_is_405_before_auth(client: httpx.AsyncClient) -> None:
    response = await client.patch("/relation/1")
    assert response.status_code == 405
    assert error_of(response)["code"] == "MethodNotAllowed"
    assert "GET" in response.headers["allow"]


async def test_version_checked_before_credentials(client: httpx.AsyncClient) -> None:
    response = await client.get("/relation/1", headers={"Api-Version": "3"})
    assert response.status_code == 400
    assert error_of(response)["message"] == messages.INVALID_VERSION.format(version="3")
    assert (await client.get("/relation/1")).status_code == 401


@pytest.mark.parametrize(
    "headers",
    [
        {"Api-Version": "2"},
        {"Api-Version": "2.0"},
        {"Api-Version": "2.2"},
        {"Accept": "application/json+hal;v=2"},
        {"Accept": "application/hal+json"},
        {"Accept": "text/html"},
        {"Accept": "*/*"},
        {},
    ],
)
async def test_accepted_versions_and_accepts(
    client: httpx.AsyncClient, project: Project, headers: dict[str, str]
) -> None:
    response = await client.get("/relation/type", headers={**project.headers, **headers})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/hal+json"


@pytest.mark.parametrize("query", ["api-version=1", "api-version=2.x.1", "api-version=two"])
async def test_bad_version_query(client: httpx.AsyncClient, project: Project, query: str) -> None:
    response = await client.get(f"/relation/type?{query}", headers=project.headers)
    assert response.status_code == 400
    assert (await client.get("/relation/type?api-version=2", headers=project.headers)).status_code == 200


async def test_accept_version_other_than_2(client: httpx.AsyncClient, project: Project) -> None:
    response = await client.get(
        "/relation/type", headers={**project.headers, "Accept": "application/json;v=1"}
    )
    assert response.status_code == 400


async def test_health(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health/live")).json() == {"status": "live"}
    assert (await client.get("/health/ready")).json() == {"status": "ready"}
