"""SQL for webhooks and their deliveries: the routes' statements, the senders' claim and outcome, and the
dispatcher's inserts. Data functions take keyword-only arguments and return rows or None."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from service.cursors import MAX_INT, ListKey, PageStart, Slice, fetch, statements
from service.db import Database, Record
from service.webhooks.model import WebhookFields

COLUMNS = """project, id, url, events, description, enabled, disabled_reason, secret, previous_secret,
    previous_secret_until, created_at, updated_at"""
LIMIT_PER_PROJECT = 100

# GET /webhook: oldest first, by webhook_by_created (project, created_at, id); keys (created_at, id)
# travel as text. The total counts the project's webhooks, of which there are at most LIMIT_PER_PROJECT.
LIST = statements(
    total="SELECT count(*) AS total FROM webhook WHERE project = $1",
    select=f"{COLUMNS} FROM webhook",
    where="project = $1",
    order=("created_at", "id"),
    key_at=2,
    key_types=("timestamptz", "uuid"),
)
# Before every webhook: where the list's first page starts.
START: ListKey = ("-infinity", str(uuid.UUID(int=0)))
GET = f"SELECT {COLUMNS} FROM webhook WHERE project = $1 AND id = $2"
LOCK = f"SELECT {COLUMNS} FROM webhook WHERE project = $1 AND id = $2 FOR UPDATE"
# The count and the insert in one statement, under the project's row lock: two concurrent creates
# cannot both pass the limit.
INSERT = f"""
WITH held AS (SELECT project FROM project WHERE project = $1 FOR UPDATE)
INSERT INTO webhook (project, id, url, events, description, enabled, secret)
SELECT $1, $2, $3, $4, $5, $6, $7 FROM held
WHERE (SELECT count(*) FROM webhook WHERE project = $1) < {LIMIT_PER_PROJECT}
RETURNING {COLUMNS}
"""
UPDATE = f"""
UPDATE webhook SET url = $3, events = $4, description = $5, enabled = $6,
    disabled_reason = CASE WHEN $6 THEN NULL ELSE disabled_reason END,
    enabled_at = CASE WHEN $6 AND NOT enabled THEN clock_timestamp() ELSE enabled_at END,
    updated_at = clock_timestamp()
WHERE project = $1 AND id = $2
RETURNING {COLUMNS}
"""
# The current secret becomes the previous one, signing beside the new one for `$4` seconds.
ROTATE = """
UPDATE webhook SET previous_secret = secret, secret = $3,
    previous_secret_until = clock_timestamp() + make_interval(secs => $4), updated_at = clock_timestamp()
WHERE project = $1 AND id = $2
"""
DELETE = f"DELETE FROM webhook WHERE project = $1 AND id = $2 RETURNING {COLUMNS}"
# A disabled webhook's pending deliveries wait (no due time: no sender looks at them) until it is
# enabled again; an attempt in flight then finds its claim gone and leaves the delivery pending.
PAUSE = """
UPDATE webhook_delivery SET next_attempt_at = NULL, claim = NULL
WHERE project = $1 AND webhook_id = $2 AND state = 'pending'
"""
RESUME = """
UPDATE webhook_delivery SET next_attempt_at = clock_timestamp()
WHERE project = $1 AND webhook_id = $2 AND state = 'pending' AND next_attempt_at IS NULL
"""
# Deliveries made due by the API (a retry, a webhook enabled again): the webhook processes LISTEN here.
DUE_CHANNEL = "webhook_deliveries_due"
NOTIFY_DUE = f"SELECT pg_notify('{DUE_CHANNEL}', '')"
DISABLE = """
UPDATE webhook SET enabled = false, disabled_reason = $3, updated_at = clock_timestamp()
WHERE project = $1 AND id = $2 AND enabled
RETURNING id
"""

DELIVERY_COLUMNS = """project, webhook_id, id, event_id, event_type, state, attempts, next_attempt_at,
    last_status, last_error, last_attempt_at, delivered_at, created_at,
    (claim IS NOT NULL AND next_attempt_at > clock_timestamp()) AS in_flight"""
# GET /webhook/{id}/deliveries: newest first, by the primary key (project, webhook_id, id) backwards;
# the total from webhook_delivery_count (schema.sql's triggers).
DELIVERIES = statements(
    total="""SELECT coalesce(max(size), 0) AS total FROM webhook_delivery_count
             WHERE project = $1 AND webhook_id = $2""",
    select=f"{DELIVERY_COLUMNS} FROM webhook_delivery",
    where="project = $1 AND webhook_id = $2",
    order=("id",),
    key_at=3,
    descending=True,
)
# Before every delivery, newest first.
DELIVERIES_START: ListKey = (MAX_INT,)
GET_DELIVERY = f"""
SELECT {DELIVERY_COLUMNS} FROM webhook_delivery WHERE project = $1 AND webhook_id = $2 AND id = $3
"""
# A manual retry: due now, whatever its state; refused (None) while an attempt holds its claim.
RETRY = f"""
UPDATE webhook_delivery SET state = 'pending', next_attempt_at = clock_timestamp(), claim = NULL
WHERE project = $1 AND webhook_id = $2 AND id = $3
  AND NOT (claim IS NOT NULL AND next_attempt_at > clock_timestamp())
