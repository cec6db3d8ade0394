"""Streaming replicas (`DATABASE_READ_URLS`): how far each has replayed, how far behind it is, and the
circuit breaker that takes one out while it does not answer.

Each worker samples, every few milliseconds, the primary's WAL position and each replica's replay
position. A replica is `lag` behind when the newest primary sample it has replayed is that old: a
replica of an idle primary has replayed the unchanged position and is 0 behind, unlike
now() - pg_last_xact_replay_timestamp(), which grows while nothing is written."""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass, field

log = logging.getLogger("service.replicas")

# How long the sampled history reaches back: a replica further behind is simply "very late".
HISTORY_SECONDS = 10.0
PROBE_TIMEOUT_SECONDS = 1.0
NEVER = float("-inf")


@dataclass
class Replica:
    """What this worker knows of one replica. The sampler sets `replayed`; a read that asked the
    replica itself only raises it."""

    name: str
    retry_seconds: float
    replayed: int = 0
    fresh_as_of: float = NEVER  # monotonic time of the newest primary position it has replayed
    down_until: float = 0.0
    down_reason: str | None = None
    sampled: bool = False

    def up(self, now: float) -> bool:
        return self.sampled and now >= self.down_until

    def lag_ms(self, now: float) -> float:
        return (now - self.fresh_as_of) * 1000

    def has_replayed(self, position: int) -> None:
        self.replayed = max(self.replayed, position)

    def trip(self, reason: str) -> None:
        """Stop using it for `retry_seconds`; the sampler then tries it again."""
        if self.down_reason is None:
            log.warning("replica %s taken out for %.0f s: %s", self.name, self.retry_seconds, reason)
        self.down_until = time.monotonic() + self.retry_seconds
        self.down_reason = reason
        self.sampled = False

    def answered(self, replayed: int, fresh_as_of: float) -> None:
        if self.down_reason is not None:
            log.warning("replica %s is back", self.name)
        self.down_reason = None
        self.down_until = 0.0
        self.sampled = True
        # Assigned, not raised: a replica that restarted may have replayed less than before.
        self.replayed = replayed
        self.fresh_as_of = fresh_as_of


@dataclass
class PrimaryHistory:
    """Recent (time, WAL position) samples of the primary, oldest first."""

    samples: deque[tuple[float, int]] = field(default_factory=deque)

    def add(self, at: float, position: int) -> None:
        self.samples.append((at, position))
        while self.samples and self.samples[0][0] < at - HISTORY_SECONDS:
            self.samples.popleft()

    def fresh_as_of(self, replayed: int) -> float:
        """The time of the newest sample the replay position covers (NEVER: none of them)."""
        for at, position in reversed(self.samples):
            if position <= replayed:
                return at
        return NEVER


def sample_interval(max_lag_ms: int) -> float:
    """A quarter of the lag bound (so a paused replica is out within 1.25 times the bound), 10 ms to 1 s."""
    return min(max(max_lag_ms / 4000, 0.01), 1.0)


def describe(replica: Replica, now: float) -> dict[str, object]:
    """For /health/ready."""
    up = replica.up(now)
    lag = replica.lag_ms(now) if up and replica.fresh_as_of != NEVER else None
    return {
        "name": replica.name,
        "up": up,
        "lagMs": round(lag, 1) if lag is not None else None,
        **({"reason": replica.down_reason} if replica.down_reason else {}),
    }
