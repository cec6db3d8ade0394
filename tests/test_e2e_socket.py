"""End to end over a real socket: `relations serve` in a subprocess on a free port, against the session's
database, with an API key (two header forms) and bearer tokens (HS256, RS256, ES256)."""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from service import messages
from service.db import Database
from service.projects.service import SCOPES, create_key
from tests.conftest import guid
from tests.processes import Service, running_service
from tests.test_auth import (
    AUDIENCE,
    EC_PRIVATE,
    ISSUER,
    RSA_PUBLIC,
    SECRET,
    claims_for,
    es256,
    hs256,
    rs256,
)


def jwt_env(public_key: str = RSA_PUBLIC) -> dict[str, str]:
    return {
        "RELATIONS_JWT_SECRET": SECRET,
        "RELATIONS_JWT_PUBLIC_KEY": public_key,
        "RELATIONS_JWT_ISSUER": ISSUER,
        "RELATIONS_JWT_AUDIENCE": AUDIENCE,
    }


@pytest.fixture(scope="module")
async def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Service]:
    async with running_service(database_url, tmp_path_factory.mktemp("e2e"), env=jwt_env()) as running:
        yield running


@pytest.fixture(scope="module")
async def ec_server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Service]:
    from tests.test_auth import EC_PUBLIC

    folder = tmp_path_factory.mktemp("e2e-ec")
    async with running_service(database_url, folder, env=jwt_env(EC_PUBLIC)) as running:
        yield running


@dataclass(frozen=True)
class Tenant:
    alias: str
    key: str


@pytest.fixture
async def tenant(db: Database) -> Tenant:
    alias = f"e2e-{guid()[:12]}"
    new = await create_key(db, project=alias, scopes=list(SCOPES), name="e2e")
    return Tenant(alias, new.key)


async def heartcore_flow(base_url: str, headers: dict[str, str]) -> None:
    """What a Heartcore client does, checked step by step over the socket."""
    common = {"Accept": "application/json+hal", "Api-Version": "2.2", **headers}
    async with httpx.AsyncClient(base_url=base_url, headers=common, timeout=10) as http:
        parent, child = guid(), guid()
        body = {"parentId": parent, "childId": child, "relationTypeAlias": "relateDocumentOnCopy"}
        created = await http.post("/relation", json=body)
        assert created.status_code == 201, created.text
        relation = created.json()
        relation_id = relation["_id"]
        assert created.headers["location"] == f"{base_url}/relation/{relation_id}"
        assert created.headers["content-type"] == "application/hal+json"
        assert relation["comment"] == "" and relation["parentId"] == parent

        assert (await http.get(f"/relation/{relation_id}")).json() == relation
        for path in (f"/relation/parent/{parent}", f"/relation/child/{child}"):
            listed = (await http.get(path)).json()
            assert listed["_totalItems"] == 1, path
            assert [item["_id"] for item in listed["_embedded"]["relations"]] == [relation_id]
        by_alias = (await http.get("/relation/relateDocumentOnCopy")).json()
        assert relation_id in [item["_id"] for item in by_alias["_embedded"]["relations"]]
        relation_type = (await http.get("/relation/type/relateDocumentOnCopy")).json()
        assert relation_type["_id"] == "4cbeb612-e689-3563-b755-bf3ede295433"

        duplicate = await http.post("/relation", json=body)
        assert duplicate.status_code == 422
        assert duplicate.json()["error"]["code"] == "ValidationFailed"
        assert duplicate.json()["error"]["message"] == messages.RELATION_INVALID

        deleted = await http.delete(f"/relation/{relation_id}")
        assert deleted.status_code == 200 and deleted.json()["_id"] == relation_id
        gone = await http.get(f"/relation/{relation_id}")
        assert gone.status_code == 404
        assert gone.json() == {
            "error": {"code": "NotFound", "message": messages.RELATION_NOT_FOUND.format(id=relation_id)}
        }


async def test_api_key_header(server: Service, tenant: Tenant) -> None:
    await heartcore_flow(server.base_url, {"Api-Key": tenant.key, "Umb-Project-Alias": tenant.alias})


async def test_basic_key(server: Service, tenant: Tenant) -> None:
    encoded = base64.b64encode(f"{tenant.key}:".encode()).decode()
    await heartcore_flow(server.base_url, {"Authorization": f"Basic {encoded}"})


async def test_bearer_hs256(server: Service, tenant: Tenant) -> None:
    await heartcore_flow(server.base_url, {"Authorization": f"Bearer {hs256(claims_for(tenant.alias))}"})


async def test_bearer_rs256(server: Service, tenant: Tenant) -> None:
    token = rs256(claims_for(tenant.alias))
    await heartcore_flow(
        server.base_url, {"Authorization": f"Bearer {token}", "Umb-Project-Alias": tenant.alias}
    )


async def test_bearer_es256(ec_server: Service, tenant: Tenant) -> None:
    await heartcore_flow(
        ec_server.base_url, {"Authorization": f"Bearer {es256(claims_for(tenant.alias), EC_PRIVATE)}"}
    )


async def test_refusals_over_the_socket(server: Service, tenant: Tenant) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
        none = await http.get("/relation/type")
        assert none.status_code == 401
        assert none.json() == {"error": {"code": "Unauthorized", "message": messages.UNAUTHORIZED}}
        expired = hs256(claims_for(tenant.alias, exp=int(time.time()) - 3600))
        refused_expired = await http.get("/relation/type", headers={"Authorization": f"Bearer {expired}"})
        assert refused_expired.status_code == 401
        read_only = hs256(claims_for(tenant.alias, scope="relations:read"))
        body = {"parentId": guid(), "childId": guid(), "relationTypeAlias": "relateDocumentOnCopy"}
        refused = await http.post("/relation", json=body, headers={"Authorization": f"Bearer {read_only}"})
        assert refused.status_code == 403
        assert refused.json() == {"error": {"code": "Forbidden", "message": messages.FORBIDDEN}}


async def test_oversized_header_gets_the_servers_own_4xx(server: Service, tenant: Tenant) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
        huge = await http.get("/relation/type", headers={"Api-Key": "k" * 100_000})
        assert 400 <= huge.status_code < 500
        # Still serving afterwards.
        assert (await http.get("/relation/type", headers={"Api-Key": tenant.key})).status_code == 200
