"""SQL of the shared budgets: `rate_lease` (schema.sql) refills a credential's bucket by elapsed time,
takes a slice of it and takes back what a worker did not spend, in one round trip."""

from __future__ import annotations

from service.db import Database
from service.rate_limits.policy import RatePolicy

# A write although it reads as a SELECT (the function updates the bucket): it must run on the primary,
# never on a read replica.
LEASE = "SELECT granted, tokens FROM rate_lease($1, $2, $3, $4, $5)"
# A bucket idle this long is full again for any budget whose burst is at most 3600 x its rate;
# dropping it is then the same as keeping it.
PRUNE = "DELETE FROM rate_bucket WHERE updated_at < now() - interval '1 hour'"


async def lease(
    db: Database, *, credential: str, policy: RatePolicy, want: int, give_back: int
) -> tuple[int, float]:
    """(tokens granted, tokens left in the shared bucket)."""
    row = await db.fetchrow(LEASE, credential, policy.rate, policy.burst, want, give_back)
    assert row is not None
    return int(row["granted"]), float(row["tokens"])


async def prune(db: Database) -> None:
    await db.execute(PRUNE)
