"""The webhook chores of one worker process, started and stopped by the app's lifespan: the sender
(when RELATIONS_SECRET_KEY is set) and the dispatcher. Every worker runs both; the database decides
which one dispatches and which one sends each delivery.

They run on an event loop of their own, in a thread of the worker, with a small pool of their own
(WEBHOOK_POOL_SIZE connections): a loop busy with API requests would make every await of a delivery
wait its turn (under load the deliveries fell behind the commits by seconds), and neither side ever
waits behind the other for a connection. Wake-ups from the API's loop (a commit's notification, a
manual retry) cross over with `call_soon_threadsafe`."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable

from service.changes.listener import Listener
from service.db import Database
from service.settings import Settings
from service.webhooks.dispatcher import Dispatcher
from service.webhooks.sender import Sender

log = logging.getLogger("service.webhooks")

WEBHOOK_POOL_SIZE = 4
START_SECONDS = 30.0


class Webhooks:
    def __init__(self, settings: Settings, listener: Listener) -> None:
        assert settings.database_url
        self.settings = settings
        self.listener = listener
        self.db = Database(
            settings.database_url,
            min_size=1,
            max_size=WEBHOOK_POOL_SIZE,
            statement_timeout_ms=settings.statement_timeout_ms,
        )
        self.sender: Sender | None = None
        self.dispatcher: Dispatcher | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    def _soon(self, call: Callable[[], None]) -> None:
        """Run `call` on the webhooks' loop (from any thread)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(call)

    def wake_senders(self) -> None:
        if self.sender is not None:
            self._soon(self.sender.wake)

    def wake_dispatcher(self) -> None:
        if self.dispatcher is not None:
            self._soon(self.dispatcher.wake)

    async def start(self) -> None:
        if not self.settings.webhook_delivery:
            return
        if not self.settings.secret_key:
            log.warning("webhooks are off: RELATIONS_SECRET_KEY is not set")
            return
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._main()), name="webhooks", daemon=True
        )
        self._thread.start()
        await asyncio.to_thread(self._ready.wait, START_SECONDS)
        self.listener.observe(self.wake_dispatcher)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        try:
            await self.db.connect()
        except Exception:
            log.exception("webhooks are off in this worker: their pool could not connect")
            self._ready.set()
            return
        self.sender = Sender(self.db, self.settings)
        self.dispatcher = Dispatcher(
            self.db, poll_seconds=self.settings.webhook_poll_seconds, queued=self.sender.wake
        )
        tasks = [
            asyncio.create_task(self.sender.run(), name="webhook sender"),
            asyncio.create_task(self.dispatcher.run(), name="webhook dispatcher"),
        ]
        self._ready.set()
        try:
            await self._stopping.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.sender.close()
            await self.db.disconnect()

    async def stop(self) -> None:
        """Hand back the deliveries in flight and close the pool (waits for the thread)."""
        if self._thread is None:
            return
        stopping = self._stopping
        if stopping is not None:
            self._soon(stopping.set)
        await asyncio.to_thread(self._thread.join, START_SECONDS)
