"""What a worker knows of its replicas (service/replicas.py) and how service/db.py routes reads with it,
without a real replica: a read URL nobody answers, and one that is the primary itself (not a standby).
The streaming replica itself is tests/test_replication.py (make test-replicas)."""

from __future__ import annotations

import time

import pytest

from service import revisions
from service.db import Database
from service.replicas import NEVER, PrimaryHistory, Replica, describe, sample_interval
from tests.test_outage import closed_port


def test_a_replica_that_replayed_the_newest_sample_is_fresh_as_of_it() -> None:
    history = PrimaryHistory()
    history.add(10.0, 100)
    history.add(10.5, 100)  # idle primary: the position does not move
    history.add(11.0, 250)
    assert history.fresh_as_of(250) == 11.0
    assert history.fresh_as_of(100) == 10.5  # everything up to 10.5, not what came at 11.0
    assert history.fresh_as_of(99) == NEVER


def test_the_history_forgets_old_samples() -> None:
    history = PrimaryHistory()
    history.add(0.0, 1)
    history.add(30.0, 2)
    assert history.fresh_as_of(1) == NEVER


def test_lag_grows_until_the_replica_answers_again() -> None:
    replica = Replica(name="replica-1", retry_seconds=5)
    now = time.monotonic()
    assert not replica.up(now)  # never sampled: not used
    replica.answered(500, fresh_as_of=now - 0.02)
    assert replica.up(now)
    assert 19 < replica.lag_ms(now) < 21
    assert replica.lag_ms(now + 1) > 1000


def test_a_tripped_replica_is_out_until_its_time_is_up() -> None:
    replica = Replica(name="replica-1", retry_seconds=5)
    replica.answered(500, fresh_as_of=time.monotonic())
    replica.trip("ConnectionRefusedError: refused")
    assert not replica.up(time.monotonic())
    assert describe(replica, time.monotonic()) == {
        "name": "replica-1",
        "up": False,
        "lagMs": None,
        "reason": "ConnectionRefusedError: refused",
    }
    replica.answered(400, fresh_as_of=time.monotonic())  # after a restart it may have replayed less
    assert replica.replayed == 400
    assert replica.up(time.monotonic())


def test_a_read_never_lowers_what_the_sampler_saw() -> None:
    replica = Replica(name="replica-1", retry_seconds=5)
    replica.answered(500, fresh_as_of=time.monotonic())
    replica.has_replayed(400)
    assert replica.replayed == 500


@pytest.mark.parametrize(("bound", "seconds"), [(100, 0.025), (0, 0.01), (20, 0.01), (60_000, 1.0)])
def test_the_sampler_runs_four_times_per_lag_bound(bound: int, seconds: float) -> None:
    assert sample_interval(bound) == seconds


async def test_a_replica_nobody_answers_is_taken_out_and_reads_go_to_the_primary(database_url: str) -> None:
    db = Database(database_url, read_urls=[f"postgresql://postgres@127.0.0.1:{closed_port()}/x"])
    await db.connect()
    try:
        await db.sample_once()
        (replica,) = db.replicas
        assert not replica.up(time.monotonic())
        assert replica.down_reason is not None
        with db.reading():
            assert await db.fetchval("SELECT 1") == 1
    finally:
        await db.disconnect()


async def test_a_read_that_fails_on_the_replica_runs_again_on_the_primary(database_url: str) -> None:
    db = Database(database_url, read_urls=[f"postgresql://postgres@127.0.0.1:{closed_port()}/x"])
    await db.connect()
    try:
        (replica,) = db.replicas
        replica.answered(1 << 40, fresh_as_of=time.monotonic() + 60)  # looks perfect, is not there
        with db.reading():
            assert await db.fetchval("SELECT pg_is_in_recovery()") is False  # the primary answered
        assert not replica.up(time.monotonic())  # and the breaker is open
    finally:
        await db.disconnect()


async def test_a_read_url_that_is_not_a_standby_is_not_used(database_url: str) -> None:
    db = Database(database_url, read_urls=[database_url])
    await db.connect()
    try:
        await db.sample_once()
        (replica,) = db.replicas
        assert replica.down_reason == "not a standby (pg_is_in_recovery() is false)"
    finally:
        await db.disconnect()


async def test_without_replicas_a_read_is_the_primary_s(database_url: str) -> None:
    db = Database(database_url)
    await db.connect()
    try:
        with db.reading(revisions.parse("FFFFFFFFFFFF")):  # further than the primary: still answered
            assert await db.fetchval("SELECT 1") == 1
    finally:
        await db.disconnect()
