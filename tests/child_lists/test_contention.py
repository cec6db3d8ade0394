"""Edits under contention, as an attacker would send them (one worker, its pool of 10): one list's
edits must never hold the pool from other lists and other projects, and deletes by parent or child
racing big list edits must never deadlock into a 500."""

from __future__ import annotations

import asyncio
import random
import uuid

import httpx

from tests.child_lists.helpers import call, listing
from tests.conftest import MakeProject, Project, guid


async def test_keyed_and_plain_edits_of_one_list_do_not_starve_the_pool(
    client: httpx.AsyncClient, project: Project, make_project: MakeProject
) -> None:
    """20 connects with an Idempotency-Key each and 5 without, at once, to one list: every edit takes
    the list's queue first and a connection after, so all 25 succeed, and another project's read is
    served meanwhile. (Before, a keyed edit took its connection first: ten of them held the pool while
    a plain edit held the queue waiting for a connection, until PostgreSQL's idle-in-transaction
    timeout answered 503.)"""
    parent = guid()
    other = await make_project()

    async def connect(n: int) -> httpx.Response:
        headers = {"Idempotency-Key": uuid.uuid4().hex} if n < 20 else {}
        return await call(client, project, "PATCH", parent, {"connect": [guid()]}, headers=headers)

    edits = [asyncio.create_task(connect(n)) for n in range(25)]
    await asyncio.sleep(0)
    # Bounded so that a starved pool fails here rather than hangs: the pool's wait ends after 10 s.
    read = await asyncio.wait_for(client.get("/relation/type/umbDocument", headers=other.headers), 8)
    assert read.status_code == 200, read.text
    answers = await asyncio.wait_for(asyncio.gather(*edits), 60)
    assert [answer.status_code for answer in answers] == [200] * 25, [a.text for a in answers if a.is_error]
    assert len(await listing(client, project, parent)) == 25


async def test_deletes_by_parent_and_child_racing_big_sets_never_fail(
    client: httpx.AsyncClient, project: Project
) -> None:
    """PUT sets of 300 children on a parent's lists, racing DELETE /relation/parent/{guid} and
    DELETE /relation/child/{guid} of children those sets share: every answer is 200."""
    parents = [guid() for _ in range(3)]
    shared = [guid() for _ in range(300)]
    aliases = ["umbDocument", "relateDocumentOnCopy", "relateParentDocumentOnDelete"]
    answers: list[httpx.Response] = []
    rng = random.Random(11)

    async def sets(parent: str, alias: str) -> None:
        for _ in range(6):
            order = rng.sample(shared, len(shared))
            answers.append(await call(client, project, "PUT", parent, order, alias=alias))

    async def deletes() -> None:
        for round_ in range(8):
            await asyncio.sleep(0.02)  # let the sets fill the lists between deletes
            if round_ % 3:
                answers.append(
                    await client.delete(f"/relation/parent/{rng.choice(parents)}", headers=project.headers)
                )
            else:
                answers.append(
                    await client.delete(f"/relation/child/{rng.choice(shared)}", headers=project.headers)
                )

    workers = [sets(parent, alias) for parent in parents for alias in aliases]
    await asyncio.wait_for(asyncio.gather(*workers, *(deletes() for _ in range(4))), 120)
    failed = [
        (answer.request.method, answer.status_code, answer.text[:200])
        for answer in answers
        if answer.is_error
    ]
    assert failed == []
