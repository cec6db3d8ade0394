"""A budget: `<n>/s burst <m>` — a token bucket of `m` tokens refilled at `n` per second — and the
bucket's arithmetic, written once and used by the worker-local limits and the tests."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

# `50/s burst 100`; spaces are free, the unit is always per second.
_POLICY = re.compile(r" *([0-9]{1,9}) */ *s +burst +([0-9]{1,9}) *", re.IGNORECASE)


class InvalidPolicy(ValueError):
    """A budget that cannot be read; the message says what the form is."""


@dataclass(frozen=True)
class RatePolicy:
    rate: int  # tokens per second
    burst: int  # the bucket's size

    def __str__(self) -> str:
        return f"{self.rate}/s burst {self.burst}"


def parse_policy(text: str) -> RatePolicy:
    """`"50/s burst 100"` → RatePolicy(50, 100). Both numbers at least 1, the burst at least the rate
    (a bucket smaller than a second's refill would refuse requests sent in the same instant)."""
    found = _POLICY.fullmatch(text)
    if found is None:
        raise InvalidPolicy(f"{text!r} is not of the form '<n>/s burst <m>' (e.g. '50/s burst 100')")
    rate, burst = int(found.group(1)), int(found.group(2))
    if rate < 1:
        raise InvalidPolicy(f"{text!r}: the rate must be at least 1 per second")
    if burst < rate:
        raise InvalidPolicy(f"{text!r}: the burst must be at least the rate ({rate})")
    return RatePolicy(rate, burst)


@dataclass
class TokenBucket:
    """`tokens` at time `at` (seconds, any monotonic clock); refilled by elapsed time, capped at burst."""

    policy: RatePolicy
    tokens: float
    at: float

    @classmethod
    def full(cls, policy: RatePolicy, now: float) -> TokenBucket:
        return cls(policy, float(policy.burst), now)

    def refill(self, now: float) -> None:
        if now > self.at:
            self.tokens = min(float(self.policy.burst), self.tokens + (now - self.at) * self.policy.rate)
            self.at = now

    def take(self, want: int, now: float) -> int:
        """Take up to `want` whole tokens; returns how many were taken."""
        self.refill(now)
        granted = min(want, math.floor(self.tokens))
        self.tokens -= granted
        return max(granted, 0)

    def wait_for(self, tokens: float) -> float:
        """Seconds until the bucket holds `tokens` (0 when it does already)."""
        return max(0.0, (min(tokens, self.policy.burst) - self.tokens) / self.policy.rate)
