"""The database going away and coming back (service/db.py maps every driver failure once): 503 with
Retry-After while it is gone, /health/ready 503 and /health/live 200, recovery without a restart. Also
the statement timeout, and start-up against a database that cannot be reached."""

from __future__ import annotations

import asyncio
import secrets
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest

from service import messages
from service.app import create_app
from service.db import Database, split_url, translate
from service.errors import ServiceUnavailable
from service.projects.service import SCOPES, create_key
from service.schema import connect, migrate
from service.settings import Settings
from tests.conftest import Project, error_of, guid, wait_until_blocked, with_database


@dataclass
class Isolated:
    """An app on a database of its own, which the test may take away."""

    name: str
    admin_url: str
    client: httpx.AsyncClient
    headers: dict[str, str]

    async def admin(self, sql: str) -> Any:
        connection = await connect(self.admin_url)
        try:
            return await connection.execute(sql)
        finally:
            await connection.close()

    async def take_away(self) -> None:
        """Refuse new connections and terminate the existing ones, as a failover or restart would."""
        await self.admin(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS false')
        await self.terminate()

    async def terminate(self) -> None:
        await self.admin(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{self.name}' AND pid <> pg_backend_pid()"
        )

    async def bring_back(self) -> None:
        await self.admin(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS true')


@pytest.fixture
async def isolated(database_url: str) -> AsyncIterator[Isolated]:
    name = f"relations_outage_{secrets.token_hex(4)}"
    admin_url = with_database(database_url, "postgres")
    connection = await connect(admin_url)
    await connection.execute(f'CREATE DATABASE "{name}"')
    await connection.close()
    url = with_database(database_url, name)
    await migrate(url)
    settings = Settings(database_url=url, key_cache_seconds=0, pool_min_size=1, pool_max_size=4)
    app = create_app(settings)
    try:
        async with app.router.lifespan_context(app):
            key = await create_key(app.state.db, project="outage", scopes=list(SCOPES))
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
                yield Isolated(name, admin_url, client, {"Api-Key": key.key})
    finally:
        cleanup = await connect(admin_url)
        await cleanup.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await cleanup.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await cleanup.close()


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert error_of(response) == {"code": "ServiceUnavailable", "message": messages.UNAVAILABLE}
    assert response.headers["retry-after"] == "2"


def relation_body() -> dict[str, str]:
    return {"parentId": guid(), "childId": guid(), "relationTypeAlias": "relateDocumentOnCopy"}


async def test_outage_answers_503_then_recovers_without_restart(isolated: Isolated) -> None:
    http, headers = isolated.client, isolated.headers
    created = await http.post("/relation", json=relation_body(), headers=headers)
    assert created.status_code == 201, created.text
    relation_url = f"/relation/{created.json()['_id']}"
    assert (await http.get("/health/ready")).status_code == 200

    await isolated.take_away()
    for _ in range(3):  # a terminated pooled connection first, then refused new ones
        assert_unavailable(await http.get(relation_url, headers=headers))
    assert_unavailable(await http.post("/relation", json=relation_body(), headers=headers))
    assert_unavailable(await http.get("/relation/type", headers=headers))
    ready = await http.get("/health/ready")
    assert_unavailable(ready)
    assert (await http.get("/health/live")).status_code == 200

    await isolated.bring_back()
    for _ in range(200):  # recovers by itself; no restart
        if (await http.get("/health/ready")).status_code == 200:
            break
        await asyncio.sleep(0.05)
    assert (await http.get("/health/ready")).status_code == 200
    assert (await http.get(relation_url, headers=headers)).status_code == 200
    assert (await http.post("/relation", json=relation_body(), headers=headers)).status_code == 201


async def test_connection_terminated_mid_query_is_503(isolated: Isolated) -> None:
    http, headers = isolated.client, isolated.headers
    assert (await http.get("/relation/type", headers=headers)).status_code == 200
    holder = await connect(with_database(isolated.admin_url, isolated.name))
    try:
        await holder.execute("BEGIN; LOCK TABLE relation IN SHARE MODE")
        pending = asyncio.create_task(http.post("/relation", json=relation_body(), headers=headers))
        await wait_until_blocked(with_database(isolated.admin_url, isolated.name))
        await holder.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'relations' AND datname = current_database()"
        )
        assert_unavailable(await pending)
    finally:
        await holder.close()
    # Another pooled connection may have been terminated too: it answers 503 once, then is replaced.
    for _ in range(5):
        answer = await http.post("/relation", json=relation_body(), headers=headers)
        if answer.status_code != 503:
            break
        assert_unavailable(answer)
    assert answer.status_code == 201, answer.text


async def test_statement_timeout_is_503(database_url: str) -> None:
    settings = Settings(database_url=database_url, key_cache_seconds=0, statement_timeout_ms=200)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        db: Database = app.state.db
        with pytest.raises(ServiceUnavailable) as timed_out:
            await db.fetchval("SELECT pg_sleep(5)")
        assert timed_out.value.message == messages.DATABASE_TIMEOUT

        key = await create_key(db, project=f"p-{secrets.token_hex(6)}", scopes=list(SCOPES))
        holder = await connect(database_url)
        try:
            await holder.execute("BEGIN; LOCK TABLE relation IN SHARE MODE")
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
                answer = await http.post("/relation", json=relation_body(), headers={"Api-Key": key.key})
        finally:
            await holder.close()
        assert answer.status_code == 503, answer.text
        assert error_of(answer) == {"code": "ServiceUnavailable", "message": messages.DATABASE_TIMEOUT}
        assert answer.headers["retry-after"] == "2"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_start_up_without_a_database_says_so(database_url: str) -> None:
    url = urlunsplit(urlsplit(database_url)._replace(netloc=f"relations@127.0.0.1:{closed_port()}", query=""))
    app = create_app(Settings(database_url=url, startup_wait_seconds=0))
    with pytest.raises(RuntimeError, match="cannot start: the database is unreachable"):
        async with app.router.lifespan_context(app):
            pass


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(),
        ConnectionResetError(),
        TimeoutError(),
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already"),
        asyncpg.exceptions.CrashShutdownError("terminating connection because of crash of another process"),
        asyncpg.exceptions.ReadOnlySQLTransactionError("cannot execute INSERT in a read-only transaction"),
        asyncpg.exceptions.InterfaceError("connection is closed"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_every_outage_failure_is_503(error: BaseException) -> None:
    assert isinstance(translate(error, connecting=False), ServiceUnavailable)


def test_any_server_error_while_connecting_is_503() -> None:
    refused = asyncpg.exceptions.ObjectNotInPrerequisiteStateError("database is not accepting connections")
    assert isinstance(translate(refused, connecting=True), ServiceUnavailable)
    assert translate(refused, connecting=False) is None
    assert translate(asyncpg.exceptions.UniqueViolationError("duplicate"), connecting=False) is None
    assert translate(RuntimeError("a bug"), connecting=False) is None


class TcpProxy:
    """A TCP front for the test's PostgreSQL that the test can pull out (connections reset, new ones
    refused) and put back on the same port: the network-level outage."""

    def __init__(self, database_url: str) -> None:
        parts = urlsplit(database_url)
        _, options = split_url(database_url)
        self.socket_dir: str | None = options.get("host")
        self.upstream_host = parts.hostname or "127.0.0.1"
        self.upstream_port = options.get("port") or parts.port or 5432
        self.port = closed_port()
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []

    def url_for(self, database_url: str) -> str:
        parts = urlsplit(database_url)
        user = parts.username or "postgres"
        password = f":{parts.password}" if parts.password else ""
        return urlunsplit(parts._replace(netloc=f"{user}{password}@127.0.0.1:{self.port}", query=""))

    async def _upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.socket_dir:
            return await asyncio.open_unix_connection(f"{self.socket_dir}/.s.PGSQL.{self.upstream_port}")
        return await asyncio.open_connection(self.upstream_host, self.upstream_port)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await self._upstream()
        self.writers += [writer, up_writer]

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def pull_out(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.transport.abort()
        self.writers.clear()
        await self.server.wait_closed()


async def test_network_outage_answers_503_then_recovers(database_url: str, project: Project) -> None:
    proxy = TcpProxy(database_url)
    await proxy.start()
    settings = Settings(
        database_url=proxy.url_for(database_url), key_cache_seconds=0, pool_min_size=1, pool_max_size=2
    )
    app = create_app(settings)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
                headers = project.headers
                assert (
                    await http.post("/relation", json=relation_body(), headers=headers)
                ).status_code == 201

                await proxy.pull_out()  # resets the pooled connections; new ones are refused
                for _ in range(3):
                    assert_unavailable(await http.get("/relation/type", headers=headers))
                assert_unavailable(await http.get("/health/ready"))
                assert (await http.get("/health/live")).status_code == 200

                await proxy.start()
                for _ in range(200):
                    if (await http.get("/health/ready")).status_code == 200:
                        break
                    await asyncio.sleep(0.05)
                assert (
                    await http.post("/relation", json=relation_body(), headers=headers)
                ).status_code == 201
    finally:
        if proxy.server is not None and proxy.server.is_serving():
            await proxy.pull_out()
