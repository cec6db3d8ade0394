from __future__ import annotations

import httpx

from tests.child_lists.helpers import call, children, listing
from tests.conftest import Project, guid


async def test_connect_basics(client: httpx.AsyncClient, project: Project) -> None:
    parent = guid()
    a, b, c, d = (guid() for _ in range(4))
    r = await call(client, project, "PATCH", parent, {"connect": [a, b]})
    assert r.status_code == 200, r.text
    assert children(r) == [a, b]
    assert r.json()["_changes"] == {"added": 2, "removed": 0, "moved": 0}
    r = await call(
        client,
        project,
        "PATCH",
        parent,
        {"connect": [{"id": c, "position": {"before": b}}, {"id": d, "position": {"start": True}}]},
    )
    assert r.status_code == 200, r.text
    assert children(r) == [d, a, c, b]
    r = await call(client, project, "PATCH", parent, {"connect": [{"id": b, "position": {"start": True}}]})
    assert children(r) == [b, d, a, c], r.text
    assert r.json()["_changes"] == {"added": 0, "removed": 0, "moved": 4}
    assert await listing(client, project, parent) == [b, d, a, c]
