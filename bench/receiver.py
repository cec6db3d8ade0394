"""A webhook receiver on 127.0.0.1 and a free port: a small HTTP/1.1 server on asyncio that records
every request and answers what its `answer` callback says (200 by default). The tests and the webhook
benchmark send deliveries to it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.time)


Answer = Callable[[Received], Awaitable[int]]


async def always_ok(request: Received) -> int:
    return 200


class Receiver:
    def __init__(self, answer: Answer = always_ok) -> None:
        self.answer = answer
        self.received: list[Received] = []
        self.port = 0
        self._arrived = asyncio.Condition()
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def wait_for(self, count: int, *, bound: float = 30.0) -> list[Received]:
        """Until `count` requests have arrived (the bound only keeps a broken test from hanging)."""
        async with asyncio.timeout(bound), self._arrived:
            await self._arrived.wait_for(lambda: len(self.received) >= count)
        return self.received

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        handler = asyncio.current_task()
        if handler is not None:
            self._handlers.add(handler)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                request = Received(method, path, headers, body)
                async with self._arrived:
                    self.received.append(request)
                    self._arrived.notify_all()
                status = await self.answer(request)
                writer.write(f"HTTP/1.1 {status} X\r\ncontent-length: 0\r\n\r\n".encode())
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            self._writers.discard(writer)
            if handler is not None:
                self._handlers.discard(handler)
            writer.close()

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Receiver]:
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        try:
            yield self
        finally:
            server.close()
            for writer in list(self._writers):
                writer.close()
            # Each connection's handler ends once its stream is closed (one still answering is given a
            # second); left to the loop's shutdown, they would be cancelled and asyncio would print
            # each one's CancelledError.
            if self._handlers:
                _, hanging = await asyncio.wait(self._handlers, timeout=1)
                for handler in hanging:
                    handler.cancel()
