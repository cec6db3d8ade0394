"""The HTTP protocol `relations serve` runs: uvicorn's httptools protocol with the two limits uvicorn
has only for h11 or not at all — a request's headers must arrive within
RELATIONS_HEADER_TIMEOUT_SECONDS of the connection (or of the request's first byte) and be at most
RELATIONS_MAX_HEADER_BYTES; else the connection gets a plain 408 or 431 and is closed. A client that
never finishes its headers no longer holds a connection (and one of RELATIONS_MAX_CONNECTIONS) open.

And one write per response where uvicorn makes two: it writes a response's head and its body apart,
each a send call of its own, which took a third of a worker's samples serving cached reads
(py-spy). The connection's transport joins the writes made within one turn of the event loop
(`CorkedTransport`), so a response goes out in one call, as soon as its handler has sent it.

uvicorn takes the protocol class by import path (`--http`), so each worker imports this module."""

from __future__ import annotations

import asyncio
from functools import cache
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from service.settings import Settings


class HeadersTooLarge(Exception):
    """Raised from a parser callback: httptools stops and uvicorn answers through send_400_response."""


TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
TOO_LARGE = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


@cache
def _limits() -> tuple[float, int]:
    settings = Settings.from_env()
    return float(settings.header_timeout_seconds), settings.max_header_bytes


# Past this much pending, a write goes out at once (a streamed answer's chunks within one turn).
FLUSH_BYTES = 64 * 1024


class CorkedTransport(asyncio.Transport):
    """A connection's transport whose writes within one turn of the event loop go out as one; every
    other call goes to the transport itself (flow control, closing, its extra info)."""

    def __init__(self, inner: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._inner = inner
        self._loop = loop
        self._pending: list[bytes] = []
        self._size = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(bytes(data))
        self._size += len(data)
        if self._size >= FLUSH_BYTES:  # a stream writing much within one turn: its flow control holds
            self._flush()

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def _flush(self) -> None:
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            self._size = 0
            if not self._inner.is_closing():  # (a closed connection's writes are dropped anyway)
                self._inner.write(data)

    def close(self) -> None:
        self._flush()
        self._inner.close()

    def write_eof(self) -> None:
        self._flush()
        self._inner.write_eof()

    def abort(self) -> None:
        self._pending.clear()
        self._size = 0
        self._inner.abort()

    def can_write_eof(self) -> bool:
        return self._inner.can_write_eof()

    def is_closing(self) -> bool:
        return self._inner.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._inner.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self._inner.pause_reading()

    def resume_reading(self) -> None:
        self._inner.resume_reading()

    def is_reading(self) -> bool:
        return self._inner.is_reading()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._inner.set_write_buffer_limits(high, low)

    def get_write_buffer_size(self) -> int:
        return self._inner.get_write_buffer_size() + self._size

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._inner.get_write_buffer_limits()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._inner.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._inner.get_protocol()


class GuardedHttpTools(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout, self.max_header_bytes = _limits()
        self._header_bytes = 0  # the request line and headers parsed so far
        self._unparsed_bytes = 0  # bytes received while the headers were still incomplete
        self._oversized = False
        self._between_requests = True  # no request begun since the last one's end
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CorkedTransport(transport, self.loop))
        self._await_headers()

    def _await_headers(self) -> None:
        self._header_bytes = self._unparsed_bytes = 0
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout, self._refuse, TIMEOUT)

    def _headers_done(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _refuse(self, answer: bytes) -> None:
        self._headers_done()
        if not self.transport.is_closing():
            self.transport.write(answer)
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self._between_requests and self._header_timer is None:
            # Bytes after a kept-alive request (uvicorn has just cancelled its keep-alive timeout):
            # the next request's headers are due from now, even if they come a blank line at a time.
            self._await_headers()
        super().data_received(data)
        if self._header_timer is not None:  # still reading a request's headers: all of it was headers
            self._unparsed_bytes += len(data)
            if self._unparsed_bytes > self.max_header_bytes:
                self._refuse(TOO_LARGE)

    def _count(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > self.max_header_bytes:
            self._oversized = True
            raise HeadersTooLarge()

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def send_400_response(self, msg: str) -> None:
        if self._oversized:
            self._refuse(TOO_LARGE)
        else:
            super().send_400_response(msg)

    def on_message_begin(self) -> None:
        self._between_requests = False
        super().on_message_begin()
        self._await_headers()

    def on_headers_complete(self) -> None:
        self._headers_done()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._between_requests = True
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._headers_done()
        super().connection_lost(exc)
