"""Workers of their own for the cache tests: an app (its pool, listener and cache) served in-process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from starlette.applications import Starlette

from service.app import create_app
from service.cache.service import ReadCache
from tests.conftest import TEST_SECRET_KEY, make_settings


@dataclass
class Worker:
    app: Starlette
    http: httpx.AsyncClient

    @property
    def cache(self) -> ReadCache:
        cache: ReadCache = self.app.state.read_cache
        return cache

    async def settled(self, project: str) -> None:
        """Until a poll that starts now has completed: every change so far is applied (and its drop
        will not meet the fills that follow)."""
        mark = self.cache.follower.mark()
        assert mark is not None
        await self.cache.follower.synced(project, mark)

    async def ready(self) -> None:
        """Until its cache follows the log (bounded)."""
        for _ in range(600):
            if self.cache.follower.ready:
                return
            await asyncio.sleep(0.01)
        raise AssertionError("the read cache never caught up")


@asynccontextmanager
async def worker(database_url: str, **settings: Any) -> AsyncIterator[Worker]:
    values = {"key_cache_seconds": 0, "secret_key": TEST_SECRET_KEY, "webhook_delivery": False, **settings}
    app = create_app(make_settings(database_url=database_url, **values))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            found = Worker(app, http)
            if found.cache.enabled:
                await found.ready()
            yield found
