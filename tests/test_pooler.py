"""RELATIONS_PGBOUNCER=transaction: what the service turns off for a transaction-pooling pgbouncer, and
what it still guarantees. `make test-pgbouncer` runs this file through pgbouncer as well."""

from __future__ import annotations

import os

import pytest

from service import messages
from service.app import create_app
from service.db import Database
from service.errors import ServiceUnavailable
from service.settings import Settings

THROUGH_PGBOUNCER = os.environ.get("RELATIONS_PGBOUNCER") == "transaction"


async def test_the_statement_timeout_still_holds(database_url: str) -> None:
    """No server-side statement_timeout at startup: asyncpg's own timeout cancels the statement, and the
    answer is the same 503."""
    settings = Settings(database_url=database_url, pgbouncer="transaction", statement_timeout_ms=200)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        db: Database = app.state.db
        with pytest.raises(ServiceUnavailable) as timed_out:
            await db.fetchval("SELECT pg_sleep(5)")
        assert timed_out.value.message == messages.DATABASE_TIMEOUT
        assert await db.fetchval("SELECT 1") == 1  # the connection is usable again


async def test_nothing_is_kept_in_the_session(database_url: str) -> None:
    settings = Settings(database_url=database_url, pgbouncer="transaction")
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        db: Database = app.state.db
        # The same statement many times: with a prepared-statement cache, pgbouncer would hand later
        # executions a server connection that never prepared it.
        for number in range(50):
            assert await db.fetchval("SELECT $1::int + 1", number) == number + 1
        if not THROUGH_PGBOUNCER:  # directly: the server shows no statement timeout from startup
            assert await db.fetchval("SHOW statement_timeout") == "0"
            assert await db.fetchval("SELECT count(*) FROM pg_prepared_statements") == 0


@pytest.mark.skipif(not THROUGH_PGBOUNCER, reason="needs pgbouncer in front (make test-pgbouncer)")
async def test_without_the_setting_start_up_names_it(database_url: str) -> None:
    app = create_app(Settings(database_url=database_url, startup_wait_seconds=0))
    with pytest.raises(RuntimeError, match="RELATIONS_PGBOUNCER=transaction"):
        async with app.router.lifespan_context(app):
            pass


def test_an_unknown_pooling_mode_fails_at_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELATIONS_PGBOUNCER", "session")
    with pytest.raises(ValueError, match="RELATIONS_PGBOUNCER"):
        Settings.from_env()
    monkeypatch.setenv("RELATIONS_PGBOUNCER", "Transaction")
    assert Settings.from_env().pgbouncer == "transaction"
