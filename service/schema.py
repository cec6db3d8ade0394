"""Applies `schema.sql` when the database is empty or older than the file (one worker at a time)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path

import asyncpg

from service.db import split_url

# Any constant works; it only has to be the same for every worker that migrates at once.
MIGRATION_LOCK = 7_201_911_001


def schema_text() -> str:
    """The repository's `schema.sql`, or the copy installed beside the package."""
    source = Path(__file__).resolve().parent.parent / "schema.sql"
    if source.exists():
        return source.read_text()
    return resources.files("service").joinpath("schema.sql").read_text()


def schema_version(text: str) -> int:
    found = re.search(r"^-- schema-version: (\d+)$", text, re.MULTILINE)
    if not found:
        raise RuntimeError("schema.sql has no '-- schema-version: N' line")
    return int(found.group(1))


async def connect(url: str) -> asyncpg.Connection:
    """A connection of its own (migrations, tools, tests); no statement cache, so it also works through
    pgbouncer in transaction pooling mode."""
    plain, options = split_url(url)
    return await asyncpg.connect(plain, statement_cache_size=0, **options)


async def migrate(url: str) -> bool:
    """Bring the database up to `schema.sql`. Returns True when anything was applied."""
    text = schema_text()
    wanted = schema_version(text)
    connection = await connect(url)
    try:
        async with connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
            current = 0
            if await connection.fetchval("SELECT to_regclass('schema_version')") is not None:
                current = await connection.fetchval("SELECT coalesce(max(version), 0) FROM schema_version")
            if current >= wanted:
                return False
            await connection.execute(text)
            return True
    finally:
        await connection.close()


class DatabaseUnreachable(Exception):
    """The database did not answer within the start-up wait; the message names the last failure."""


async def when_reachable(attempt: Callable[[], Awaitable[object]], *, wait_seconds: int) -> None:
    """Run `attempt` (migrate, open a pool …), retrying each second for up to `wait_seconds` while the
    database is not there yet (a container still starting, a worker restarted during an outage)."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            await attempt()
            return
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            if time.monotonic() >= deadline:
                raise DatabaseUnreachable(f"{type(error).__name__}: {error}") from None
        await asyncio.sleep(1)
