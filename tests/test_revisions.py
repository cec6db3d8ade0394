"""Revision tokens (SPEC §12): every successful write answers Relations-Revision, reads take
Relations-Min-Revision (a malformed one is a 400), and concurrent writes share one position query."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from service import messages, revisions
from service.db import Database
from tests.conftest import Project, error_of, guid


def relation() -> dict[str, str]:
    return {"parentId": guid(), "childId": guid(), "relationTypeAlias": "relateDocumentOnCopy"}


@pytest.mark.parametrize("text", ["0", "16B3748", "16b374d848", "FFFFFFFFFFFFFFFF"])
def test_a_position_reads_back_as_written(text: str) -> None:
    assert revisions.render(revisions.parse(text)) == text.upper()


def test_a_token_is_postgresql_s_wal_position_as_one_number() -> None:
    # PostgreSQL writes 16/B374D848: the high and the low 32 bits.
    assert revisions.parse("16B374D848") == 0x16 << 32 | 0xB374D848
    assert revisions.parse("FFFFFFFF") < revisions.parse("100000000")


@pytest.mark.parametrize(
    "text", ["", "16/B374D848", "0x1", "G1", "12345678901234567", "1 2", "-1", "AB\n", " AB"]
)
def test_a_malformed_position_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        revisions.parse(text)


async def test_every_successful_write_answers_a_revision(client: httpx.AsyncClient, project: Project) -> None:
    created = await client.post("/relation", json=relation(), headers=project.headers)
    assert created.status_code == 201
    first = revisions.parse(created.headers[revisions.HEADER])
    path = f"/relation/{created.json()['_id']}"
    updated = await client.put(path, json={"comment": "later"}, headers=project.headers)
    assert updated.status_code == 200
    second = revisions.parse(updated.headers[revisions.HEADER])
    deleted = await client.delete(path, headers=project.headers)
    assert deleted.status_code == 200
    assert first < second < revisions.parse(deleted.headers[revisions.HEADER])


async def test_a_refused_write_and_a_read_answer_no_revision(
    client: httpx.AsyncClient, project: Project
) -> None:
    refused = await client.post(
        "/relation", json={**relation(), "relationTypeAlias": "nope"}, headers=project.headers
    )
    assert refused.status_code == 422
    assert revisions.HEADER not in refused.headers
    read = await client.get("/relation/type", headers=project.headers)
    assert read.status_code == 200
    assert revisions.HEADER not in read.headers


async def test_a_read_with_the_write_s_revision_sees_it(client: httpx.AsyncClient, project: Project) -> None:
    created = await client.post("/relation", json=relation(), headers=project.headers)
    token = created.headers[revisions.HEADER]
    read = await client.get(
        f"/relation/{created.json()['_id']}", headers={**project.headers, revisions.MIN_HEADER: token}
    )
    assert read.status_code == 200
    assert read.json() == created.json()


@pytest.mark.parametrize("token", ["latest", "1/2", "0x0", "", "123456789abcdef01"])
async def test_a_malformed_min_revision_is_a_bad_request(
    client: httpx.AsyncClient, project: Project, token: str
) -> None:
    answer = await client.get("/relation/type", headers={**project.headers, revisions.MIN_HEADER: token})
    assert answer.status_code == 400
    assert error_of(answer) == {
        "code": "BadRequest",
        "message": messages.REVISION_INVALID.format(header=revisions.MIN_HEADER),
    }


async def test_credentials_are_checked_before_the_token(client: httpx.AsyncClient) -> None:
    answer = await client.get("/relation/type", headers={revisions.MIN_HEADER: "nonsense"})
    assert answer.status_code == 401


async def test_an_idempotent_replay_answers_a_revision(client: httpx.AsyncClient, project: Project) -> None:
    headers = {**project.headers, "Idempotency-Key": guid()}
    body = relation()
    first = await client.post("/relation", json=body, headers=headers)
    again = await client.post("/relation", json=body, headers=headers)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert revisions.parse(again.headers[revisions.HEADER]) >= revisions.parse(
        first.headers[revisions.HEADER]
    )


async def test_concurrent_commits_share_one_position_query() -> None:
    asked = 0
    release = asyncio.Event()

    async def position() -> int:
        nonlocal asked
        asked += 1
        await release.wait()
        return asked

    clock = revisions.CommitClock(position)
    first = asyncio.create_task(clock.after_commit())
    await asyncio.sleep(0)  # the first query is on its way
    rest = [asyncio.create_task(clock.after_commit()) for _ in range(5)]
    await asyncio.sleep(0)
    release.set()
    # The first commit's query was sent before the others committed: they wait for the next one.
    assert await first == 1
    assert await asyncio.gather(*rest) == [2] * 5
    assert asked == 2


async def test_a_revision_that_cannot_be_had_is_none(database_url: str) -> None:
    """The write has happened: it is answered, without the header (and the failure is logged)."""
    never_opened = Database(database_url)
    assert await never_opened.committed() is None


async def test_the_worker_remembers_its_newest_revision(db: Database) -> None:
    revision = await db.committed()
    assert revision is not None
    assert db.own_revision >= revision
    assert await db.revision() >= revision