RETURNING {DELIVERY_COLUMNS}
"""

# --- Senders -------------------------------------------------------------------------------------------
# schema.sql's webhook_turn: the outcomes of a sender's attempts that ended, then due deliveries
# claimed for it (webhook_claim), with their webhook's url and sealed secrets, at most `per_webhook` in
# flight per webhook across all workers, in one round trip.
TURN = "SELECT * FROM webhook_turn($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
# `$6`: seconds until the next attempt, or NULL when the delivery has failed for good.
ATTEMPT_FAILED = """
UPDATE webhook_delivery SET claim = NULL, last_status = $5, last_error = $7,
    state = CASE WHEN $6::float8 IS NULL THEN 'failed' ELSE 'pending' END,
    next_attempt_at = clock_timestamp() + make_interval(secs => $6::float8)
WHERE project = $1 AND webhook_id = $2 AND id = $3 AND claim = $4
RETURNING id
"""
# A stopping sender hands back what it holds: due at once, the attempt not counted.
RELEASE = """
UPDATE webhook_delivery SET claim = NULL, next_attempt_at = clock_timestamp(), attempts = attempts - 1
WHERE claim = $1 AND state = 'pending'
"""
NEXT_DUE = "SELECT min(next_attempt_at) - clock_timestamp() FROM webhook_delivery WHERE state = 'pending'"

# --- Dispatcher ----------------------------------------------------------------------------------------
# One delivery per change and enabled webhook of its project subscribed to its type, enabled (made, or
# enabled again) before the change committed; a change queued twice (a repeated batch) stays one
# delivery.
QUEUE = """
INSERT INTO webhook_delivery (project, webhook_id, event_id, event_type, body)
SELECT c.project, w.id, c.event_id, c.event_type, c.body
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[])
    AS c (project, event_id, event_type, body, committed_at)
JOIN webhook AS w ON w.project = c.project AND w.enabled AND c.event_type = ANY (w.events)
    AND w.enabled_at <= c.committed_at
ON CONFLICT (project, webhook_id, event_id) DO NOTHING
"""
ANY_ENABLED = "SELECT EXISTS (SELECT 1 FROM webhook WHERE enabled)"
LOCK_CURSOR = f"""
SELECT position, ({ANY_ENABLED}) AS any_enabled FROM webhook_dispatch WHERE singleton
FOR UPDATE SKIP LOCKED
"""
MOVE_CURSOR = "UPDATE webhook_dispatch SET position = $1, updated_at = clock_timestamp() WHERE singleton"


async def list_page(db: Database, *, project: str, window: PageStart) -> Slice:
    return await fetch(db, LIST[not window.forward], (project,), window)


async def get(db: Database, *, project: str, webhook_id: uuid.UUID) -> Record | None:
    return await db.fetchrow(GET, project, webhook_id)


async def lock(db: Database, *, project: str, webhook_id: uuid.UUID) -> Record | None:
    return await db.fetchrow(LOCK, project, webhook_id)


async def insert(
    db: Database, *, project: str, webhook_id: uuid.UUID, fields: WebhookFields, sealed_secret: bytes
) -> Record | None:
    """The new webhook, or None when the project has its limit of webhooks."""
    return await db.fetchrow(
        INSERT,
        project,
        webhook_id,
        fields.url,
        list(fields.events),
        fields.description,
        fields.enabled,
        sealed_secret,
    )


async def update(db: Database, *, project: str, webhook_id: uuid.UUID, fields: WebhookFields) -> Record:
    return await db.fetchrow(
        UPDATE, project, webhook_id, fields.url, list(fields.events), fields.description, fields.enabled
    )


async def rotate(
    db: Database, *, project: str, webhook_id: uuid.UUID, sealed_secret: bytes, overlap_seconds: float
) -> None:
    await db.execute(ROTATE, project, webhook_id, sealed_secret, overlap_seconds)


async def pause(db: Database, *, project: str, webhook_id: uuid.UUID) -> None:
    await db.execute(PAUSE, project, webhook_id)


async def resume(db: Database, *, project: str, webhook_id: uuid.UUID) -> None:
    await db.execute(RESUME, project, webhook_id)
    await notify_due(db)


async def notify_due(db: Database) -> None:
    """Wake the senders (at the commit, when inside a transaction)."""
    await db.execute(NOTIFY_DUE)


async def delete(db: Database, *, project: str, webhook_id: uuid.UUID) -> Record | None:
    return await db.fetchrow(DELETE, project, webhook_id)


async def gone(
    db: Database, *, project: str, webhook_id: uuid.UUID, delivery_id: int, token: uuid.UUID, reason: str
) -> bool:
    """The receiver answered 410: fail the delivery, disable the webhook and pause its other pending
    deliveries, in one transaction (no sender claims one of them in between). False when the claim
    was no longer this sender's."""
    async with db.transaction():
        failed = await db.fetchval(ATTEMPT_FAILED, project, webhook_id, delivery_id, token, 410, None, reason)
        if failed is None:
            return False
        if await db.fetchval(DISABLE, project, webhook_id, reason) is not None:
            await db.execute(PAUSE, project, webhook_id)
    return True


