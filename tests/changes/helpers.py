"""Reading a project's whole feed through the reading function, for the tests."""

from __future__ import annotations

from typing import Any

from service.changes import feed
from service.changes.model import Position
from service.db import Database


async def events_after(db: Database, project: str, after: Position | None = None) -> list[dict[str, Any]]:
    """Every deliverable event of the project after `after` (from the start when None)."""
    position = after or await feed.first(db, project=project)
    found: list[dict[str, Any]] = []
    while True:
        page = await feed.read_project(db, project=project, after=position, limit=7)
        assert not page.gone
        found += [change.event for change in page.changes]
        if not page.changes:
            return found
        position = page.position


def kinds(events: list[dict[str, Any]]) -> list[str]:
    return [event["type"] for event in events]
