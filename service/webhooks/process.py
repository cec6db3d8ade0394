"""The webhook process: the dispatcher and the sender, apart from the API workers.

`relations serve` starts one beside its workers (unless RELATIONS_WEBHOOK_DELIVERY=false), and
`relations webhooks` runs one on its own, for deployments that place them apart. Any number may run,
on any machines: the database decides which one dispatches (the cursor's row) and which one sends each
delivery (its claim), so two never send one delivery at once.

In a process of its own, delivery shares neither an event loop nor the interpreter's lock with a
saturated API: in a thread of the API worker it fell seconds behind the commits under load.

Wake-ups come over LISTEN on one connection (service/changes/listener.py): a commit's notification on
the change log's channel wakes the dispatcher, which wakes the sender once it has queued deliveries;
`DUE_CHANNEL` wakes the sender when the API makes deliveries due (a manual retry, a webhook enabled
again). The poll interval (RELATIONS_WEBHOOK_POLL_SECONDS) is only the fallback."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator

from service.changes.listener import Listener
from service.db import Database
from service.settings import Settings
from service.webhooks.dispatcher import Dispatcher
from service.webhooks.queries import DUE_CHANNEL
from service.webhooks.sender import Sender

log = logging.getLogger("service.webhooks")

POOL_SIZE = 4
PARENT_CHECK_SECONDS = 1.0


class WebhookProcess:
    """The dispatcher, the sender and their listener on the running event loop, with a pool of
    `POOL_SIZE` connections and one listening connection of their own."""

    def __init__(self, settings: Settings) -> None:
        if not settings.database_url:
            raise ValueError("the webhook process needs DATABASE_URL")
        self.settings = settings
        self.db = Database(
            settings.database_url,
            min_size=1,
            max_size=POOL_SIZE,
            statement_timeout_ms=settings.statement_timeout_ms,
            pgbouncer=settings.pgbouncer == "transaction",
            listen_url=settings.database_listen_url,
        )
        self.sender = Sender(self.db, settings)
        self.dispatcher = Dispatcher(
            self.db, poll_seconds=settings.webhook_poll_seconds, queued=self.sender.wake
        )
        self.listener = Listener(self.db)
        self.listener.observe(self.dispatcher.wake)
        self.listener.observe(self.sender.wake, channel=DUE_CHANNEL)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[WebhookProcess]:
        """Dispatching and sending inside the block; on leaving, the attempts in flight are stopped and
        their deliveries handed back (due at once, the attempt not counted)."""
        await self.db.connect()
        tasks = [
            asyncio.create_task(self.listener.run(), name="webhook listener"),
            asyncio.create_task(self.sender.run(), name="webhook sender"),
            asyncio.create_task(self.dispatcher.run(), name="webhook dispatcher"),
        ]
        try:
            yield self
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.sender.close()
            await self.db.disconnect()


async def run_until(stopping: asyncio.Event, settings: Settings, *, parent: int | None = None) -> None:
    """The webhook process until `stopping` is set, or (`parent`: the pid of the `relations serve`
    that started it) until that process is gone, so that a parent killed outright leaves no sender."""
    async with WebhookProcess(settings).running():
        log.info("webhook process %d: dispatching and sending", os.getpid())
        while not stopping.is_set():
            if parent is not None and os.getppid() != parent:
                log.warning("webhook process: the server that started it has gone; stopping")
                break
            with contextlib.suppress(TimeoutError):  # (asyncio.timeout: see the sender's loop)
                async with asyncio.timeout(PARENT_CHECK_SECONDS):
                    await stopping.wait()
