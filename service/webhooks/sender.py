"""Sending deliveries: any webhook process claims due deliveries from PostgreSQL (service/webhooks/queries.py:
`TURN`), POSTs each signed to its webhook's url, and records the outcome. 2xx is delivered; 410 fails
the delivery and disables the webhook; anything else, a timeout or a refused connection is retried
after an exponential backoff with jitter, until the last attempt fails the delivery.

Each attempt runs in a task of its own, under its own timeout, so a slow receiver holds only its own
slots (at most `concurrency` per webhook, across all processes) and never the API or other webhooks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from cryptography.exceptions import InvalidTag

from service.db import Database, Record
from service.settings import Settings
from service.webhooks import queries
from service.webhooks.client import AddressRefused, delivery_client
from service.webhooks.signing import SecretBox, signature_header

log = logging.getLogger("service.webhooks")

# Retry n (after the n-th failed attempt) waits base * 4^(n-1), at most base * 4320 (6 h at the default
# base of 5 s), plus up to 20% jitter: 5 s, 20 s, 80 s, 5m20, 21m20, 1h25, 5h41, 6 h, 6 h, 6 h, which
# with 11 attempts spans about 25.7 hours before a delivery is failed.
BACKOFF_FACTOR = 4
BACKOFF_CAP = 4320
JITTER = 0.2
# Attempts in flight per process, over all webhooks; webhooks locked per claim round.
WORKER_LIMIT = 256
WEBHOOKS_PER_CLAIM = 64
# A claim outlives the attempt's timeout by this much: no two attempts of one delivery overlap.
LEASE_MARGIN_SECONDS = 15.0
# While due deliveries exist that this process cannot claim (their webhooks' slots are full, or another
# process holds them), look again this often.
BUSY_RECHECK_SECONDS = 0.25
USER_AGENT = "relations-webhooks/1"
ANSWER_READ_BYTES = 64 * 1024


def retry_delay(attempts: int, *, base: float, jitter: float | None = None) -> float:
    """Seconds before the next attempt, after `attempts` failed ones."""
    steps: int = min(BACKOFF_FACTOR ** max(attempts - 1, 0), BACKOFF_CAP)
    spread = random.random() if jitter is None else jitter
    return float(base * steps * (1 + spread * JITTER))


@dataclass(frozen=True)
class Outcome:
    status: int | None
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class Sender:
    """One webhook process's delivery loop. `wake()` makes it look for due deliveries at once (the dispatcher
    calls it, and the delivery channel's NOTIFY); otherwise it sleeps until the next delivery is due,
    or `poll_seconds` at most."""

    def __init__(self, db: Database, settings: Settings, *, client: httpx.AsyncClient | None = None) -> None:
        if not settings.secret_key:
            raise ValueError("webhook delivery needs RELATIONS_SECRET_KEY")
        self.db = db
        self.box = SecretBox(settings.secret_key)
        self.timeout = settings.webhook_timeout_seconds
        self.base = settings.webhook_backoff_seconds
        self.max_attempts = settings.webhook_max_attempts
        self.concurrency = settings.webhook_concurrency
        self.poll = settings.webhook_poll_seconds
        self.lease = self.timeout + LEASE_MARGIN_SECONDS
        self.client = client or delivery_client(
            allow_private=settings.webhook_allow_private, timeout=self.timeout
        )
        self.token = uuid.uuid4()
        self._wake = asyncio.Event()
        self._attempts: set[asyncio.Task[None]] = set()
        # Outcomes not yet written: the next turn writes them, before it claims (each attempt's slot
        # stays taken until its outcome is written; attempts that end together share one turn).
        self._outcomes: list[tuple[Any, ...]] = []

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Until cancelled; then the deliveries it holds are handed back (see `close`)."""
        while True:
            self._wake.clear()
            try:
                if await self.turn():
                    continue
                pause = await self._pause()
            except Exception:
                log.exception("webhook sender: claiming failed; retrying in %ss", self.poll)
                pause = self.poll
            # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a cancellation that
            # meets its timeout, and this loop would never stop.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(pause):
                    await self._wake.wait()

    async def _pause(self) -> float:
        due = await queries.seconds_until_due(self.db)
        if due is None:
            return self.poll
        return min(max(due, BUSY_RECHECK_SECONDS if due <= 0 else 0.0), self.poll)

    async def turn(self, *, claim: bool = True) -> int:
        """One round trip: write the outcomes of the attempts that ended (their slots free), then (with
        `claim`, and room) claim what is due and start an attempt for each; returns how many started."""
        outcomes, self._outcomes = self._outcomes, []
        try:
            claimed = await queries.turn(
                self.db,
                token=self.token,
                outcomes=outcomes,
                per_webhook=self.concurrency if claim and len(self._attempts) < WORKER_LIMIT else 0,
                webhooks=WEBHOOKS_PER_CLAIM,
                lease_seconds=self.lease,
            )
        except Exception:
            self._outcomes[:0] = outcomes  # written by the next turn
            raise
        for row in claimed:
            task = asyncio.create_task(self._attempt(row))
            self._attempts.add(task)
            task.add_done_callback(self._attempt_done)
        return len(claimed)

    def _attempt_done(self, task: asyncio.Task[None]) -> None:
        self._attempts.discard(task)  # its slot frees once its outcome is written (which wakes the loop)

    async def _attempt(self, row: Record) -> None:
        try:
            outcome = await self.post(row)
            await self.record(row, outcome)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("webhook delivery %s: recording the attempt failed", row["id"])

    def secrets_of(self, row: Record) -> list[str]:
        """The webhook's secret, and the previous one while it still signs (24 h after a rotation)."""
        place = {"project": row["project"], "webhook_id": row["webhook_id"]}
        found = [self.box.open(row["secret"], **place)]
        if row["previous_secret"] is not None and row["previous_signs"]:
            found.append(self.box.open(row["previous_secret"], **place))
        return found

    async def post(self, row: Record) -> Outcome:
        body: str = row["body"]
        try:
            secrets_in_use = self.secrets_of(row)
        except InvalidTag:
            return Outcome(None, "the stored secret cannot be decrypted: RELATIONS_SECRET_KEY has changed")
        timestamp = int(time.time())
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": row["event_id"],
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature_header(
                secrets_in_use, message_id=row["event_id"], timestamp=timestamp, body=body
            ),
        }
        try:
            async with (
                asyncio.timeout(self.timeout),
                self.client.stream("POST", row["url"], content=body.encode(), headers=headers) as response,
            ):
                # Read a little of the answer, so that a short one leaves the connection for the next
                # delivery; a long one is cut (its connection is closed).
                read = 0
                async for chunk in response.aiter_raw():
                    read += len(chunk)
                    if read > ANSWER_READ_BYTES:
                        break
                return Outcome(response.status_code, None)
        except (TimeoutError, httpx.TimeoutException):
            return Outcome(None, f"no answer within {self.timeout:g} s")
        except AddressRefused as error:
            return Outcome(None, f"refused: {error}")
        except httpx.HTTPError as error:
            return Outcome(None, f"{type(error).__name__}: {error}"[:500])

    async def record(self, row: Record, outcome: Outcome) -> None:
        if outcome.status == 410:
            place: dict[str, Any] = {
                "project": row["project"],
                "webhook_id": row["webhook_id"],
                "delivery_id": row["id"],
                "token": self.token,
            }
            if await queries.gone(self.db, reason="the receiver answered 410 Gone", **place):
                log.warning("webhook %s disabled: its receiver answered 410", row["webhook_id"])
            self._wake.set()
            return
        if outcome.delivered:
            state, error, retry_in = "delivered", None, None
        else:
            attempts: int = row["attempts"]
            retry_in = retry_delay(attempts, base=self.base) if attempts < self.max_attempts else None
            state = "pending" if retry_in is not None else "failed"
            error = outcome.error or f"the receiver answered {outcome.status}"
        self._outcomes.append(
            (row["project"], row["webhook_id"], row["id"], state, outcome.status, error, retry_in)
        )
        self._wake.set()  # the next turn writes it

    async def close(self) -> None:
        """Stop the attempts in flight and hand their deliveries back, due at once."""
        attempts = list(self._attempts)
        for task in attempts:
            task.cancel()
        await asyncio.gather(*attempts, return_exceptions=True)
        try:
            if self._outcomes:  # the attempts that ended since the last turn
                await self.turn(claim=False)
            await queries.release(self.db, token=self.token)
        except Exception:
            log.warning("webhook sender: could not release its claims; they expire within %ss", self.lease)
        await self.client.aclose()
