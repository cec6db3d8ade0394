"""The `relations keys …` and `relations projects …` commands (SPEC §1), run as the console script against
the session's database; the keys they print are then used against the app."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx

from service.db import Database
from service.settings import Settings
from tests.conftest import guid

RELATIONS = Path(sys.executable).with_name("relations")
KEY_SHAPE = re.compile(r"rr_[0-9a-f]{12}_[A-Za-z0-9_-]{43}")
BUILTIN_TYPES = {
    "relateDocumentOnCopy",
    "relateParentDocumentOnDelete",
    "relateParentMediaFolderOnDelete",
    "umbMedia",
    "umbDocument",
    "umbMember",
}


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str

    @property
    def last_line(self) -> str:
        return self.out.rstrip("\n").splitlines()[-1]


async def relations(database_url: str, *args: str) -> Run:
    process = await asyncio.create_subprocess_exec(
        str(RELATIONS),
        *args,
        env={**os.environ, "DATABASE_URL": database_url},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return Run(process.returncode, out.decode(), err.decode())


def new_alias() -> str:
    return f"cli-{guid()[:12]}"


async def test_keys_create_prints_the_key_last_and_creates_the_project(
    database_url: str, client: httpx.AsyncClient, db: Database
) -> None:
    alias = new_alias()
    run = await relations(
        database_url, "keys", "create", "--project", alias, "--scopes", "relations:read", "--name", "ci"
    )
    assert run.code == 0, run.err
    key = run.last_line
    assert KEY_SHAPE.fullmatch(key), run.out
    types = await db.fetch("SELECT alias FROM relation_type WHERE project = $1", alias)
    assert {row["alias"] for row in types} == BUILTIN_TYPES

    listed = await client.get("/relation/type", headers={"Api-Key": key})
    assert listed.status_code == 200 and listed.json()["_totalItems"] == 6
    body = {"parentId": guid(), "childId": guid(), "relationTypeAlias": "umbMedia"}
    write = await client.post("/relation", json=body, headers={"Api-Key": key})
    assert write.status_code == 403  # read scope only


async def test_keys_create_with_several_scopes(database_url: str, client: httpx.AsyncClient) -> None:
    alias = new_alias()
    scopes = "relations:read relations:write"
    run = await relations(database_url, "keys", "create", "--project", alias, "--scopes", scopes)
    assert run.code == 0, run.err
    headers = {"Api-Key": run.last_line}
    body = {"parentId": guid(), "childId": guid(), "relationTypeAlias": "umbMedia"}
    assert (await client.post("/relation", json=body, headers=headers)).status_code == 201
    new_type = {"alias": "cliType", "name": "CLI"}
    assert (await client.post("/relation/type", json=new_type, headers=headers)).status_code == 403


async def test_keys_create_refuses_bad_input(database_url: str, db: Database) -> None:
    alias = new_alias()
    unknown_scope = await relations(database_url, "keys", "create", "--project", alias, "--scopes", "admin")
    assert unknown_scope.code == 2 and "scopes must be some of" in unknown_scope.err
    no_scope = await relations(database_url, "keys", "create", "--project", alias, "--scopes", " ")
    assert no_scope.code == 2
    bad_alias = await relations(
        database_url, "keys", "create", "--project", "Not_Valid", "--scopes", "relations:read"
    )
    assert bad_alias.code == 2 and "invalid project alias" in bad_alias.err
    assert await db.fetchval("SELECT count(*) FROM project WHERE project = $1", alias) == 0


async def test_keys_list_and_revoke(database_url: str, client: httpx.AsyncClient) -> None:
    alias = new_alias()
    created = await relations(
        database_url,
        "keys",
        "create",
        "--project",
        alias,
        "--scopes",
        "relations:read",
        "--name",
        "to revoke",
    )
    key = created.last_line
    key_id = key.split("_")[1]
    assert (await client.get("/relation/type", headers={"Api-Key": key})).status_code == 200

    listed = await relations(database_url, "keys", "list", "--project", alias)
    assert listed.code == 0, listed.err
    [line] = listed.out.splitlines()
    fields = line.split("\t")
    assert fields[0] == key_id and fields[1] == "active" and fields[2] == "relations:read"
    assert (
        fields[3].startswith("created ") and fields[4].startswith("last used 20") and fields[5] == "to revoke"
    )
    assert key not in listed.out and key.split("_", 2)[2] not in listed.out  # the secret is never shown again

    revoked = await relations(database_url, "keys", "revoke", key_id)
    assert revoked.code == 0 and revoked.out.strip() == f"revoked key {key_id} of project {alias}"
    # The test app caches keys for 0 s; production's bound is 5 s (test_auth).
    assert (await client.get("/relation/type", headers={"Api-Key": key})).status_code == 401
    relisted = await relations(database_url, "keys", "list", "--project", alias)
    assert relisted.out.split("\t")[1].startswith("revoked 20")
    again = await relations(database_url, "keys", "revoke", key_id)
    assert again.code == 0  # revoking twice is harmless and keeps the first time


async def test_keys_revoke_and_list_unknown(database_url: str) -> None:
    unknown = await relations(database_url, "keys", "revoke", "000000000000")
    assert unknown.code == 1 and "no key with id 000000000000" in unknown.err
    missing = await relations(database_url, "keys", "list", "--project", new_alias())
    assert missing.code == 1 and "no project" in missing.err


async def test_projects_create_and_list(database_url: str, db: Database) -> None:
    alias = new_alias()
    created = await relations(database_url, "projects", "create", alias)
    assert created.code == 0 and created.out.strip() == f"created project {alias}"
    again = await relations(database_url, "projects", "create", alias)
    assert again.code == 0 and again.out.strip() == f"project {alias} exists"
    types = await db.fetch("SELECT alias FROM relation_type WHERE project = $1", alias)
    assert {row["alias"] for row in types} == BUILTIN_TYPES
    listed = await relations(database_url, "projects", "list")
    assert alias in [line.split("\t")[0] for line in listed.out.splitlines()]
    invalid = await relations(database_url, "projects", "create", "-bad")
    assert invalid.code != 0
    upper = await relations(database_url, "projects", "create", "UPPER")
    assert upper.code == 2 and "invalid project alias" in upper.err


async def test_keys_create_with_a_rate_limit(database_url: str, client: httpx.AsyncClient) -> None:
    alias = new_alias()
    args = ("keys", "create", "--project", alias, "--scopes", "relations:read")
    created = await relations(database_url, *args, "--rate-limit", "1/s burst 2")
    assert created.code == 0, created.err
    assert "rate limit 1/s burst 2" in created.out
    key = created.last_line
    # The test app sets no RELATIONS_RATE_LIMIT: the key's own budget applies all the same.
    statuses = [(await client.get("/relation/type", headers={"Api-Key": key})).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    plain = await relations(database_url, *args)
    listed = await relations(database_url, "keys", "list", "--project", alias)
    limits = {line.split("\t")[0]: line.split("\t")[-1] for line in listed.out.splitlines()}
    assert limits == {key.split("_")[1]: "1/s burst 2", plain.last_line.split("_")[1]: "default limit"}


async def test_keys_create_refuses_a_bad_rate_limit(database_url: str) -> None:
    alias = new_alias()
    args = ("keys", "create", "--project", alias, "--scopes", "relations:read")
    refused = await relations(database_url, *args, "--rate-limit", "lots")
    assert refused.code == 2
    assert "--rate-limit" in refused.err and "<n>/s burst <m>" in refused.err


async def test_a_bad_setting_stops_every_command_naming_the_variable(database_url: str) -> None:
    process = await asyncio.create_subprocess_exec(
        str(RELATIONS),
        "projects",
        "list",
        env={**os.environ, "DATABASE_URL": database_url, "RELATIONS_RATE_LIMIT": "fast"},
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 2
    assert "RELATIONS_RATE_LIMIT" in err.decode()


def test_embedded_mode_makes_the_secret_key_once(tmp_path: Path) -> None:
    from service.cli import dev_secret_key
    from service.webhooks.signing import SecretBox

    settings = Settings(data_dir=tmp_path)
    key = dev_secret_key(settings)
    assert (tmp_path / "secret-key").stat().st_mode & 0o777 == 0o600
    assert dev_secret_key(settings) == key
    SecretBox(key)  # long enough to seal secrets
