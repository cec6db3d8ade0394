"""Revision tokens (SPEC §12): a write answers `Relations-Revision`, a read may ask for at least that
much with `Relations-Min-Revision`.

A token is a PostgreSQL WAL position taken on the primary after the write committed, written as one
hexadecimal number (`16B374D848` for PostgreSQL's `16/B374D848`: a `/` in a header value trips some
HTTP tooling), so a replica whose replay position has reached it has replayed the write's commit.
Clients treat it as opaque; they only hand it back."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable

from service import messages
from service.errors import BadRequest

HEADER = "Relations-Revision"
MIN_HEADER = "Relations-Min-Revision"
_TOKEN = re.compile(r"[0-9A-Fa-f]{1,16}")


def parse(text: str) -> int:
    """A token as a WAL position (bytes since the start of the WAL)."""
    if not _TOKEN.fullmatch(text):
        raise ValueError(text)
    return int(text, 16)


def parse_header(value: str) -> int:
    """`Relations-Min-Revision`'s value, or 400 for one that no write ever answered."""
    try:
        return parse(value)
    except ValueError:
        raise BadRequest(messages.REVISION_INVALID.format(header=MIN_HEADER)) from None


def render(position: int) -> str:
    return f"{position:X}"


class CommitClock:
    """The revision of writes that have committed. One query for the primary's WAL position answers
    every write that had committed before it was sent, so concurrent writes share the round trip (under
    load a handful per query) instead of each paying one more."""

    def __init__(self, position: Callable[[], Awaitable[int]]) -> None:
        self._position = position
        self._waiting: list[asyncio.Future[int]] = []
        self._draining: asyncio.Task[None] | None = None

    async def after_commit(self) -> int:
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiting.append(future)
        if self._draining is None:
            self._draining = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._waiting:
                # Every write in `batch` committed before this query is sent: its answer covers them.
                batch, self._waiting = self._waiting, []
                try:
                    position = await self._position()
                except Exception as error:
                    for future in batch:
                        if not future.done():
                            future.set_exception(error)
                    continue
                for future in batch:
                    if not future.done():
                        future.set_result(position)
        finally:
            self._draining = None
