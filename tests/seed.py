"""Bulk data for plan and scale checks: `relations` relations in one project, in SQL (no round trip
per row). Parents have `per_parent` children each; children are drawn from a pool a tenth the size, so
many are referenced several times; types alternate between dependency and non-dependency ones."""

from __future__ import annotations

from service.db import Database
from service.projects.service import create_project
from service.relations.queries import POSITION_GAP
from service.schema import connect

SEED = f"""
INSERT INTO relation (project, type_alias, parent, child, position, comment)
SELECT $1,
       (ARRAY['umbDocument', 'umbMedia', 'relateDocumentOnCopy', 'umbMember'])[1 + (g / $3) % 4],
       md5($1 || 'parent' || (g / $3))::uuid,
       md5($1 || 'child' || (hashint4(g) & 2147483647) % greatest($2 / 10, 1))::uuid,
       (g % $3 + 1) * {POSITION_GAP},
       ''
FROM generate_series(0, $2 - 1) AS g
ON CONFLICT DO NOTHING
"""


async def seed_relations(db: Database, *, project: str, relations: int, per_parent: int = 20) -> None:
    """Bulk inserts run on a connection of their own: the service's pool has request-sized timeouts."""
    await create_project(db, project=project)
    connection = await connect(db.url)
    try:
        await connection.execute(SEED, project, relations, per_parent)
        await connection.execute("ANALYZE relation")
    finally:
        await connection.close()


def parent_of(project: str, index: int) -> str:
    """The GUID of parent number `index` (as the SQL above computes it)."""
    import hashlib
    import uuid

    return str(uuid.UUID(hashlib.md5(f"{project}parent{index}".encode()).hexdigest()))


def child_of(project: str, index: int) -> str:
    import hashlib
    import uuid

    return str(uuid.UUID(hashlib.md5(f"{project}child{index}".encode()).hexdigest()))
