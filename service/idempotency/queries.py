"""SQL of the idempotency keys (table `idempotency_key`)."""

from __future__ import annotations

from typing import Any

import orjson

from service.db import Database, Record

# Takes the key for this request; an expired row is taken over. A concurrent request holding the same
# key (not yet committed) makes this wait until it commits (then nothing is returned) or rolls back.
CLAIM = """
INSERT INTO idempotency_key AS held (project, key, request_hash, status, headers, body)
VALUES ($1, $2, $3, 0, '{}', '')
ON CONFLICT (project, key) DO UPDATE
    SET request_hash = EXCLUDED.request_hash, status = 0, headers = '{}', body = '', created_at = now()
    WHERE held.created_at < now() - make_interval(hours => $4)
RETURNING true"""

STORE = """
UPDATE idempotency_key SET status = $3, headers = $4::jsonb, body = $5
WHERE project = $1 AND key = $2"""

FIND = """
SELECT request_hash, status, headers, body FROM idempotency_key WHERE project = $1 AND key = $2"""

PRUNE = "DELETE FROM idempotency_key WHERE created_at < now() - make_interval(hours => $1)"


async def claim(db: Database, *, project: str, key: str, request_hash: bytes, hours: int) -> bool:
    return bool(await db.fetchval(CLAIM, project, key, request_hash, hours))


async def store(
    db: Database, *, project: str, key: str, status: int, headers: dict[str, str], body: bytes
) -> None:
    await db.execute(STORE, project, key, status, orjson.dumps(headers).decode(), body)


async def find(db: Database, *, project: str, key: str) -> Record | None:
    return await db.fetchrow(FIND, project, key)


def stored_headers(row: Record) -> dict[str, Any]:
    headers: dict[str, Any] = orjson.loads(row["headers"])
    return headers


async def prune(db: Database, *, hours: int) -> int:
    """Delete keys older than `hours`; returns how many."""
    status = await db.execute(PRUNE, hours)
    return int(status.split()[-1])
