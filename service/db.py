"""The database: the primary's pool and one per streaming replica (`DATABASE_READ_URLS`), each opened
and closed by `databases`; every statement borrows a connection through `databases`' public
`connection()` and runs on asyncpg's own (`raw_connection`), which prepares and caches statements.

Statements go to the primary, except inside `reading()` (every GET of the API runs in it): there they go
to a replica that is fresh enough (SPEC §12), and back to the primary when none is or the replica fails.
This is also the one place where driver failures become errors."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from contextvars import ContextVar
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
import databases

from service import messages, revisions
from service.errors import ApiError, BadRequest, ServiceUnavailable
from service.replicas import PrimaryHistory, Replica, sample_interval

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
    if isinstance(error, TimeoutError) and not connecting:  # asyncpg's command_timeout (it cancels)
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
# Inside `reading()`: the revision the reader asked for (0: none), else None.
_READING: ContextVar[int | None] = ContextVar("service.db.reading", default=None)

# A statement that failed on a replica runs again on the primary when the replica is away or hung (no
# connection, a dropped one, no answer within the timeout: these also take it out for a while, the
# circuit breaker), overloaded (53), refused a write (25006), was cancelled by recovery (40001) or ran
# past the statement timeout (57014): no read fails because of a replica while the primary is up.
RETRY_ON_PRIMARY_STATES = (*UNAVAILABLE_STATES, "40001", "57014")
REPLICA_DOWN_STATES = ("08", "57P")
REPLICA_CONNECT_TIMEOUT_SECONDS = 2.0
REPLICA_PROBE_TIMEOUT_SECONDS = 1.0
# WAL positions as numbers (bytes since the start of the WAL).
PRIMARY_POSITION = "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint"
# After a commit: the insert position is past the commit record even with synchronous_commit off.
COMMITTED_POSITION = "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::bigint"
# Null on a server that is not in recovery: a primary started after a crash (or from a base backup)
# keeps the last position its recovery replayed, so pg_last_wal_replay_lsn() alone does not tell.
REPLAY_POSITION = (
    "SELECT CASE WHEN pg_is_in_recovery() THEN pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')::bigint END"
)


# The service's statements read and write a page of rows by index: compiling one (PostgreSQL's JIT, for
# any plan whose estimated cost passes jit_above_cost, which a just-grown table's statistics or a large
# log can give) took 10 to 20 ms, against well under a millisecond to run it. (Through a transaction-
# pooling pgbouncer no startup setting is carried; the hottest functions turn it off themselves.)
NO_JIT = {"jit": "off"}


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


class Unreached(Exception):
    """No connection could be taken from a pool; `error` says why."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def _state(error: BaseException) -> str:
    return str(getattr(error, "sqlstate", "") or "")


