"""The rate-limit step of a request (SPEC §13): after credentials, project and scope, a credential's
request spends a token of its budget (429 when there is none); a failed authentication spends one of
its client address's, and an address with none left is refused unless its credential can be checked
without the database (a key or project this worker has cached): a flood never reaches the database,
while a valid client behind the same address keeps working.
With a limit set, the answer carries the `RateLimit-Policy` and `RateLimit` fields of
draft-ietf-httpapi-ratelimit-headers-10 (structured fields), appended by `service.middleware.Observe`
from `scope["state"]["rate_limit"]`."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Mapping

from starlette.requests import Request

from service import messages
from service.auth import Authenticator, LookupNeeded, Principal
from service.db import Database
from service.errors import ApiError, TooManyRequests, Unauthorized
from service.rate_limits import queries
from service.rate_limits.leases import Leases, Verdict
from service.rate_limits.policy import RatePolicy, TokenBucket

log = logging.getLogger("service.rate_limits")

CREDENTIAL_POLICY = "credential"
FAILURES_POLICY = "auth-failures"
MAX_ADDRESSES = 10_000
PRUNE_EVERY_SECONDS = 600
FIELDS = "rate_limit"  # the key in scope["state"]


def fields(name: str, policy: RatePolicy, remaining: int, reset: int) -> list[tuple[bytes, bytes]]:
    """`RateLimit-Policy: "credential";q=50;w=1;burst=100` and `RateLimit: "credential";r=42;t=2`:
    q requests per w seconds, with `burst` (an extension parameter) the bucket's size; r what is left
    now, t the seconds until the bucket is full again."""
    return [
        (b"ratelimit-policy", f'"{name}";q={policy.rate};w=1;burst={policy.burst}'.encode()),
        (b"ratelimit", f'"{name}";r={remaining};t={reset}'.encode()),
    ]


class RateLimits:
    """`default`: RELATIONS_RATE_LIMIT (a key's own limit wins); `failures`: the per-address budget of
    failed authentications. Either may be None (no limit)."""

    def __init__(
        self,
        db: Database,
        *,
        default: RatePolicy | None,
        failures: RatePolicy | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.default = default
        self.failures = failures
        self._clock = clock
        self._leases = Leases(self._lease, clock=clock)
        self._addresses: dict[str, TokenBucket] = {}

    async def _lease(
        self, credential: str, policy: RatePolicy, want: int, give_back: int
    ) -> tuple[int, float]:
        return await queries.lease(
            self.db, credential=credential, policy=policy, want=want, give_back=give_back
        )

    async def authenticate(
        self, request: Request, authenticator: Authenticator, headers: Mapping[str, str]
    ) -> Principal:
        """The request's principal. From an address that has used up its failed authentications, only
        a credential the caches can confirm is accepted; anything else is 429, with no lookup."""
        policy = self.failures
        if policy is None:
            return await authenticator.authenticate(headers)
        client = request.scope.get("client")
        address = client[0] if client else ""
        now = self._clock()
        bucket = self._addresses.get(address)
        if bucket is not None:
            bucket.refill(now)
            if bucket.tokens < 1:
                try:
                    return await authenticator.authenticate(headers, offline=True)
                except (LookupNeeded, Unauthorized):
                    seconds = max(1, math.ceil(bucket.wait_for(1)))
                    self._stamp(request, FAILURES_POLICY, policy, bucket)
                    raise TooManyRequests(
                        messages.AUTH_FAILURES_LIMITED.format(seconds=seconds),
                        headers={"Retry-After": str(seconds)},
                    ) from None
        try:
            return await authenticator.authenticate(headers)
        except Unauthorized:
            if bucket is None:
                bucket = self._address_bucket(address, policy, now)
            bucket.take(1, now)
            self._stamp(request, FAILURES_POLICY, policy, bucket)
            raise

    async def admit(self, request: Request, principal: Principal) -> None:
        """Spend one token of the credential's budget; 429 with Retry-After when there is none."""
        policy = principal.rate_limit or self.default
        if policy is None:
            return
        verdict: Verdict = await self._leases.admit(principal.credential, policy)
        request.scope["state"][FIELDS] = fields(CREDENTIAL_POLICY, policy, verdict.remaining, verdict.reset)
        if not verdict.admitted:
            raise TooManyRequests(
                messages.RATE_LIMITED.format(policy=policy, seconds=verdict.retry_after),
                headers={"Retry-After": str(verdict.retry_after)},
            )

    def _address_bucket(self, address: str, policy: RatePolicy, now: float) -> TokenBucket:
        if len(self._addresses) >= MAX_ADDRESSES:
            # Forget the longest-known address: at worst it may fail `burst` more times.
            del self._addresses[next(iter(self._addresses))]
        bucket = self._addresses[address] = TokenBucket.full(policy, now)
        return bucket

    @staticmethod
    def _stamp(request: Request, name: str, policy: RatePolicy, bucket: TokenBucket) -> None:
        remaining = max(0, math.floor(bucket.tokens))
        reset = math.ceil(bucket.wait_for(policy.burst))
        request.scope.setdefault("state", {})[FIELDS] = fields(name, policy, remaining, reset)

    async def prune_forever(self) -> None:
        """Background task of each worker: drop shared buckets idle for an hour (they are full again)."""
        while True:
            await asyncio.sleep(PRUNE_EVERY_SECONDS)
            try:
                await queries.prune(self.db)
            except ApiError as error:  # database away: try again next round
                log.warning("could not prune rate-limit buckets: %s", error.message)
