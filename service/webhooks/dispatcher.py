"""From the change log to the delivery queue: one dispatcher at a time, across all workers, follows the
global change log (service/changes/feed.read_all, commit order) from a cursor stored in
`webhook_dispatch`, and queues one delivery per event and enabled webhook subscribed to its type, in the
same transaction as it moves the cursor. So every committed change is queued exactly once (a unique
(webhook, event) key makes even a repeated batch harmless), and a dispatcher that stops mid-batch
leaves the cursor where it was.

Which worker dispatches: whichever holds the cursor row (`FOR UPDATE SKIP LOCKED`); the others find it
taken and wait for the next notification. Every worker's dispatcher is woken by the change log's NOTIFY
(service/changes/listener.py), with `poll_seconds` as the fallback."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import orjson

from service.changes import feed
from service.changes.model import Change, Position
from service.db import Database, Record
from service.webhooks import queries

log = logging.getLogger("service.webhooks")

BATCH = 500
# A committed change can be held back while an older writer is still running (see service/changes);
# look again soon, then less often while it stays so.
HELD_FIRST_SECONDS = 0.005
HELD_MAX_SECONDS = 0.5


def encode_position(position: Position) -> str:
    return f"{position.id}:{position.commit_key.hex()}"


def decode_position(text: str) -> Position:
    event_id, _, key = text.partition(":")
    return Position(bytes.fromhex(key), int(event_id))


def delivery_body(change: Change) -> str:
    """SPEC §10's body: the event's type, its commit time and its data."""
    event = change.event
    return orjson.dumps(
        {"type": event["type"], "timestamp": event["occurredAt"], "data": event["data"]}
    ).decode()


@dataclass(frozen=True)
class Batch:
    """What one turn did: `queued` deliveries; `more` when the page was full; `held` when a committed
    change waits for an older writer; `busy` when another worker holds the cursor."""

    queued: int = 0
    more: bool = False
    held: bool = False
    busy: bool = False


def matching(changes: list[Change], hooks: list[Record]) -> list[tuple[str, UUID, str, str, str]]:
    """(project, webhook id, event id, type, body) for every change and subscribed webhook. A webhook
    receives only changes committed after it was created."""
    by_project: dict[str, list[Record]] = defaultdict(list)
    for hook in hooks:
        by_project[hook["project"]].append(hook)
    rows = []
    for change in changes:
        event = change.event
        committed = datetime.fromisoformat(event["occurredAt"].replace("Z", "+00:00"))
        for hook in by_project.get(change.project, ()):
            if event["type"] in hook["events"] and hook["created_at"] <= committed:
                rows.append((change.project, hook["id"], event["id"], event["type"], delivery_body(change)))
    return rows


class Dispatcher:
    def __init__(self, db: Database, *, poll_seconds: float, queued: Callable[[], None]) -> None:
        self.db = db
        self.poll = poll_seconds
        self.queued = queued  # called after a commit that queued deliveries: wakes this worker's sender
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        held_pause = HELD_FIRST_SECONDS
        while True:
            self._wake.clear()
            try:
                batch = await self.dispatch()
            except Exception:
                log.exception("webhook dispatcher: the batch failed; retrying in %ss", self.poll)
                batch = Batch()
            if batch.queued:
                self.queued()
            if batch.more:
                continue
            if batch.held:
                await asyncio.sleep(held_pause)
                held_pause = min(held_pause * 2, HELD_MAX_SECONDS)
                continue
            held_pause = HELD_FIRST_SECONDS
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll)

    async def dispatch(self) -> Batch:
        """One batch in one transaction: hold the cursor, read after it, queue, move it."""
        async with self.db.transaction():
            held, stored = await queries.lock_cursor(self.db)
            if not held:
                return Batch(busy=True)
            if stored is None:  # the first dispatcher ever starts at the current end of the log
                after = await feed.end(self.db)
                await queries.move_cursor(self.db, position=encode_position(after))
                return Batch()
            after = decode_position(stored)
            page = await feed.read_all(self.db, after=after, limit=BATCH)
            if page.gone:
                log.error("webhook dispatcher: changes after its cursor were pruned before they were queued")
            rows = []
            if page.changes:
                projects = sorted({change.project for change in page.changes})
                hooks = await queries.subscribed(self.db, projects=projects)
                rows = matching(page.changes, hooks)
                await queries.insert_deliveries(self.db, rows=rows)
            if page.position != after:
                await queries.move_cursor(self.db, position=encode_position(page.position))
        return Batch(queued=len(rows), more=len(page.changes) >= BATCH, held=page.held_xmax is not None)
