"""service/rate_limits/leases.py without a database: workers sharing one bucket through a stand-in for
`rate_lease` (the same arithmetic, on a simulated clock)."""

from __future__ import annotations

import math

import pytest

from service.rate_limits.leases import LEASE_SECONDS, Leases, slice_size
from service.rate_limits.policy import RatePolicy, TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class SharedBucket:
    """What `rate_lease` does, in memory: one bucket per credential, counting the calls."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.buckets: dict[str, TokenBucket] = {}
        self.calls = 0
        self.given_back = 0

    async def lease(
        self, credential: str, policy: RatePolicy, want: int, give_back: int
    ) -> tuple[int, float]:
        self.calls += 1
        self.given_back += give_back
        bucket = self.buckets.setdefault(credential, TokenBucket.full(policy, self.clock.now))
        bucket.refill(self.clock.now)
        bucket.tokens = min(float(policy.burst), bucket.tokens + give_back)
        granted = bucket.take(want, self.clock.now)
        return granted, bucket.tokens


POLICY = RatePolicy(100, 100)


def test_slices_are_a_tenth_of_a_second_and_at_most_a_quarter_of_the_burst() -> None:
    assert slice_size(RatePolicy(100, 100)) == 10
    assert slice_size(RatePolicy(100, 20)) == 5
    assert slice_size(RatePolicy(1, 1)) == 1
    assert slice_size(RatePolicy(1_000_000, 1_000_000)) == 100_000


async def test_one_worker_admits_the_burst_then_the_rate() -> None:
    clock = Clock()
    shared = SharedBucket(clock)
    worker = Leases(shared.lease, clock=clock)
    verdicts = [await worker.admit("key:a", POLICY) for _ in range(150)]
    assert sum(v.admitted for v in verdicts) == 100
    refused = verdicts[-1]
    assert not refused.admitted and refused.remaining == 0 and refused.retry_after == 1
    clock.now = 0.5
    assert sum([(await worker.admit("key:a", POLICY)).admitted for _ in range(100)]) == 50


async def test_a_flood_over_budget_costs_no_query_per_request() -> None:
    clock = Clock()
    shared = SharedBucket(clock)
    worker = Leases(shared.lease, clock=clock)
    for _ in range(10_000):
        await worker.admit("key:a", POLICY)
    # The burst in slices of 10, and one refusal: then refused locally until a slice refills.
    assert shared.calls <= 100 // slice_size(POLICY) + 2


async def test_credentials_have_budgets_of_their_own() -> None:
    clock = Clock()
    worker = Leases(SharedBucket(clock).lease, clock=clock)
    for _ in range(100):
        assert (await worker.admit("key:a", POLICY)).admitted
    assert not (await worker.admit("key:a", POLICY)).admitted
    assert (await worker.admit("key:b", POLICY)).admitted


async def test_unspent_tokens_of_an_expired_lease_go_back() -> None:
    clock = Clock()
    shared = SharedBucket(clock)
    worker = Leases(shared.lease, clock=clock)
    await worker.admit("key:a", POLICY)  # leases a slice of 10, spends 1
    clock.now = LEASE_SECONDS + 0.01
    await worker.admit("key:a", POLICY)
    assert shared.given_back == slice_size(POLICY) - 1


@pytest.mark.parametrize("workers", [2, 4])
async def test_workers_sharing_a_bucket_hold_the_budget_within_20_percent(workers: int) -> None:
    """Every worker hammered (one request per millisecond each) for ten simulated seconds."""
    clock = Clock()
    shared = SharedBucket(clock)
    pool = [Leases(shared.lease, clock=clock) for _ in range(workers)]
    policy = RatePolicy(200, 200)
    seconds, step = 10.0, 0.001
    admitted = requests = 0
    for tick in range(math.ceil(seconds / step)):
        clock.now = tick * step
        for worker in pool:
            requests += 1
            admitted += (await worker.admit("key:a", policy)).admitted
    budget = policy.burst + policy.rate * seconds
    assert admitted <= budget  # never over: every admitted request was leased first
    assert admitted >= 0.8 * budget
    assert shared.calls < requests / 20  # one query per slice, not per request


async def test_remaining_and_reset_follow_the_bucket() -> None:
    clock = Clock()
    worker = Leases(SharedBucket(clock).lease, clock=clock)
    policy = RatePolicy(10, 20)
    first = await worker.admit("key:a", policy)
    assert first.admitted and first.remaining == 19 and first.reset == 1
    for _ in range(19):
        last = await worker.admit("key:a", policy)
    assert last.remaining == 0 and last.reset == 2
