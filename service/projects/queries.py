"""SQL for projects and API keys."""

from __future__ import annotations

from service.db import Database, Record

INSERT_PROJECT = (
    "INSERT INTO project (project) VALUES ($1) ON CONFLICT (project) DO NOTHING RETURNING project"
)
PROJECT_EXISTS = "SELECT 1 FROM project WHERE project = $1"
LIST_PROJECTS = "SELECT project, created_at FROM project ORDER BY project"

INSERT_KEY = """
INSERT INTO api_key (key_id, digest, project, scopes, name, rate_per_second, rate_burst)
VALUES ($1, $2, $3, $4, $5, $6, $7)
RETURNING key_id, project, scopes, name, created_at
"""
KEY_BY_DIGEST = """
SELECT key_id, project, scopes, revoked_at, rate_per_second, rate_burst FROM api_key WHERE digest = $1
"""
# Last use to the minute: a busy key is not rewritten on every cache miss of every worker.
TOUCH_KEY = """
UPDATE api_key SET last_used_at = now()
WHERE key_id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
"""
LIST_KEYS = """
SELECT key_id, project, scopes, name, created_at, last_used_at, revoked_at, rate_per_second, rate_burst
FROM api_key WHERE project = $1 ORDER BY created_at, key_id
"""
REVOKE_KEY = """
UPDATE api_key SET revoked_at = coalesce(revoked_at, now()) WHERE key_id = $1 RETURNING key_id, project
"""


async def insert_project(db: Database, *, project: str) -> bool:
    """Create the project; False when it existed already."""
    return await db.fetchval(INSERT_PROJECT, project) is not None


async def project_exists(db: Database, *, project: str) -> bool:
    return await db.fetchval(PROJECT_EXISTS, project) is not None


async def list_projects(db: Database) -> list[Record]:
    return await db.fetch(LIST_PROJECTS)


async def insert_key(
    db: Database,
    *,
    key_id: str,
    digest: bytes,
    project: str,
    scopes: list[str],
    name: str,
    rate_per_second: int | None = None,
    rate_burst: int | None = None,
) -> Record:
    row = await db.fetchrow(INSERT_KEY, key_id, digest, project, scopes, name, rate_per_second, rate_burst)
    assert row is not None
    return row


async def key_by_digest(db: Database, *, digest: bytes) -> Record | None:
    return await db.fetchrow(KEY_BY_DIGEST, digest)


async def touch_key(db: Database, *, key_id: str) -> None:
    await db.execute(TOUCH_KEY, key_id)


async def list_keys(db: Database, *, project: str) -> list[Record]:
    return await db.fetch(LIST_KEYS, project)


async def revoke_key(db: Database, *, key_id: str) -> Record | None:
    return await db.fetchrow(REVOKE_KEY, key_id)