class Pool:
    """One server's connections, opened and closed by `databases`.

    Through pgbouncer in transaction pooling mode (`pgbouncer=True`) a server connection is another
    client's after each transaction, so nothing may live in the session: no startup parameters but
    application_name (pgbouncer refuses `statement_timeout` there), no prepared-statement cache
    (asyncpg then parses each statement again: its measured cost is in README). The statement timeout
    is then asyncpg's own `command_timeout`, which cancels the statement on the server (pgbouncer
    forwards the cancel request) and is answered as a statement timeout is."""

    def __init__(
        self,
        url: str,
        *,
        min_size: int,
        max_size: int,
        statement_timeout_ms: int,
        pgbouncer: bool = False,
        connect_timeout: float = 60.0,
        session: dict[str, str] | None = None,
    ) -> None:
        """`session`: more settings for every pooled session (e.g. `relations.notify`, schema.sql); a
        transaction-pooling pgbouncer carries no startup settings, so there they are left out."""
        plain_url, options = split_url(url)
        settings = {"application_name": "relations"}
        self.statement_timeout_ms = statement_timeout_ms
        if pgbouncer:
            options["statement_cache_size"] = 0
            command_timeout = statement_timeout_ms / 1000
        else:
            settings["statement_timeout"] = str(statement_timeout_ms)
            settings["idle_in_transaction_session_timeout"] = str(max(statement_timeout_ms * 2, 10000))
            settings.update(NO_JIT)
            command_timeout = max(statement_timeout_ms / 1000 * 2, 10)
            settings.update(session or {})
        self.open_connections = 0
        self.in_use = 0
        self._database = databases.Database(
            plain_url,
            min_size=min_size,
            max_size=max_size,
            reset=_keep_session,
            init=self._opened,
            command_timeout=command_timeout,
            timeout=connect_timeout,
            server_settings=settings,
            **options,
        )

    async def _opened(self, connection: asyncpg.Connection) -> None:
        self.open_connections += 1
        connection.add_termination_listener(self._closed)

    def _closed(self, connection: asyncpg.Connection) -> None:
        self.open_connections -= 1

    async def open(self) -> None:
        await self._database.connect()

    async def close(self) -> None:
        if self._database.is_connected:
            await self._database.disconnect()

    def connection(self) -> Held:
        """`async with pool.connection() as raw:` asyncpg's connection for the block, the caller's own
        (`Unreached` when none can be had; failures inside the block as they are)."""
        return Held(self)

    async def run(self, call: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """`call` on a connection of this pool."""
        async with Lent(self) as raw:
            return await call(raw)


class Lent:
    """A connection lent by `databases`' public `connection()` (entered and left as the async context
    manager it is), counted as in use. A class rather than a generator: it is on every statement's path."""

    __slots__ = ("_lent", "_pool")

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def __aenter__(self) -> asyncpg.Connection:
        database = self._pool._database
        if not database.is_connected:
            raise Unreached(ServiceUnavailable())
        self._lent = database.connection()
        try:
            await self._lent.__aenter__()
        except Exception as error:
            raise Unreached(error) from error
        self._pool.in_use += 1
        return self._lent.raw_connection

    async def __aexit__(self, *exc: Any) -> None:
        self._pool.in_use -= 1
        await self._lent.__aexit__(*exc)


class Held:
    """A connection for a block, lent to a task of its own that holds it until the block ends.
    `databases` lends one connection per task: a block in which the same task also runs statements of
    its own (a test client serving requests in the test's task while an export is open) must not be
    handed the block's connection for them."""

    __slots__ = ("_done", "_given", "_holder", "_pool")

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def __aenter__(self) -> asyncpg.Connection:
        self._given: asyncio.Future[asyncpg.Connection] = asyncio.get_running_loop().create_future()
        self._done = asyncio.Event()
        self._holder = asyncio.create_task(self._hold())
        try:
            return await self._given
        except BaseException:
            self._holder.cancel()
            raise

    async def _hold(self) -> None:
        try:
            async with Lent(self._pool) as raw:
                self._given.set_result(raw)
                await self._done.wait()
        except BaseException as error:
            if self._given.done():
                raise
            self._given.set_exception(error)

    async def __aexit__(self, *exc: Any) -> None:
        self._done.set()
        await self._holder


def _answer(error: Exception) -> Exception:
    """What a caller of Database sees for a driver failure (the failure itself when it is a bug)."""
    if isinstance(error, Unreached):
        if isinstance(error.error, ApiError):
            return error.error
        return translate(error.error, connecting=True) or error.error  # type: ignore[return-value]
    return translate(error, connecting=False) or error


class Reading:
    """`with db.reading(revision):` — the statements of the block are reads (see Database.reading)."""

    __slots__ = ("_revision", "_token")

    def __init__(self, revision: int | None) -> None:
        self._revision = revision or 0

    def __enter__(self) -> None:
        self._token = _READING.set(self._revision)

    def __exit__(self, *exc: object) -> None:
        _READING.reset(self._token)


class Database:
    """The primary and its replicas. `fetch`, `fetchrow`, `fetchval`, `execute` run one statement;
    `transaction()` groups statements on one primary connection; `reading()` marks reads."""

    def __init__(
        self,
        url: str,
        *,
        read_urls: Sequence[str] = (),
        min_size: int = 2,
        max_size: int = 10,
        statement_timeout_ms: int = 5000,
        pgbouncer: bool = False,
        max_lag_ms: int = 100,
        replica_retry_seconds: float = 5.0,
        listen_url: str | None = None,
        session: dict[str, str] | None = None,
    ) -> None:
        self.url = url
        # LISTEN lives in a session: never through a transaction-pooling pgbouncer.
        self.listen_url = listen_url or url
        self.max_lag_ms = max_lag_ms
        self.primary = Pool(
            url,
            min_size=min_size,
            max_size=max_size,
            statement_timeout_ms=statement_timeout_ms,
            pgbouncer=pgbouncer,
            session=session,
        )
        # Replica pools start empty: a replica that is down at start-up must not stop the worker.
        self._replicas = [
            (
                Replica(name=f"replica-{number}", retry_seconds=replica_retry_seconds),
                Pool(
                    read_url,
                    min_size=0,
                    max_size=max_size,
                    statement_timeout_ms=statement_timeout_ms,
                    pgbouncer=pgbouncer,
                    connect_timeout=REPLICA_CONNECT_TIMEOUT_SECONDS,
                ),
            )
            for number, read_url in enumerate(read_urls, start=1)
        ]
        # The newest revision this worker answered a write with: its own reads see at least that.
        self.own_revision = 0
        self._clock = revisions.CommitClock(self._committed_position)
        self._history = PrimaryHistory()
        self._turn = itertools.count()

    @property
    def replicas(self) -> list[Replica]:
        return [replica for replica, _ in self._replicas]

    async def connect(self) -> None:
        """Open the pools (start-up waits for a primary that is not there yet: app.start_database)."""
        await self.primary.open()
        for _, pool in self._replicas:
            await pool.open()

    async def disconnect(self) -> None:
        for _, pool in self._replicas:
            await pool.close()
        await self.primary.close()

    def reading(self, min_revision: int | None = None) -> Reading:
        """Statements in the block are reads: each goes to a replica that has replayed `min_revision`
        and this worker's own writes, and, without `min_revision`, is less than `max_lag_ms` behind;
        else (or when the replica fails) to the primary. Transactions stay on the primary. Every GET of
        the API runs in one (endpoint.api_route); a response streamed after its handler returned (a
        feed, an export) enters one itself: `with ctx.db.reading(ctx.min_revision):`."""
        return Reading(min_revision)

    async def dedicated_connection(self, *, name: str = "relations") -> asyncpg.Connection:
        """A connection of its own, outside the pool, for a session that keeps it (the change feed's
        LISTEN), named `name` in pg_stat_activity, to `listen_url` (never through a transaction-pooling
        pgbouncer); the caller closes it. Driver failures are raised as they are: its owner reconnects."""
        plain_url, options = split_url(self.listen_url)
        settings = {
            "application_name": name,
            "statement_timeout": str(self.primary.statement_timeout_ms),
            **NO_JIT,
        }
        return await asyncpg.connect(plain_url, server_settings=settings, **options)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """All queries of this task inside the block share one primary connection and one transaction
        (a savepoint when nested)."""
        try:
            current = _TRANSACTION.get()
            if current is not None and current[0] is self:
                async with current[1].transaction():
                    yield
                return
            async with Lent(self.primary) as raw, raw.transaction():
                token = _TRANSACTION.set((self, raw))
                try:
                    yield
                finally:
                    _TRANSACTION.reset(token)
        except Exception as error:
            answer = _answer(error)
            if answer is error:
                raise
            raise answer from error

    @asynccontextmanager
    async def dedicated(
        self, *, isolation: str = "read_committed", readonly: bool = False
    ) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection of the caller's own inside a transaction, for what needs asyncpg's own
        API (the bulk routes: COPY into a staging table, a cursor over a snapshot). The block's
        statements go to that connection only; driver failures become errors as everywhere else.
        A read-only one inside `reading()` (the export) is lent by a replica that is fresh enough, as a
        statement would be (the primary's when none is, or when the replica cannot lend one); once the
        block has started, a failure is the caller's, as on the primary."""
        try:
            async with AsyncExitStack() as stack:
                raw = await self._lend(stack, read=readonly and _READING.get() is not None)
                await stack.enter_async_context(raw.transaction(isolation=isolation, readonly=readonly))
                yield raw
        except Exception as error:
            answer = _answer(error)
            if answer is error:
                raise
            raise answer from error

    async def _lend(self, stack: AsyncExitStack, *, read: bool) -> asyncpg.Connection:
        floor = _READING.get()
        if read and floor is not None and self._replicas:
            chosen = await self._replica_for(floor)
            if chosen is not None:
                try:
                    lent: asyncpg.Connection = await stack.enter_async_context(chosen[1].connection())
                    return lent
                except Unreached as error:
                    self._retry_on_primary(chosen[0], error)  # takes it out
        primary: asyncpg.Connection = await stack.enter_async_context(self.primary.connection())
        return primary

    async def _run(self, call: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """One statement: on the transaction's connection inside `transaction()`, on a replica inside
        `reading()` when one will do, else on the primary."""
        try:
            current = _TRANSACTION.get()
            if current is not None and current[0] is self:
                return await call(current[1])
            floor = _READING.get()
            if floor is not None and self._replicas:
                chosen = await self._replica_for(floor)
                if chosen is not None:
                    try:
                        return await chosen[1].run(call)
                    except Exception as error:
                        if not self._retry_on_primary(chosen[0], error):
                            raise
            return await self.primary.run(call)
        except Exception as error:
            answer = _answer(error)
            if answer is error:
                raise
            raise answer from error

    async def _replica_for(self, min_revision: int) -> tuple[Replica, Pool] | None:
        now = time.monotonic()
        floor = max(min_revision, self.own_revision)
        count = len(self._replicas)
        start = next(self._turn) % count
        for offset in range(count):
            replica, pool = self._replicas[(start + offset) % count]
            if not replica.up(now):
                continue
            if not min_revision and replica.lag_ms(now) >= self.max_lag_ms:
                continue
            if replica.replayed >= floor or await self._caught_up(replica, pool, floor):
                return replica, pool
        return None

    async def _caught_up(self, replica: Replica, pool: Pool, floor: int) -> bool:
        """Ask the replica now (one short round trip) whether it has replayed `floor` yet."""
        replayed = await self._replay_position(replica, pool)
        if replayed is None:
            return False
        replica.has_replayed(replayed)
        return replayed >= floor

    async def _replay_position(self, replica: Replica, pool: Pool) -> int | None:
        try:
            position = await asyncio.wait_for(
                pool.run(lambda raw: raw.fetchval(REPLAY_POSITION)), REPLICA_PROBE_TIMEOUT_SECONDS
            )
        except Exception as error:
            cause = error.error if isinstance(error, Unreached) else error
            replica.trip(f"{type(cause).__name__}: {cause}")
            return None
        if position is None:
            replica.trip("not a standby (pg_is_in_recovery() is false)")
            return None
        return int(position)

    def _retry_on_primary(self, replica: Replica, error: Exception) -> bool:
        cause = error.error if isinstance(error, Unreached) else error
        state = _state(cause)
        away = isinstance(error, Unreached) or state.startswith(REPLICA_DOWN_STATES)
        away = away or isinstance(cause, UNAVAILABLE_ERRORS)
        if away:
            replica.trip(f"{type(cause).__name__}: {cause}")
            return True
        return state.startswith(RETRY_ON_PRIMARY_STATES)

    async def sample_replicas(self) -> None:
        """Background task of each worker with replicas: their replay positions and lag, every quarter
        of the lag bound; a replica that was taken out is tried again once its time is up."""
        interval = sample_interval(self.max_lag_ms)
        while True:
            await self.sample_once()
            await asyncio.sleep(interval)

    async def sample_once(self) -> None:
        at = time.monotonic()
        try:
            position = await self.primary.run(lambda raw: raw.fetchval(PRIMARY_POSITION))
            self._history.add(at, int(position))
        except Exception as error:  # primary away: the replicas' lag grows until it is back
            log.debug("cannot sample the primary's WAL position: %s", error)

        async def probe(replica: Replica, pool: Pool) -> None:
            replayed = await self._replay_position(replica, pool)
            if replayed is not None:
                replica.answered(replayed, self._history.fresh_as_of(replayed))

        now = time.monotonic()
        await asyncio.gather(
            *(probe(replica, pool) for replica, pool in self._replicas if now >= replica.down_until)
        )

    async def _committed_position(self) -> int:
        return int(await self.primary.run(lambda raw: raw.fetchval(COMMITTED_POSITION)))

    async def committed(self) -> int | None:
        """The revision of this task's writes, once they have committed (None, logged, if the primary
        did not answer: the write itself has happened)."""
        try:
            position = await self._clock.after_commit()
        except Exception as error:
            log.warning("no revision for a committed write: %s", error)
            return None
        self.own_revision = max(self.own_revision, position)
        return position

    async def revision(self) -> int:
        """The primary's WAL position now: read with `reading(revision)` to see everything committed
        before this call (e.g. after a NOTIFY)."""
        try:
            return await self._committed_position()
        except Exception as error:
            answer = _answer(error)
            if answer is error:
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

    def pool_usage(self) -> tuple[int, int]:
        """(open connections, connections in use) over the primary's and the replicas' pools."""
        pools = [self.primary, *(pool for _, pool in self._replicas)]
        return sum(pool.open_connections for pool in pools), sum(pool.in_use for pool in pools)

    async def ping(self) -> bool:
        """The primary answers (replicas: `replicas`, which never fail readiness)."""
        try:
            return bool(await self.primary.run(lambda raw: raw.fetchval("SELECT 1")) == 1)
        except Exception as error:
            if _answer(error) is error:
                raise
            return False
