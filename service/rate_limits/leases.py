"""Each worker serves a credential's requests from a slice of its budget leased from PostgreSQL, so
the budget holds across workers and machines with one query per slice, not per request.

A slice is about a tenth of a second of the budget. Every token a worker spends was taken from the
shared bucket first, so the service never admits more than the bucket allows; tokens a worker leased
but did not spend go back with its next lease (a lease is spent or handed back within
`LEASE_SECONDS`). So N workers hold back at most N slices (N x 0.1 s of budget) at any moment: over T
seconds the admitted count is the budget (rate x T + burst) less at most N x 0.1 x rate — within 20 %
for 2 workers from T = 1 s, within 2 % over 10 s. When the shared bucket is empty, the worker refuses
locally until a slice has refilled, so a flood over budget costs no query per request either."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from service.rate_limits.policy import RatePolicy

# Seconds of budget per slice, and how long a worker may keep unspent tokens of a slice.
SLICE_SECONDS = 0.1
LEASE_SECONDS = 1.0
MAX_CREDENTIALS = 100_000

# (credential, policy, want, give_back) → (granted, tokens left in the shared bucket)
LeaseCall = Callable[[str, RatePolicy, int, int], Awaitable[tuple[int, float]]]


def slice_size(policy: RatePolicy) -> int:
    """A tenth of a second of the rate, at most a quarter of the burst (so one worker never holds the
    whole burst), at least one token."""
    return max(1, min(math.ceil(policy.rate * SLICE_SECONDS), policy.burst // 4))


@dataclass
class Verdict:
    """The answer for one request: admitted or not, and what the RateLimit fields say."""

    admitted: bool
    remaining: int
    retry_after: int  # whole seconds, ≥ 1 when refused
    reset: int  # whole seconds until the bucket is full again


@dataclass
class Lease:
    tokens: int = 0  # leased, not yet spent
    expires: float = 0.0
    refused_until: float = 0.0  # the shared bucket was empty: refuse locally until then
    shared_tokens: float = 0.0  # the shared bucket after the last lease …
    shared_at: float = 0.0  # … and when


class Leases:
    """The worker's leases, one per credential that sent a request recently."""

    def __init__(self, lease: LeaseCall, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._lease = lease
        self._clock = clock
        self._leases: dict[str, Lease] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def admit(self, credential: str, policy: RatePolicy) -> Verdict:
        held = self._leases.get(credential)
        now = self._clock()
        if held is not None:
            if held.tokens > 0 and now < held.expires:
                held.tokens -= 1
                return self._verdict(held, policy, now, admitted=True)
            if now < held.refused_until:
                return self._verdict(held, policy, now, admitted=False)
        # One lease at a time per credential: requests that arrive meanwhile wait for it and then
        # spend from it, instead of each asking the database.
        lock = self._locks.get(credential)
        if lock is None:
            lock = self._locks[credential] = asyncio.Lock()
        async with lock:
            held = self._held(credential)
            now = self._clock()
            if held.tokens > 0 and now < held.expires:
                held.tokens -= 1
                return self._verdict(held, policy, now, admitted=True)
            if now < held.refused_until:
                return self._verdict(held, policy, now, admitted=False)
            want = slice_size(policy)
            give_back, held.tokens = held.tokens, 0  # unspent tokens of an expired lease go back
            granted, left = await self._lease(credential, policy, want, give_back)
            now = self._clock()
            held.tokens, held.expires = granted, now + LEASE_SECONDS
            held.shared_tokens, held.shared_at = left, now
            if granted == 0:
                # Ask again once a slice (or at least one token) has refilled.
                held.refused_until = now + max(want - left, 1 - left) / policy.rate
                return self._verdict(held, policy, now, admitted=False)
            held.refused_until = 0.0
            held.tokens -= 1
            return self._verdict(held, policy, now, admitted=True)

    def _held(self, credential: str) -> Lease:
        held = self._leases.get(credential)
        if held is None:
            if len(self._leases) >= MAX_CREDENTIALS:
                # Forget the oldest: at worst its unspent slice is lost (never over-admitted).
                oldest = next(iter(self._leases))
                del self._leases[oldest]
                self._locks.pop(oldest, None)
            held = self._leases[credential] = Lease()
        return held

    @staticmethod
    def _verdict(held: Lease, policy: RatePolicy, now: float, *, admitted: bool) -> Verdict:
        shared = min(float(policy.burst), held.shared_tokens + (now - held.shared_at) * policy.rate)
        remaining = max(0, min(policy.burst, held.tokens + math.floor(shared))) if admitted else 0
        reset = math.ceil((policy.burst - remaining) / policy.rate)
        retry_after = 0 if admitted else max(1, math.ceil(held.refused_until - now))
        return Verdict(admitted, remaining, retry_after, reset)
