"""The database: `databases` opens and closes an asyncpg pool; statements and transactions take their
connection straight from that pool (`databases`' per-task bookkeeping cost more than a primary-key query),
asyncpg prepares and caches every statement, and this is the one place where driver failures become
errors."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
import databases

from service import messages
from service.errors import ApiError, BadRequest, ServiceUnavailable

T = TypeVar("T")
# asyncpg ships no type information: a row is read by column name.
Record = Any

log = logging.getLogger("service.db")

# Failures that mean "the database is not there right now", whatever the statement: answered with 503
# (and Retry-After) so clients retry. OSError covers refused/reset connections and client-side timeouts
# (TimeoutError is an OSError); asyncpg raises InterfaceError for a connection closed under it.
# SQLSTATE classes: 08 connection exception (incl. ConnectionDoesNotExistError), 53 insufficient
# resources (too many connections, disk full), 57P operator intervention (57P01 AdminShutdown, i.e. a
# terminated backend; 57P02 crash shutdown; 57P03 cannot connect now; 57P04 database dropped),
# 25006 read-only transaction (a failover left us on a standby).
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.InterfaceError,  # but DataError (an argument it cannot encode) is answered first
    asyncpg.InternalClientError,  # protocol state broken by a backend terminated while idle
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
)
UNAVAILABLE_STATES = ("08", "53", "57P", "25006")
# Data exceptions (SQLSTATE class 22: NUL in text, numeric out of range, …) and asyncpg's own argument
# encoding errors: the request carried a value PostgreSQL cannot take. Input is validated before it gets
# here; this is the safety net that keeps such a value a 400 and never a 500.
INVALID_VALUE_STATE = "22"


def translate(error: BaseException, *, connecting: bool) -> ApiError | None:
    """The answer for a driver failure, or None when it is not the driver's to answer (a bug: 500).
    `connecting`: it happened while taking a connection, where every server error means "not now"
    (e.g. 55000 for a database that does not accept connections, 3D000 for one that is gone)."""
    if isinstance(error, asyncpg.QueryCanceledError):
        return ServiceUnavailable(messages.DATABASE_TIMEOUT)
    if isinstance(error, asyncpg.DataError):  # client-side encoding of an argument
        log.warning("value refused by the driver: %s", error)
        return BadRequest(messages.INVALID_VALUE)
    if isinstance(error, UNAVAILABLE_ERRORS):
        return ServiceUnavailable()
    if isinstance(error, asyncpg.PostgresError):
        state = str(getattr(error, "sqlstate", "") or "")
        if connecting or state.startswith(UNAVAILABLE_STATES):
            return ServiceUnavailable()
        if state.startswith(INVALID_VALUE_STATE):
            log.warning("value refused by PostgreSQL: %s", error)
            return BadRequest(messages.INVALID_VALUE)
    return None


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Pool reset hook. asyncpg's default reset costs a second round trip per request; no handler
    leaves session state behind (only transaction-scoped advisory locks), and asyncpg still rolls
    back an open transaction before calling this."""


# The connection of the transaction the current task is in, with the Database it belongs to.
_TRANSACTION: ContextVar[tuple[Database, asyncpg.Connection] | None] = ContextVar(
    "service.db.transaction", default=None
)