async def deliveries_page(db: Database, *, project: str, webhook_id: uuid.UUID, window: PageStart) -> Slice:
    return await fetch(db, DELIVERIES[not window.forward], (project, webhook_id), window)


async def get_delivery(
    db: Database, *, project: str, webhook_id: uuid.UUID, delivery_id: int
) -> Record | None:
    return await db.fetchrow(GET_DELIVERY, project, webhook_id, delivery_id)


async def retry(db: Database, *, project: str, webhook_id: uuid.UUID, delivery_id: int) -> Record | None:
    return await db.fetchrow(RETRY, project, webhook_id, delivery_id)


async def turn(
    db: Database,
    *,
    token: uuid.UUID,
    outcomes: Sequence[tuple[Any, ...]],
    per_webhook: int,
    webhooks: int,
    lease_seconds: float,
) -> list[Record]:
    """Records `outcomes` — (project, webhook id, delivery id, state, status, error, retry_in) of
    attempts that held a claim of `token`; one whose claim ran out changes nothing — then claims due
    deliveries for `token` (none with `per_webhook` 0), each with its webhook's url and sealed secrets."""
    columns = [list(column) for column in zip(*outcomes, strict=True)] or [[]] * 7
    return await db.fetch(TURN, token, per_webhook, webhooks, lease_seconds, *columns)


async def attempt_failed(
    db: Database,
    *,
    project: str,
    webhook_id: uuid.UUID,
    delivery_id: int,
    token: uuid.UUID,
    status: int | None,
    retry_in: float | None,
    error: str,
) -> bool:
    found = await db.fetchval(
        ATTEMPT_FAILED, project, webhook_id, delivery_id, token, status, retry_in, error
    )
    return found is not None


async def release(db: Database, *, token: uuid.UUID) -> None:
    await db.execute(RELEASE, token)


async def seconds_until_due(db: Database) -> float | None:
    """Seconds until the soonest pending delivery is due (negative: overdue), or None."""
    until = await db.fetchval(NEXT_DUE)
    return None if until is None else float(until.total_seconds())


async def queue(db: Database, *, changes: Sequence[tuple[str, str, str, str, datetime]]) -> int:
    """Deliveries for (project, event id, type, body, commit time) of each change; how many."""
    if not changes:
        return 0
    columns = [list(column) for column in zip(*changes, strict=True)]
    status = await db.execute(QUEUE, *columns)
    return int(status.rsplit(" ", 1)[-1])


async def any_enabled(db: Database) -> bool:
    return bool(await db.fetchval(ANY_ENABLED))


async def lock_cursor(db: Database) -> Record | None:
    """The cursor row (`position`, `any_enabled`: whether any webhook is enabled), held until the end
    of the transaction; None when another process is dispatching right now."""
    return await db.fetchrow(LOCK_CURSOR)


async def move_cursor(db: Database, *, position: str) -> None:
    await db.execute(MOVE_CURSOR, position)
