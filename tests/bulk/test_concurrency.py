"""Imports against concurrent writers (service/bulk/service.py, schema.sql's project lock): a
disconnect stores nothing, an export is one snapshot, and imports and list edits of the same lists
serialise."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from service import messages
from service.bulk import queries, service
from service.db import Database
from service.schema import connect
from tests.bulk.helpers import NDJSON, asgi_scope, children, export, ndjson, relation, upload
from tests.conftest import Project, guid, wait_until_blocked


async def call(app: Starlette, project: Project, parts: list[dict[str, Any]]) -> tuple[int, bytes]:
    """POST /relation/import straight through ASGI, the body given as receive() messages."""
    scope = asgi_scope("POST", "/relation/import", project, (b"content-type", NDJSON.encode()))
    incoming = list(parts)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if incoming:
            return incoming.pop(0)
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    status = next(message["status"] for message in sent if message["type"] == "http.response.start")
    body = b"".join(message.get("body", b"") for message in sent if message["type"] == "http.response.body")
    return status, body


async def test_a_client_that_disconnects_stores_nothing(
    app: Starlette, client: httpx.AsyncClient, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "STAGE_BATCH", 2)  # the first part is COPYed before the end
    first = ndjson(*(relation(guid(), guid()) for _ in range(5)))
    status, body = await call(
        app,
        project,
        [{"type": "http.request", "body": first, "more_body": True}, {"type": "http.disconnect"}],
    )
    assert status == 400 and messages.IMPORT_DISCONNECTED.encode() in body
    assert [line for line in await export(client, project) if "relation" in line] == []
    # the same parts with the end of the body: stored
    status, _ = await call(app, project, [{"type": "http.request", "body": first, "more_body": False}])
    assert status == 200


async def test_an_export_is_one_snapshot(client: httpx.AsyncClient, project: Project, db: Database) -> None:
    parent = guid()
    for _ in range(3):
        await upload(client, project, ndjson(relation(parent, guid())))
    async with service.exporting(db, project=project.alias) as chunks:
        types = await anext(chunks)
        assert types.count(b"\n") == 6
        # written after the export began, before its relations are read
        await upload(client, project, ndjson(relation(guid(), guid())))
        rest = b"".join([chunk async for chunk in chunks])
    assert rest.count(b"\n") == 3
    assert len([line for line in await export(client, project) if "relation" in line]) == 4


async def test_an_import_waits_for_a_list_edit_in_progress(
    client: httpx.AsyncClient, project: Project, database_url: str
) -> None:
    parent, edited, imported = guid(), guid(), guid()
    connection = await connect(database_url)
    try:
        async with connection.transaction():
            await connection.execute(
                "SELECT relation_list_lock($1, 'umbDocument', $2)", project.alias, parent
            )
            running = asyncio.ensure_future(upload(client, project, ndjson(relation(parent, imported))))
            await wait_until_blocked(database_url)
            assert not running.done()
            await connection.execute(
                "INSERT INTO relation (project, type_alias, parent, child, position) "
                "VALUES ($1, 'umbDocument', $2, $3, 1)",
                project.alias,
                parent,
                edited,
            )
        answer = await running
    finally:
        await connection.close()
    assert answer.status_code == 200, answer.text
    # the import read the list after the edit committed: the file's member first, then the other
    assert await children(client, project, parent, "umbDocument") == [imported, edited]


async def test_list_edits_wait_while_an_import_merges(
    client: httpx.AsyncClient, project: Project, database_url: str
) -> None:
    parent = guid()
    connection = await connect(database_url)
    try:
        async with connection.transaction():
            await connection.execute(
                "SELECT pg_advisory_xact_lock(relation_project_lock_key($1))", project.alias
            )
            body = {"parentId": parent, "childId": guid(), "relationTypeAlias": "umbDocument"}
            posting = asyncio.ensure_future(client.post("/relation", json=body, headers=project.headers))
            await wait_until_blocked(database_url)
            assert not posting.done()
        assert (await posting).status_code == 201
    finally:
        await connection.close()


async def test_imports_and_api_edits_of_the_same_list(client: httpx.AsyncClient, project: Project) -> None:
    parent = guid()
    in_file = [guid() for _ in range(300)]
    by_api = [guid() for _ in range(30)]

    async def appends() -> None:
        for child in by_api:
            body = {"parentId": parent, "childId": child, "relationTypeAlias": "umbDocument"}
            answer = await client.post("/relation", json=body, headers=project.headers)
            assert answer.status_code == 201, answer.text

    imported, _ = await asyncio.gather(
        upload(client, project, ndjson(*(relation(parent, child) for child in in_file))), appends()
    )
    assert imported.status_code == 200, imported.text
    final = await children(client, project, parent, "umbDocument")
    assert final == in_file + by_api
    listed = await client.get(f"/relation/parent/{parent}/umbDocument", headers=project.headers)
    assert listed.json()["_totalItems"] == 330


async def test_an_export_that_fails_midway_never_ends_its_body(
    app: Starlette,
    client: httpx.AsyncClient,
    project: Project,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The stream raises instead of ending (ASGI's last `more_body: False` is never sent), which makes
    the server abort the connection without the final chunk: a cut-off export never looks complete.
    The database goes away once the type lines are sent, before the relations' COPY."""
    await upload(client, project, ndjson(*(relation(guid(), guid()) for _ in range(10))))
    scope = asgi_scope("GET", "/relation/export", project)
    sent: list[dict[str, Any]] = []
    admin = await connect(database_url)

    async def receive() -> dict[str, Any]:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and len(sent) == 2:  # start, the type lines
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND application_name = 'relations' "
                "AND state = 'idle in transaction' AND pid <> pg_backend_pid()"
            )

    try:
        with pytest.raises(Exception):  # noqa: B017 (whatever the driver raises for a lost connection)
            await app(scope, receive, send)
    finally:
        await admin.close()
    assert sent[0]["status"] == 200
    bodies = [message for message in sent if message["type"] == "http.response.body"]
    assert bodies and all(message.get("more_body") for message in bodies), "the body never ended"
    assert b"".join(message["body"] for message in bodies).count(b"\n") == 6
    # the pool recovers: the next export is whole
    assert len([line for line in await export(client, project) if "relation" in line]) == 10


