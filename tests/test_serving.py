"""service/serving.py and `relations serve`'s uvicorn settings, over a real socket: no `server` header,
the start-up banner, and a request's headers bounded in time and size (a client that never finishes
them no longer holds its connection)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from service.serving import FLUSH_BYTES, CorkedTransport
from tests.processes import Service, running_service

HEADER_TIMEOUT = 1


@pytest.fixture(scope="module")
async def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Service]:
    env = {"RELATIONS_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT), "RELATIONS_MAX_HEADER_BYTES": "8192"}
    async with running_service(database_url, tmp_path_factory.mktemp("serving"), env=env) as running:
        yield running


async def test_no_server_header(server: Service) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        answer = await http.get("/health/live")
        missing = await http.get("/nothing-here")
    assert answer.status_code == 200 and missing.status_code == 404
    assert "server" not in answer.headers and "server" not in missing.headers


async def test_prints_where_it_serves(server: Service) -> None:
    assert f"Serving on http://127.0.0.1:{server.port} — docs at /docs" in server.output()


async def read_until_closed(reader: asyncio.StreamReader, seconds: float) -> bytes:
    return await asyncio.wait_for(reader.read(), timeout=seconds)


async def test_headers_that_never_finish_are_cut_off(server: Service) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    started = time.monotonic()
    writer.write(b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    await writer.drain()
    answer = await read_until_closed(reader, HEADER_TIMEOUT + 10)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert time.monotonic() - started >= HEADER_TIMEOUT * 0.9
    writer.close()


async def test_a_silent_connection_is_cut_off(server: Service) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    answer = await read_until_closed(reader, HEADER_TIMEOUT + 10)
    assert answer.startswith(b"HTTP/1.1 408 ")
    writer.close()


async def kept_alive(server: Service) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection that has had one request answered, and stays open."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    first = await asyncio.wait_for(reader.readuntil(b'{"status":"live"}'), timeout=10)
    assert first.startswith(b"HTTP/1.1 200 ")
    return reader, writer


async def test_a_slow_next_request_on_a_kept_alive_connection_is_cut_off(server: Service) -> None:
    reader, writer = await kept_alive(server)
    writer.write(b"GET /health/live HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
    await writer.drain()
    answer = await read_until_closed(reader, HEADER_TIMEOUT + 10)
    assert answer.startswith(b"HTTP/1.1 408 ")
    writer.close()


async def test_blank_lines_trickled_between_requests_do_not_keep_a_connection(server: Service) -> None:
    reader, writer = await kept_alive(server)
    started = time.monotonic()
    while not reader.at_eof() and time.monotonic() - started < HEADER_TIMEOUT + 10:
        writer.write(b"\r\n")  # each cancels uvicorn's keep-alive timeout
        try:
            await writer.drain()
        except ConnectionError:
            break
        try:
            if await asyncio.wait_for(reader.read(), timeout=0.2):
                break
        except TimeoutError:
            continue
    assert time.monotonic() - started < HEADER_TIMEOUT + 5
    writer.close()


async def test_oversized_headers_are_431(server: Service) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n")
    await writer.drain()
    answer = await read_until_closed(reader, 10)
    assert answer.startswith(b"HTTP/1.1 431 ")
    writer.close()


async def test_a_large_body_is_not_mistaken_for_large_headers(server: Service) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        answer = await http.post("/relation", content=b"x" * 100_000, headers={"Api-Key": "nope"})
    assert answer.status_code == 401


async def test_ordinary_requests_are_unaffected(server: Service, tmp_path: Path) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        for _ in range(5):
            assert (await http.get("/health/live")).status_code == 200
            await asyncio.sleep(0.3)  # the connection idles between requests, within the keep-alive


async def test_a_response_goes_out_in_one_write() -> None:
    """The writes made within one turn of the event loop (uvicorn's head, then its body) reach the
    connection's transport as one; closing sends what is pending first, aborting drops it."""

    class Recording(asyncio.Transport):
        def __init__(self) -> None:
            super().__init__()
            self.writes: list[bytes] = []
            self.closed = False

        def write(self, data: bytes | bytearray | memoryview) -> None:
            self.writes.append(bytes(data))

        def is_closing(self) -> bool:
            return self.closed

        def close(self) -> None:
            self.closed = True

        def abort(self) -> None:
            self.closed = True

        def get_write_buffer_size(self) -> int:
            return 0

    inner = Recording()
    corked = CorkedTransport(inner, asyncio.get_running_loop())
    corked.write(b"HTTP/1.1 200 OK\r\n\r\n")
    corked.write(b"body")
    assert inner.writes == [] and corked.get_write_buffer_size() == 23
    await asyncio.sleep(0)
    assert inner.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
    corked.write(b"last")
    corked.close()
    assert inner.writes[-1] == b"last" and inner.closed
    await asyncio.sleep(0)  # the flush scheduled for "last" finds nothing left
    assert len(inner.writes) == 2
    streamed = Recording()
    streaming = CorkedTransport(streamed, asyncio.get_running_loop())
    streaming.write(b"x" * (FLUSH_BYTES - 1))
    assert streamed.writes == []  # held until the turn ends …
    streaming.write(b"y")
    assert len(streamed.writes) == 1 and streaming.get_write_buffer_size() == 0  # … unless that much waits
    dropped = CorkedTransport(Recording(), asyncio.get_running_loop())
    dropped.write(b"never")
    dropped.abort()
    await asyncio.sleep(0)
    assert dropped.get_write_buffer_size() == 0
