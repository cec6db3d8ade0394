"""Keeps a worker's cache exact: follows the change log of every project on the change feed's LISTEN
connection and drops the entries each committed change touches, and knows how far it has applied.

A poll (schema.sql's relation_cache_poll, one round trip) reads the primary's WAL position first, then
the changes after the follower's position and those the log still holds back, under later snapshots.
When a poll has seen every change (`complete`), every write acknowledged before its position was read
has been applied: its revision token is below that position (a token is the WAL position read after
the write committed), and its commit was visible to the poll's snapshots. Hence:

- `applied`: the position of the last complete poll. A read with `Relations-Min-Revision: R` may use
  the cache when R < applied (strictly: with R = applied the write might have become visible only just
  after the poll's snapshot, while no WAL was written).
- `applied_at`: when that poll was sent. Nothing older than it is missing, so a read without a token
  may use the cache while `now - applied_at` is within RELATIONS_REPLICA_MAX_LAG_MS; an idle worker
  polls every quarter of that bound (`heartbeat`), a busy one when notified of a commit, but not
  sooner than that quarter (`floor`) after its last poll began: under many writers the polls would
  otherwise run back to back and take the requests' CPU (a tenth of the bound still took 8 % of the
  database's time under 32 clients POSTing). A write of this worker that waits for a poll
  (`synced`) does not wait for the floor.
- `mark()` and `synced(project, mark)`: a write of this worker waits, before it answers, for a poll
  that started after its commit to complete, so this worker's next read never meets an entry the
  write changed; should that take longer than `SYNC_SECONDS`, the project's entries are dropped
  instead.
- Fills: an answer is read on the primary or on a replica that has replayed `through` (every change
  applied so far committed below it), and kept only if no drop touched its tags (or its project
  whole) and the cache was not emptied while it was read (`ticket`/`current`): what it read is then
  at least as new as every change applied that it depends on, and the changes after it will drop it.
  The drops of the last moments are kept for that check (`RECENT_DROPS`; a fill older than those is
  not kept), so a write elsewhere in a busy project does not cost every fill under way.
- A page with `BULK_CHANGES` or more changes of one project (an import, a delete by type, a script's
  bulk write) drops that project's entries whole, once, instead of one drop per change: what those
  drops would leave of it is little, and a million-row import cost every worker a million drops.
- A poll that is still not done after `CATCH_UP_PAGES` full pages (a million-row import, a worker
  that could not follow for a while) empties the cache and starts again from the end of the log:
  cheaper than reading the rest, and until then every write waiting for the poll would have waited.
- The LISTEN connection dropping (or any poll failing) empties the cache and bypasses it until the
  connection is back and a poll on it completes; a TRUNCATE of `relation` (counted by its trigger) or a
  position past the log's retention empties it too."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, deque
from dataclasses import dataclass

from service.cache import queries, tags
from service.cache.store import Store, Tag
from service.changes import feed
from service.changes.listener import Listener
from service.changes.model import LAST_ID, Position, commit_xid
from service.db import Record

log = logging.getLogger("service.cache")

PAGE = 1000
SYNC_SECONDS = 0.5
RETRY_SECONDS = 0.002  # a poll that found more held back than a page: again, soon
FAILED_SECONDS = 0.5
# Drops remembered for the fills under way: far more than happen while one answer is read.
RECENT_DROPS = 4096
# A project with this many changes in one page is dropped whole (see above).
BULK_CHANGES = 100
# A poll this many full pages behind empties the cache and starts again at the end (see above).
CATCH_UP_PAGES = 10


@dataclass(frozen=True)
class Poll:
    """What one poll found: the position after the ordered changes it applied, whether it applied
    every committed change (nothing left unread), the WAL position read first and when it was sent."""

    position: Position
    complete: bool
    wal_position: int
    sent_at: float


@dataclass(frozen=True)
class Ticket:
    """What a fill saw when it started (the cache's epoch, the number of drops so far): its answer may
    be kept if it is still `current`."""

    epoch: int
    drops: int


@dataclass(frozen=True, slots=True)
class Drop:
    number: int
    project: str
    tags: frozenset[Tag] | None  # None: the project whole
    xid: int | None = None  # the transaction whose change it is, when known


class Follower:
    def __init__(self, store: Store, listener: Listener, *, max_lag_ms: int) -> None:
        self.store = store
        self.max_lag = max_lag_ms / 1000
        self.heartbeat = min(max(self.max_lag / 4, 0.01), 1.0)
        self.floor = self.heartbeat
        self._listener = listener
        self.ready = False
        self.applied = 0
        self.applied_at = 0.0
        # Every change applied so far committed below this WAL position: a fill that reads a replica
        # which has replayed it misses none of them.
        self.through = 0
        self._session: int | None = None
        self._position: Position | None = None
        self._truncations: int | None = None
        self._epoch = 0
        self._dropped = 0  # drops so far
        self._recent: deque[Drop] = deque(maxlen=RECENT_DROPS)
        self._started = 0  # polls sent
        self._done_through = 0  # the newest complete poll
        self._waiting: list[tuple[int, asyncio.Future[None]]] = []
        self._last_sent = 0.0  # when the last poll began
        self._wake = asyncio.Event()  # a commit was notified (or made here)
        self._urgent = asyncio.Event()  # a write of this worker waits for the next poll
        listener.observe(self._wake.set)

    # --- what reads and writes ask ---

    def fresh(self, min_revision: int | None) -> bool:
        """Whether the cache may answer a read with this `Relations-Min-Revision` (None: without one)."""
        if not self.ready:
            return False
        if min_revision is not None:
            return min_revision < self.applied
        return time.monotonic() - self.applied_at <= self.max_lag

    def ticket(self) -> Ticket | None:
        """Taken before a fill reads; None while bypassed (nothing read then is kept)."""
        return Ticket(self._epoch, self._dropped) if self.ready else None

    def current(
        self, project: str, tags: frozenset[Tag], ticket: Ticket | None, *, xid: int | None = None
    ) -> bool:
        """Whether an answer of `project` that depends on `tags`, read since `ticket`, may be kept: the
        cache was not emptied, and no drop since touched those tags or the project whole — but those
        of the transaction `xid`'s change, when the answer is that transaction's own."""
        if ticket is None or not self.ready or ticket.epoch != self._epoch:
            return False
        if self._dropped - ticket.drops > len(self._recent):
            return False  # drops since are no longer remembered
        for drop in reversed(self._recent):
            if drop.number <= ticket.drops:
                break
            if xid is not None and drop.xid == xid:
                continue
            if drop.project == project and (drop.tags is None or not drop.tags.isdisjoint(tags)):
                return False
        return True

    def mark(self) -> int | None:
        """Right after a commit of this worker (synchronously, so no poll has started since): the
        poll that will have seen it, due now (past the floor, at once if the write waits for it with
        `synced`); None while bypassed (emptied when it was last reset)."""
        if not self.ready:
            return None
        self._wake.set()
        return self._started + 1

    async def synced(self, project: str, mark: int) -> None:
        """Once the poll `mark` (or a reset) has passed: the cache no longer holds what the write
        changed. Past `SYNC_SECONDS`, the project's entries are dropped instead."""
        if not self.ready or self._done_through >= mark:
            return  # (not ready: emptied by a reset since the mark, and bypassed)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((mark, future))
        self._urgent.set()
        try:
            async with asyncio.timeout(SYNC_SECONDS):
                await future
        except TimeoutError:
            self.drop_project(project)

    def lag_seconds(self) -> float | None:
        return time.monotonic() - self.applied_at if self.ready else None

    def drop_project(self, project: str) -> None:
        self.store.drop_project(project)
        self._remember(project, None)

    def drop(self, project: str, touched: frozenset[Tag], *, xid: int | None = None) -> None:
        """What a change touched (also a write of this worker, right after its commit; the poll that
        sees it drops it again): the entries filed under those tags but those that transaction `xid`
        answered itself, and a fill under way that depends on any of them is not kept."""
        self.store.drop(project, touched, spare=xid)
        self._remember(project, touched, xid)

    def _remember(self, project: str, tags: frozenset[Tag] | None, xid: int | None = None) -> None:
        self._dropped += 1
        self._recent.append(Drop(self._dropped, project, tags, xid))

    # --- the worker's chore ---

    async def run(self) -> None:
        while True:
            await self._due()
            try:
                await self._follow()
            except Exception as error:  # an outage: bypassed until a poll completes again
                log.warning("read cache: cannot follow the change log: %s", error)
                self._reset()
                await asyncio.sleep(FAILED_SECONDS)

    async def _due(self) -> None:
        """Until the next poll is due: a commit notified and the floor passed since the last poll
        began, a write waiting for it, or the heartbeat."""
        # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow the cancellation that
        # stops the worker when it meets the timeout, and this loop would never end.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.heartbeat):
                await self._wake.wait()
        rest = self._last_sent + self.floor - time.monotonic()
        if rest > 0 and not self._waiting:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(rest):
                    await self._urgent.wait()
        self._wake.clear()
        self._urgent.clear()

    async def _follow(self) -> None:
        session = self._listener.session
        if session is None or session != self._session:
            self._reset()
            self._session = session
            if session is None:
                return
        if self._position is None:
            self._position = await feed.end(self._listener)
        self._started += 1
        self._last_sent = time.monotonic()
        number = self._started
        found = await self._poll(self._position)
        if self._listener.session != session:
            self._reset()
            return
        self._position = found.position
        if not found.complete:
            asyncio.get_running_loop().call_later(RETRY_SECONDS, self._wake.set)
            return
        self.applied = max(self.applied, found.wal_position)
        self.applied_at = found.sent_at
        self.ready = True
        self._release(number)

    async def _poll(self, position: Position) -> Poll:
        """Applies every change after `position` (pages until one is short, or too many) and those held
        back."""
        pages = 0
        while True:
            sent_at = time.monotonic()
            rows = await queries.poll(self._listener, after=position, limit=PAGE)
            head = rows[0]
            self._truncated(head["truncations"])
            pruned = head["pruned_key"]
            if pruned is not None and Position(bytes(pruned), LAST_ID) > position:
                return await self._restart(sent_at)  # retention passed us
            ordered = [row for row in rows if row["id"] is not None and not row["held"]]
            held = [row for row in rows if row["held"]]
            self._apply(ordered)
            self._apply(held)
            if ordered or held:  # (a poll that applied nothing leaves it, so fills need not chase the WAL)
                self.through = max(self.through, int(rows[-1]["wal_end"]))
            if ordered:
                position = max(Position(bytes(row["commit_key"]), row["id"]) for row in ordered)
            if len(ordered) < PAGE:
                return Poll(position, len(held) < PAGE, int(head["wal_position"]), sent_at)
            pages += 1
            if pages >= CATCH_UP_PAGES:
                log.info("read cache: %d pages of changes behind; emptied, following from the end", pages)
                return await self._restart(sent_at)

    async def _restart(self, sent_at: float) -> Poll:
        """Empty and bypassed, and following again from the end of the log: the poll this ends is
        incomplete, so the next one (from the end) makes the cache ready again."""
        self._reset()
        return Poll(await feed.end(self._listener), False, 0, sent_at)

    def _apply(self, changes: list[Record]) -> None:
        counts = Counter(change["project"] for change in changes)
        bulk = {project for project, count in counts.items() if count >= BULK_CHANGES}
        for project in bulk:
            self.drop_project(project)
        for change in changes:
            project = change["project"]
            if project in bulk:
                continue
            touched = tags.touched(change)
            if touched is None:
                self.drop_project(project)
            else:
                self.drop(project, touched, xid=commit_xid(bytes(change["commit_key"])))

    def _truncated(self, count: int) -> None:
        if self._truncations is not None and count != self._truncations:
            self._empty()
        self._truncations = count

    def _release(self, number: int | None) -> None:
        """Writes waiting for a poll up to `number` (every one: None) may answer."""
        if number is not None:
            self._done_through = max(self._done_through, number)
        still = []
        for target, future in self._waiting:
            if number is None or target <= number:
                if not future.done():
                    future.set_result(None)
            else:
                still.append((target, future))
        self._waiting = still

    def _reset(self) -> None:
        """Empty and bypassed until the next complete poll (writes waiting need not wait for it)."""
        self._empty()
        self.ready = False
        self._position = None
        self._truncations = None
        self._release(None)

    def _empty(self) -> None:
        """No entry left, and no fill that started before kept (its ticket's epoch is past)."""
        self.store.clear()
        self._epoch += 1
