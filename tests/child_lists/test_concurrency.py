"""Dozens of simultaneous edits of one list: none is lost, doubled or misordered, and each one succeeds.

The ASGI client runs the requests on one event loop, but each request holds its own pooled connection
and transaction while it waits on PostgreSQL (the list's advisory lock), so the edits do overlap."""

from __future__ import annotations

import asyncio
import uuid

import httpx

from service.db import Database
from tests.child_lists.helpers import call, listing
from tests.conftest import Project, guid


async def test_simultaneous_edits_of_one_list(
    client: httpx.AsyncClient, project: Project, db: Database
) -> None:
    parent = guid()
    base = [guid() for _ in range(20)]
    seeded = await call(client, project, "PATCH", parent, {"connect": base})
    assert seeded.status_code == 200
    anchors, doomed = base[:10], base[10:15]
    at_start = [guid() for _ in range(10)]
    at_end = [guid() for _ in range(10)]
    before = {guid(): anchors[n % len(anchors)] for n in range(10)}
    added = [guid() for _ in range(10)]
    edits = [
        *(
            call(client, project, "PATCH", parent, {"connect": [{"id": c, "position": {"start": True}}]})
            for c in at_start
        ),
        *(
            call(client, project, "PATCH", parent, {"connect": [{"id": c, "position": {"end": True}}]})
            for c in at_end
        ),
        *(
            call(client, project, "PATCH", parent, {"connect": [{"id": c, "position": {"before": a}}]})
            for c, a in before.items()
        ),
        *(call(client, project, "POST", parent, [c]) for c in added),
        *(call(client, project, "DELETE", parent, [c]) for c in doomed),
    ]
    responses = await asyncio.gather(*edits)
    assert [r.status_code for r in responses] == [200] * len(edits), [
        r.text for r in responses if r.status_code != 200
    ]
    assert all(
        r.json()["_changes"]
        in ({"added": 1, "removed": 0, "moved": 0}, {"added": 0, "removed": 1, "moved": 0})
        for r in responses
    )

    final = await listing(client, project, parent)
    survivors = [c for c in base if c not in doomed]
    expected = {*survivors, *at_start, *at_end, *before, *added}
    assert len(final) == len(set(final)) == len(expected)
    assert set(final) == expected
    # The untouched members keep their order; every placement holds against them.
    assert [c for c in final if c in survivors] == survivors
    first_member = final.index(survivors[0])
    assert all(final.index(c) < first_member for c in at_start)
    last_member = final.index(survivors[-1])
    assert all(final.index(c) > last_member for c in [*at_end, *added])
    for child, anchor in before.items():
        between = final[final.index(child) + 1 : final.index(anchor)]
        assert all(c in before for c in between), "only other items placed before the same anchor"
    rows = await db.fetch(
        "SELECT position FROM relation WHERE project = $1 AND parent = $2 AND type_alias = 'umbDocument'"
        " ORDER BY position, id",
        project.alias,
        uuid.UUID(parent),
    )
    positions = [row["position"] for row in rows]
    assert positions == sorted(set(positions))


async def test_simultaneous_sets_leave_one_of_them(client: httpx.AsyncClient, project: Project) -> None:
    parent = guid()
    lists = [[guid() for _ in range(5)] for _ in range(12)]
    responses = await asyncio.gather(*(call(client, project, "PUT", parent, ids) for ids in lists))
    assert all(r.status_code == 200 for r in responses)
    assert await listing(client, project, parent) in lists