def split_url(url: str) -> tuple[str, dict[str, Any]]:
    """`databases` drops `?host=/socket/dir` (used by the embedded server); pass it as an option."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    options: dict[str, Any] = {}
    if "host" in query:
        options["host"] = query.pop("host")
    if "port" in query:
        options["port"] = int(query.pop("port"))
    return urlunsplit(parts._replace(query=urlencode(query))), options


class Database:
    def __init__(
        self,
        url: str,
        *,
        min_size: int = 2,
        max_size: int = 10,
        statement_timeout_ms: int = 5000,
        session: dict[str, str] | None = None,
    ) -> None:
        """`session`: more settings for every pooled session (e.g. `relations.notify`, schema.sql)."""
        plain_url, options = split_url(url)
        self.url = url
        self._statement_timeout_ms = statement_timeout_ms
        self._pool = databases.Database(
            plain_url,
            min_size=min_size,
            max_size=max_size,
            reset=_keep_session,
            command_timeout=max(statement_timeout_ms / 1000 * 2, 10),
            server_settings={
                "statement_timeout": str(statement_timeout_ms),
                "idle_in_transaction_session_timeout": str(max(statement_timeout_ms * 2, 10000)),
                "application_name": "relations",
                **(session or {}),
            },
            **options,
        )

    async def connect(self) -> None:
        """Open the pool (start-up waits for a database that is not there yet: app.start_database)."""
        await self._pool.connect()

    async def disconnect(self) -> None:
        await self._pool.disconnect()

    async def dedicated_connection(self, *, name: str = "relations") -> asyncpg.Connection:
        """A connection of its own, outside the pool, for a session that keeps it (the change feed's
        LISTEN), named `name` in pg_stat_activity; the caller closes it. Driver failures are raised as
        they are: its owner reconnects."""
        plain_url, options = split_url(self.url)
        settings = {"application_name": name, "statement_timeout": str(self._statement_timeout_ms)}
        return await asyncpg.connect(plain_url, server_settings=settings, **options)

    def _asyncpg_pool(self) -> Any:
        """asyncpg's own pool under `databases`, or None before it is open."""
        return getattr(getattr(self._pool, "_backend", None), "_pool", None)

    def _acquire(self) -> Any:
        pool = self._asyncpg_pool()
        if pool is None:
            raise ServiceUnavailable()
        return pool.acquire()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """All queries of this task inside the block share one connection and one transaction (a
        savepoint when nested)."""
        inside = False
        try:
            current = _TRANSACTION.get()
            if current is not None and current[0] is self:
                async with current[1].transaction():
                    inside = True
                    yield
                return
            async with self._acquire() as raw, raw.transaction():
                inside = True
                token = _TRANSACTION.set((self, raw))
                try:
                    yield
                finally:
                    _TRANSACTION.reset(token)
        except Exception as error:
            answer = translate(error, connecting=not inside)
            if answer is None:
                raise
            raise answer from error

    @asynccontextmanager
    async def dedicated(
        self, *, isolation: str = "read_committed", readonly: bool = False
    ) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection of the caller's own inside a transaction, for what needs asyncpg's own
        API (the bulk routes: COPY into a staging table, a cursor over a snapshot). The block's
        statements go to that connection only; driver failures become errors as everywhere else."""
        inside = False
        try:
            async with self._acquire() as raw, raw.transaction(isolation=isolation, readonly=readonly):
                inside = True
                yield raw
        except Exception as error:
            answer = translate(error, connecting=not inside)
            if answer is None:
                raise
            raise answer from error

    async def _run(self, call: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """One statement: on the transaction's connection inside `transaction()`, else on a pooled one."""
        connected = False
        try:
            current = _TRANSACTION.get()
            if current is not None and current[0] is self:
                connected = True
                return await call(current[1])
            async with self._acquire() as raw:
                connected = True
                return await call(raw)
        except Exception as error:
            answer = translate(error, connecting=not connected)
            if answer is None:
                raise
            raise answer from error

    async def fetch(self, sql: str, *args: Any) -> list[Record]:
        return await self._run(lambda raw: raw.fetch(sql, *args))

    async def fetchrow(self, sql: str, *args: Any) -> Record:
        return await self._run(lambda raw: raw.fetchrow(sql, *args))

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return await self._run(lambda raw: raw.fetchval(sql, *args))

    async def execute(self, sql: str, *args: Any) -> str:
        return await self._run(lambda raw: raw.execute(sql, *args))

    async def executemany(self, sql: str, args: list[tuple[Any, ...]]) -> None:
        await self._run(lambda raw: raw.executemany(sql, args))

    async def fetch_page(
        self, sql: str, count_sql: str, *args: Any, limit: int, offset: int
    ) -> tuple[list[Record], int]:
        """One page of `sql` (which selects `count(*) OVER () AS total`) and the total row count;
        `count_sql` (same arguments) answers the total only for a page past the end."""
        numbered = len(args)
        rows = await self.fetch(f"{sql} LIMIT ${numbered + 1} OFFSET ${numbered + 2}", *args, limit, offset)
        total = rows[0]["total"] if rows else await self.fetchval(count_sql, *args)
        return rows, int(total)

    def pool_usage(self) -> tuple[int, int]:
        """(open connections, connections in use) of the pool; (0, 0) before it is open."""
        pool = self._asyncpg_pool()
        if pool is None:
            return 0, 0
        size = int(pool.get_size())
        return size, size - int(pool.get_idle_size())

    async def ping(self) -> bool:
        try:
            return bool(await self.fetchval("SELECT 1") == 1)
        except ServiceUnavailable:
            return False
