"""A published JSON:API client, kitsu (npm, pinned in tests/jsonapi_node), against `relations serve` over
a real socket: it writes a child list, reads it back (paged, following `links.next`), writes what it read
back, and parses the error documents (`error.errors`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from service.db import Database
from service.projects.service import SCOPES, create_key
from tests.conftest import guid
from tests.processes import Service, running_service
from tests.test_node_client import node_script, npm_installed

NODE_DIR = Path(__file__).resolve().parent / "jsonapi_node"


@pytest.fixture(scope="module")
def kitsu() -> Path:
    """tests/jsonapi_node with its locked dependencies installed."""
    return npm_installed(NODE_DIR, "kitsu")


@pytest.fixture(scope="module")
async def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Service]:
    async with running_service(database_url, tmp_path_factory.mktemp("kitsu")) as running:
        yield running


async def test_kitsu_writes_reads_and_parses_errors(kitsu: Path, server: Service, db: Database) -> None:
    project = f"kitsu-{guid()[:12]}"
    key = await create_key(db, project=project, scopes=list(SCOPES), name="kitsu")
    async with httpx.AsyncClient(base_url=server.base_url, headers={"Api-Key": key.key}) as http:
        for body in (
            {"alias": "articles", "name": "Articles", "childObjectType": "ARTICLE"},
            {"alias": "author", "name": "Author", "childObjectType": "PERSON", "cardinality": "one"},
        ):
            assert (await http.post("/relation/type", json=body)).status_code == 201
    environment = {"BASE_URL": server.base_url, "API_KEY": key.key, "PARENT": guid(), "MANY": "articles"}
    result = await node_script(kitsu, "jsonapi.mjs", {**environment, "ONE": "author"})
    assert result == {"ok": True, "read": 3, "errors": [409, 422, 404, 401]}
