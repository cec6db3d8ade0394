"""Creating projects (seeded with the built-in relation types) and API keys."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from service.db import Database
from service.projects import queries
from service.rate_limits.policy import RatePolicy
from service.relation_types import queries as type_queries

PROJECT_ALIAS = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
SCOPES = ("relations:read", "relations:write", "relation-types:write", "webhooks:write")
KEY_PREFIX = "rr_"
# rr_<key id: 6 random bytes, hex>_<secret: 32 random bytes, url-safe base64>
KEY_SHAPE = re.compile(r"rr_[0-9a-f]{12}_[A-Za-z0-9_-]{43}")


def key_digest(key: str) -> bytes:
    """Keys are 32 random bytes, so one round of SHA-256 is a sufficient, fast digest."""
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()


@dataclass(frozen=True)
class NewKey:
    key_id: str
    key: str
    project: str
    scopes: tuple[str, ...]
    rate_limit: RatePolicy | None = None


def plausible_key(key: str) -> bool:
    """Whether `key` has the shape of a key this service issues (checked before any lookup)."""
    return KEY_SHAPE.fullmatch(key) is not None


def valid_project_alias(alias: str) -> bool:
    return PROJECT_ALIAS.fullmatch(alias) is not None


async def create_project(db: Database, *, project: str) -> bool:
    """Create `project` with the built-in relation types; False when it existed already."""
    if not valid_project_alias(project):
        raise ValueError(f"project alias must match {PROJECT_ALIAS.pattern}")
    async with db.transaction():
        created = await queries.insert_project(db, project=project)
        await type_queries.insert_builtins(db, project=project)
    return created


async def create_key(
    db: Database, *, project: str, scopes: list[str], name: str = "", rate_limit: RatePolicy | None = None
) -> NewKey:
    """A new key of `project` (created if missing); `rate_limit` is its own budget (SPEC §13)."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise ValueError(f"scopes must be some of: {' '.join(SCOPES)}")
    await create_project(db, project=project)
    key_id = secrets.token_hex(6)
    key = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    ordered = [scope for scope in SCOPES if scope in scopes]
    await queries.insert_key(
        db,
        key_id=key_id,
        digest=key_digest(key),
        project=project,
        scopes=ordered,
        name=name,
        rate_per_second=rate_limit.rate if rate_limit else None,
        rate_burst=rate_limit.burst if rate_limit else None,
    )
    return NewKey(key_id=key_id, key=key, project=project, scopes=tuple(ordered), rate_limit=rate_limit)
