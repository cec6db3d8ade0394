"""service/db.py: what every session of the service is set up with."""

from __future__ import annotations

import os

import pytest

from service.db import Database

THROUGH_PGBOUNCER = os.environ.get("RELATIONS_PGBOUNCER") == "transaction"


@pytest.mark.skipif(THROUGH_PGBOUNCER, reason="a transaction-pooling pgbouncer carries no startup setting")
async def test_no_session_of_the_service_compiles_its_plans(db: Database) -> None:
    """JIT off in pooled sessions and in a dedicated one (the change feed's): compiling a plan costs
    10 to 20 ms, far more than the service's statements run."""
    assert await db.fetchval("SHOW jit") == "off"
    connection = await db.dedicated_connection(name="relations-test")
    try:
        assert await connection.fetchval("SHOW jit") == "off"
    finally:
        await connection.close()


async def test_the_change_log_s_hot_functions_turn_jit_off_themselves(db: Database) -> None:
    """Also through pgbouncer, where the session keeps no setting: the feed's page and the cache's poll."""
    rows = await db.fetch(
        "SELECT proname, proconfig FROM pg_proc"
        " WHERE proname IN ('relation_change_page', 'relation_cache_poll') ORDER BY proname"
    )
    assert [row["proname"] for row in rows] == ["relation_cache_poll", "relation_change_page"]
    assert all("jit=off" in row["proconfig"] for row in rows)
