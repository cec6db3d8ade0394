"""One LISTEN connection per worker wakes every waiting feed request of its project at the commit of a
change (NOTIFY on `model.CHANNEL`, payload the project), so a waiting client costs nothing until then:
no query per waiting client per interval. The service's own writes wake the worker's own waiters as
soon as they commit (`committed`) and are notified to everyone else just after (`announce`: coalesced,
one NOTIFY in flight per worker); every other
writer's commit trigger notifies itself (schema.sql). Other channels can be listened to on the same
connection (`observe(channel=…)`: the webhook process's wake-ups).

A committed change can be held back for a moment (see the package docstring: it is delivered once
every writer that was running at its commit has ended), and the transaction it waits for may end
without notifying (a rollback). Requests that found such a change wait for the delivery bound to pass
it, which this listener reads once per `HELD_POLL_SECONDS` for all of them, only while any waits. When the
connection drops, it reconnects (each second) and wakes every waiter, since notifications sent
meanwhile were lost; until then waiters wake every `DISCONNECTED_POLL_SECONDS` and read again."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from service.changes import queries
from service.changes.model import CHANNEL
from service.db import Database, Record, translate

log = logging.getLogger("service.changes")

# The service's pooled sessions carry this: their commits are notified by `Listener.changed` after
# the commit (schema.sql's commit trigger notifies for every other writer).
NOTIFY_AFTER_COMMIT = {"relations.notify": "after-commit"}
NOTIFY = "SELECT pg_notify($1, project) FROM unnest($2::text[]) AS project"
APPLICATION_NAME = "relations-changes"
HELD_POLL_SECONDS = 0.005
DISCONNECTED_POLL_SECONDS = 0.5
RECONNECT_SECONDS = 1.0
LIVENESS_SECONDS = 1.0


@dataclass(eq=False)
class _Waiter:
    project: str
    woken: asyncio.Event = field(default_factory=asyncio.Event)
    held_xmax: int | None = None


class Listener:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._generation: dict[str, int] = defaultdict(int)
        self._waiters: dict[str, set[_Waiter]] = defaultdict(set)
        self._held: set[_Waiter] = set()
        self._held_changed = asyncio.Event()
        self._connection: asyncpg.Connection | None = None
        self._lost = asyncio.Event()
        self._observers: dict[str, list[Callable[[], None]]] = defaultdict(list)
        self._unsent: set[str] = set()
        self._send = asyncio.Event()
        self._reading = asyncio.Lock()
        self._sessions = 0

    @property
    def listening(self) -> bool:
        return self._connection is not None

    @property
    def session(self) -> int | None:
        """Which LISTEN connection this is (a number that grows with every reconnect); None while
        not listening. A reader that saw it change may have missed notifications in between."""
        return self._sessions if self._connection is not None else None

    def observe(self, callback: Callable[[], None], *, channel: str = CHANNEL) -> None:
        """`callback()` at every notification on `channel` (on the change log's: of any project), and
        after a reconnect: for a reader of the whole log (the webhook dispatcher), or another channel's
        wake-ups. Call before `run`."""
        self._observers[channel].append(callback)

    def ticket(self, project: str) -> int:
        """Take before reading the feed: a wait with it returns at once if a change of the project
        was notified after this point (so no commit between the read and the wait is missed)."""
        return self._generation[project]

    async def wait(self, project: str, ticket: int, seconds: float, *, held_xmax: int | None = None) -> None:
        """Until a change of `project` is notified after `ticket`, a held-back change (`held_xmax`)
        becomes deliverable, or `seconds` pass."""
        if self._generation[project] != ticket or seconds <= 0:
            return
        if not self.listening:
            seconds = min(seconds, DISCONNECTED_POLL_SECONDS)
        waiter = _Waiter(project, held_xmax=held_xmax)
        self._waiters[project].add(waiter)
        if held_xmax is not None:
            self._held.add(waiter)
            self._held_changed.set()
        try:
            async with asyncio.timeout(seconds):  # (not wait_for: it can swallow a cancellation, 3.11)
                await waiter.woken.wait()
        except TimeoutError:
            pass
        finally:
            self._waiters[project].discard(waiter)
            if not self._waiters[project]:
                del self._waiters[project]
            self._held.discard(waiter)

    async def fetch(self, sql: str, *args: Any) -> list[Record]:
        """A feed read on this listener's own connection, so that a woken request is not queued behind
        the API's statements for a pooled one; on the pool while it is not connected."""
        connection = self._connection
        if connection is None:
            return await self._db.fetch(sql, *args)
        async with self._reading:
            try:
                rows: list[Record] = await connection.fetch(sql, *args)
                return rows
            except Exception as error:
                if connection.is_closed():  # cut while this read was in flight: asyncpg may not say
                    self._lost.set()
                answer = translate(error, connecting=False)
                if answer is None:
                    raise
                raise answer from error

    async def fetchval(self, sql: str, *args: Any) -> Any:
        rows = await self.fetch(sql, *args)
        return rows[0][0] if rows else None

    def committed(self, project: str) -> None:
        """A write of this worker committed: wake its own waiters now."""
        self._wake(project)

    def announce(self, project: str) -> None:
        """...and, once its revision has been read (the NOTIFY is a statement of its own, and a
        revision token past it would wait for WAL no replica has been sent yet), the other workers
        and the webhook processes, through one NOTIFY (a NOTIFY commits one at a time server-wide, so
        the writes that commit meanwhile share the next one)."""
        self._unsent.add(project)
        self._send.set()

    async def _send_notifications(self) -> None:
        while True:
            await self._send.wait()
            self._send.clear()
            projects, self._unsent = sorted(self._unsent), set()
            try:
                await self._db.execute(NOTIFY, CHANNEL, projects)
            except Exception as error:  # an outage: the other workers' waits time out and read again
                log.warning("change feed listener: cannot notify: %s", error)
                await asyncio.sleep(DISCONNECTED_POLL_SECONDS)

    def _notified(self, connection: Any, pid: int, channel: str, payload: str) -> None:
        if channel == CHANNEL:
            self._wake(payload)
            return
        for callback in self._observers[channel]:
            callback()

    def _wake(self, project: str) -> None:
        self._generation[project] += 1
        for waiter in self._waiters.get(project, ()):
            waiter.woken.set()
        for callback in self._observers[CHANNEL]:
            callback()

    def _wake_all(self) -> None:
        for project in list(self._generation):
            self._wake(project)
        for callbacks in list(self._observers.values()):
            for callback in callbacks:
                callback()

    async def run(self) -> None:
        """The worker's chore: keep the LISTEN connection, and poll the bound for held-back waiters."""
        poller = asyncio.create_task(self._poll_held())
        sender = asyncio.create_task(self._send_notifications())
        try:
            while True:
                try:
                    await self._listen()
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                    log.warning("change feed listener: %s; reconnecting", error)
                self._connection = None
                self._wake_all()
                await asyncio.sleep(RECONNECT_SECONDS)
        finally:
            poller.cancel()
            sender.cancel()
            await asyncio.gather(poller, sender, return_exceptions=True)
            await self._close()

    async def _listen(self) -> None:
        connection = await self._db.dedicated_connection(name=APPLICATION_NAME)
        self._lost.clear()
        connection.add_termination_listener(lambda _: self._lost.set())
        try:
            for channel in {CHANNEL, *self._observers}:
                await connection.add_listener(channel, self._notified)
            self._connection = connection
            self._sessions += 1
            self._wake_all()  # whatever committed while nobody listened
            # The termination listener, and a check each second: a connection cut while a read was
            # in flight on it can end closed without asyncpg calling its termination listeners.
            while not connection.is_closed():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(LIVENESS_SECONDS):
                        await self._lost.wait()
                if self._lost.is_set():
                    break
        finally:
            self._connection = None
            if not connection.is_closed():
                connection.terminate()

    async def _close(self) -> None:
        if self._connection is not None and not self._connection.is_closed():
            self._connection.terminate()
        self._connection = None

    async def _poll_held(self) -> None:
        while True:
            if not self._held:
                self._held_changed.clear()
                await self._held_changed.wait()
                continue
            try:
                bound = await queries.bound(self)
            except Exception as error:  # the pool answers 503 in an outage; the waiters time out
                log.debug("change feed listener: cannot read the delivery bound: %s", error)
                await asyncio.sleep(DISCONNECTED_POLL_SECONDS)
                continue
            for waiter in list(self._held):
                if waiter.held_xmax is not None and waiter.held_xmax <= bound:
                    self._held.discard(waiter)
                    waiter.woken.set()
            await asyncio.sleep(HELD_POLL_SECONDS)
