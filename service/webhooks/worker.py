"""The webhook chores of one worker process, started and stopped by the app's lifespan: the sender
(when RELATIONS_SECRET_KEY is set) and the dispatcher. Every worker runs both; the database decides
which one dispatches and which one sends each delivery."""

from __future__ import annotations

import asyncio
import logging

from service.changes.listener import Listener
from service.db import Database
from service.settings import Settings
from service.webhooks.dispatcher import Dispatcher
from service.webhooks.sender import Sender

log = logging.getLogger("service.webhooks")


class Webhooks:
    def __init__(self, db: Database, settings: Settings, listener: Listener) -> None:
        self.db = db
        self.settings = settings
        self.listener = listener
        self.sender: Sender | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def wake_senders(self) -> None:
        if self.sender is not None:
            self.sender.wake()

    async def start(self) -> None:
        if not self.settings.webhook_delivery:
            return
        if not self.settings.secret_key:
            log.warning("webhooks are off: RELATIONS_SECRET_KEY is not set")
            return
        self.sender = Sender(self.db, self.settings)
        dispatcher = Dispatcher(
            self.db, poll_seconds=self.settings.webhook_poll_seconds, queued=self.sender.wake
        )
        self.listener.observe(dispatcher.wake)
        self._tasks.append(asyncio.create_task(self.sender.run(), name="webhook sender"))
        self._tasks.append(asyncio.create_task(dispatcher.run(), name="webhook dispatcher"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.sender is not None:
            await self.sender.close()
