"""The service on a real socket: uvicorn in a thread of the test process, on a free loopback port, with
its own event loop and database pool. For tests that talk to it as an outside client would (schemathesis,
a generated client, a browser)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import uvicorn
from starlette.applications import Starlette

from service.app import create_app
from service.projects.service import SCOPES, create_key
from service.settings import Settings

T = TypeVar("T")


class LiveServer:
    def __init__(self, settings: Settings) -> None:
        self.app: Starlette = create_app(settings)
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=0, lifespan="on", ws="none", log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread = threading.Thread(target=self._run, name="live-server", daemon=True)

    def _run(self) -> None:
        async def serve() -> None:
            self.loop = asyncio.get_running_loop()
            await self.server.serve()

        asyncio.run(serve())

    @property
    def port(self) -> int:
        port: int = self.server.servers[0].sockets[0].getsockname()[1]
        return port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the live server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the server's own loop (where its database pool lives)."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=60)

    def new_project(self, prefix: str = "live") -> tuple[str, str]:
        """A fresh project and an API key of all scopes: (alias, key)."""
        alias = f"{prefix}-{time.time_ns():x}"[:63]
        new = self.run(create_key(self.app.state.db, project=alias, scopes=list(SCOPES)))
        return alias, new.key


@contextmanager
def live_server(settings: Settings) -> Iterator[LiveServer]:
    server = LiveServer(settings)
    server.start()
    try:
        yield server
    finally:
        server.stop()