async def test_an_export_whose_client_goes_away_gives_its_connection_back(
    app: Starlette, client: httpx.AsyncClient, project: Project, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "EXPORT_CHUNK_BYTES", 100)  # the COPY is still running when it goes
    await upload(client, project, ndjson(*(relation(guid(), guid()) for _ in range(20))))
    scope = asgi_scope("GET", "/relation/export", project)
    gone = asyncio.Event()
    bodies = 0

    async def receive() -> dict[str, Any]:
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal bodies
        if message["type"] == "http.response.body":
            bodies += 1
            if bodies == 3:
                gone.set()
                await asyncio.sleep(0.5)  # a client that stopped reading

    await asyncio.wait_for(app(scope, receive, send), timeout=30)
    assert bodies < 20, "the stream stopped when the client went away"
    for _ in range(100):
        if db.pool_usage()[1] == 0:
            break
        await asyncio.sleep(0.05)
    assert db.pool_usage()[1] == 0, "the export's connection went back to the pool"
    assert len([line for line in await export(client, project) if "relation" in line]) == 20


async def test_an_export_whose_client_stops_reading_ends(
    client: httpx.AsyncClient, project: Project, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chunk not taken within IDLE_SECONDS cancels the COPY (the driver may drop its connection for
    it); the stream then raises, never ends, and the pool recovers."""
    monkeypatch.setattr(service, "EXPORT_CHUNK_BYTES", 100)
    monkeypatch.setattr(queries, "IDLE_SECONDS", 0.2)
    await upload(client, project, ndjson(*(relation(guid(), guid()) for _ in range(20))))
    taken = 0
    with pytest.raises(Exception):  # noqa: B017 (TimeoutError, or the lost connection's error)
        async with service.exporting(db, project=project.alias) as chunks:
            await anext(chunks)
            await anext(chunks)
            await asyncio.sleep(1)  # a client that stopped reading
            async for _ in chunks:
                taken += 1
    assert taken <= 1, "at most the chunk already handed over, then the error"
    assert db.pool_usage()[1] == 0
    assert len([line for line in await export(client, project) if "relation" in line]) == 20


async def test_a_type_deleted_meanwhile_is_a_conflict(
    client: httpx.AsyncClient, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The API's type writers do not take the project's lock: a type deleted between the import's
    checks and its writes fails the foreign key, which is a 409 to retry, and nothing is stored."""
    created = await client.post(
        "/relation/type", json={"alias": "brief", "name": "Brief"}, headers=project.headers
    )
    assert created.status_code == 201
    original = queries.run

    async def delete_first(conn: Any, sql: str, *args: Any) -> str:
        if sql == queries.INSERT_RELATIONS:
            await conn.execute(
                "DELETE FROM relation_type WHERE project = $1 AND alias = 'brief'", project.alias
            )
        return await original(conn, sql, *args)

    monkeypatch.setattr(queries, "run", delete_first)
    answer = await upload(
        client, project, ndjson(relation(guid(), guid(), "brief"), relation(guid(), guid()))
    )
    assert answer.status_code == 409, answer.text
    monkeypatch.undo()
    assert [line for line in await export(client, project) if "relation" in line] == []
    assert (await client.get("/relation/type/brief", headers=project.headers)).status_code == 200
