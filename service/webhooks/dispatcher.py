"""From the change log to the delivery queue: one dispatcher at a time, across all workers, follows the
global change log (service/changes/feed.read_all, commit order) from a cursor stored in
`webhook_dispatch`, and queues one delivery per event and enabled webhook subscribed to its type, in the
same transaction as it moves the cursor. So every committed change is queued exactly once (a unique
(webhook, event) key makes even a repeated batch harmless), and a dispatcher that stops mid-batch
leaves the cursor where it was.

Which webhook process dispatches: whichever holds the cursor row (`FOR UPDATE SKIP LOCKED`); the
others find it taken and wait for the next notification. Every process's dispatcher is woken by the
change log's NOTIFY (service/changes/listener.py), with `poll_seconds` as the fallback.

While no webhook is enabled, nothing is read and the cursor moves to the end of the log, but at most
once per `poll_seconds`: in between, a notification costs one read of whether any webhook is enabled
(no transaction, no write to commit). A webhook enabled meanwhile loses nothing and gets nothing
older than itself: changes are queued only for the webhooks enabled before they committed
(`webhook.enabled_at`), so the cursor's lag only means a few seconds of the log read once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import orjson

from service.changes import feed
from service.changes.model import Change, Position
from service.db import Database
from service.webhooks import queries

log = logging.getLogger("service.webhooks")

BATCH = 500
# A committed change can be held back while an older writer is still committing (see service/changes);
# look again soon, then less often while nothing moves (the writer it waits for may have rolled back,
# which notifies nobody). The next notification ends the pause at once, and any batch that moved the
# cursor starts the pauses over: under a steady load nearly every batch ends at a held change.
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
    """What one turn did: `queued` deliveries; `moved` when the cursor moved over changes; `more` when
    the page was full; `held` when a committed change waits for an older writer; `busy` when another
    dispatcher holds the cursor."""

    queued: int = 0
    moved: bool = False
    more: bool = False
    held: bool = False
    busy: bool = False


def queued_form(change: Change) -> tuple[str, str, str, str, datetime]:
    """(project, event id, type, body, commit time) of a change, as `queries.queue` takes them."""
    event = change.event
    committed = datetime.fromisoformat(event["occurredAt"].replace("Z", "+00:00"))
    return change.project, event["id"], event["type"], delivery_body(change), committed


class Dispatcher:
    def __init__(self, db: Database, *, poll_seconds: float, queued: Callable[[], None]) -> None:
        self.db = db
        self.poll = poll_seconds
        self.queued = queued  # called after a commit that queued deliveries: wakes this process's sender
        self._wake = asyncio.Event()
        self._idle_until = 0.0  # while no webhook is enabled: when the cursor moves to the end again

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
            if batch.moved or not batch.held:
                held_pause = HELD_FIRST_SECONDS
            pause = self.poll
            if batch.held:
                pause, held_pause = held_pause, min(held_pause * 2, HELD_MAX_SECONDS)
            # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a cancellation that
            # meets its timeout, and this loop would never stop.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(pause):
                    await self._wake.wait()

    async def dispatch(self) -> Batch:
        """One batch in one transaction: hold the cursor, read after it, queue, move it."""
        if time.monotonic() < self._idle_until and not await queries.any_enabled(self.db):
            return Batch()
        self._idle_until = 0.0
        async with self.db.transaction():
            cursor = await queries.lock_cursor(self.db)
            if cursor is None:
                return Batch(busy=True)
            stored = cursor["position"]
            # The first dispatcher ever starts at the current end of the log; while no webhook is
            # enabled, nothing is read and the cursor moves to the end. The end is read before the
            # second look, so a webhook made after that look comes after every change it skips.
            if stored is None or not cursor["any_enabled"]:
                end = await feed.end(self.db)
                if stored is None or not await queries.any_enabled(self.db):
                    await queries.move_cursor(self.db, position=encode_position(end))
                    self._idle_until = time.monotonic() + self.poll
                    return Batch()
            after = decode_position(stored)
            page = await feed.read_all(self.db, after=after, limit=BATCH)
            if page.gone:
                log.error("webhook dispatcher: changes after its cursor were pruned before they were queued")
            queued = await queries.queue(self.db, changes=[queued_form(change) for change in page.changes])
            if page.position != after:
                await queries.move_cursor(self.db, position=encode_position(page.position))
        return Batch(
            queued=queued,
            moved=bool(page.changes),
            more=len(page.changes) >= BATCH,
            held=page.held_xmax is not None,
        )
