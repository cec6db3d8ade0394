"""The published Umbraco Heartcore Node.js client (`@umbraco/headless-client`, pinned in tests/node), used
unchanged against `relations serve` over a real socket, with its `apiKey` and
`accessTokenResolver` options."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from service.db import Database
from service.projects.service import SCOPES, create_key
from tests.conftest import guid
from tests.processes import Service, running_service
from tests.test_auth import claims_for, rs256
from tests.test_e2e_socket import jwt_env

NODE_DIR = Path(__file__).resolve().parent / "node"


def npm_installed(folder: Path, package: str) -> Path:
    """`folder` (a package.json and its lock file) with its dependencies installed (`npm ci` when
    `package` is missing from node_modules); the test is skipped when node or npm cannot do it."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip(f"node and npm are needed to run {package}")
    if not (folder / "node_modules" / package).is_dir():
        installed = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if installed.returncode != 0:
            pytest.skip(f"npm ci could not install {package}: {installed.stderr.strip()[-500:]}")
    return folder


async def node_script(folder: Path, script: str, environment: dict[str, str]) -> Any:
    """Runs `node script` in `folder` with `environment` added; it must exit 0, and its last line of
    output (JSON) is the result."""
    process = await asyncio.create_subprocess_exec(
        "node",
        script,
        cwd=folder,
        env={**os.environ, **environment},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, stderr.decode()
    return json.loads(stdout.decode().strip().splitlines()[-1])


@pytest.fixture(scope="module")
def node_client() -> Path:
    """tests/node with its locked dependencies installed."""
    return npm_installed(NODE_DIR, "@umbraco/headless-client")


@pytest.fixture(scope="module")
async def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Service]:
    async with running_service(database_url, tmp_path_factory.mktemp("node"), env=jwt_env()) as running:
        yield running


async def test_umbraco_node_client_unchanged(node_client: Path, server: Service, db: Database) -> None:
    alias = f"node-{guid()[:12]}"
    key = await create_key(db, project=alias, scopes=list(SCOPES), name="node client")
    token = rs256(claims_for(alias, scope="relations:read relations:write"))
    environment = {"BASE_URL": server.base_url, "PROJECT": alias, "API_KEY": key.key, "TOKEN": token}
    result = await node_script(node_client, "relations.js", environment)
    assert result == {"ok": True, "flows": ["apiKey", "accessTokenResolver", "apiKey without projectAlias"]}
