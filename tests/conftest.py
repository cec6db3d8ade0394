"""Shared fixtures: one fresh PostgreSQL database per test session (TEST_DATABASE_URL's server, else the
embedded one), the app served in-process, and a fresh project with a key per test for isolation."""

from __future__ import annotations

import asyncio
import os
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from starlette.applications import Starlette

from service.app import create_app
from service.db import Database
from service.projects.service import SCOPES, create_key
from service.schema import connect, migrate
from service.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
TEST_SECRET_KEY = "test-secret-key-of-at-least-32-bytes!"


def _server_url() -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return url
    from service import embedded

    return embedded.start(ROOT / ".data" / "test", database="postgres")


def with_database(url: str, name: str) -> str:
    """The same server's database `name`."""
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


async def _admin(url: str, sql: str) -> None:
    connection = await connect(url)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A database of its own for this session, dropped at the end."""
    server = _server_url()
    name = f"relations_test_{os.getpid()}_{secrets.token_hex(3)}"
    asyncio.run(_admin(server, f'CREATE DATABASE "{name}"'))
    url = with_database(server, name)
    asyncio.run(migrate(url))
    try:
        yield url
    finally:
        asyncio.run(_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
async def own_database(database_url: str) -> AsyncIterator[str]:
    """A migrated database for one test, on the session's server: for what the session's other tests'
    rows would change (a TRUNCATE, whether any webhook is enabled)."""
    name = f"relations_own_{secrets.token_hex(4)}"
    await _admin(database_url, f'CREATE DATABASE "{name}"')
    url = with_database(database_url, name)
    await migrate(url)
    try:
        yield url
    finally:
        await _admin(database_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def make_settings(**values: Any) -> Settings:
    """Settings for a test's app: through pgbouncer (`make test-pgbouncer`) in its mode."""
    return Settings(pgbouncer=os.environ.get("RELATIONS_PGBOUNCER") or None, **values)


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    # Webhooks: a key to seal their secrets, receivers on 127.0.0.1 allowed; no sender in the shared
    # app (tests/webhooks start their own, with short timings).
    return make_settings(
        database_url=database_url,
        key_cache_seconds=0,
        secret_key=TEST_SECRET_KEY,
        webhook_allow_private=True,
        webhook_delivery=False,
    )


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[Starlette]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="session")
async def db(app: Starlette) -> Database:
    database: Database = app.state.db
    return database


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@dataclass
class Project:
    """A fresh project and a key of all scopes; `key(...)` makes more keys for it."""

    alias: str
    api_key: str
    db: Database
    extra_keys: list[str] = field(default_factory=list)

    @property
    def headers(self) -> dict[str, str]:
        return {"Api-Key": self.api_key}

    async def key(self, *scopes: str) -> str:
        new = await create_key(self.db, project=self.alias, scopes=list(scopes))
        return new.key


MakeProject = Callable[[], Awaitable[Project]]


@pytest.fixture
def make_project(db: Database) -> MakeProject:
    async def make() -> Project:
        return await new_project(db, f"p-{uuid.uuid4().hex[:12]}")

    return make


async def new_project(db: Database, alias: str) -> Project:
    """The project `alias` (made when missing) with a new key of every scope."""
    new = await create_key(db, project=alias, scopes=list(SCOPES))
    return Project(alias=alias, api_key=new.key, db=db)


@pytest.fixture
async def project(make_project: MakeProject) -> Project:
    return await make_project()


async def wait_until_blocked(url: str) -> None:
    """Until one of the service's statements on that database waits for a lock the test holds (bounded)."""
    connection = await connect(url)
    try:
        for _ in range(600):
            if await connection.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND application_name = 'relations'"
            ):
                return
            await asyncio.sleep(0.05)
    finally:
        await connection.close()
    raise AssertionError("the request never reached the database")


@dataclass
class Lookups:
    """How many API-key lookups reached the database."""

    count: int = 0


@pytest.fixture
def key_lookups(monkeypatch: pytest.MonkeyPatch) -> Lookups:
    """Counts the calls of `projects.queries.key_by_digest` (the one query a key lookup makes)."""
    from service.projects import queries

    lookups = Lookups()
    lookup = queries.key_by_digest

    async def counted(db: Database, *, digest: bytes) -> Any:
        lookups.count += 1
        return await lookup(db, digest=digest)

    monkeypatch.setattr(queries, "key_by_digest", counted)
    return lookups


def guid() -> str:
    return str(uuid.uuid4())


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    return error
