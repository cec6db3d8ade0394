"""Seeding the benchmark database: several projects, lists of 10 to 10,000 children, dependency
relations, all inserted with `generate_series` in a handful of statements.

Every guid is derived from a name (`md5(name)::uuid`, the same in Python: `named_guid`), so the load
scripts can address parents and children without reading them back. Relations the benchmark adds
later all get ids above the seeded maximum, so `reset` removes them and the data set is the same for
every run without seeding again."""

from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from service.db import Database
from service.projects.service import SCOPES, create_key, create_project
from service.rate_limits.policy import RatePolicy
from service.relations.queries import POSITION_GAP
from service.schema import connect, migrate

# Bump when the layout below changes: a database seeded with another layout is seeded again.
LAYOUT_VERSION = 1
MAIN_PROJECT = "bench"
OTHER_PROJECTS = ("bench-2", "bench-3", "bench-4")
MAIN_SHARE = 0.7
LOAD_PROJECT = "bench-load"
# Lists of 20 mix these types, so `?dependency=true` has something to filter out.
MIXED_TYPES = ("umbDocument", "umbMedia", "relateDocumentOnCopy", "umbMember")
# Each shared child is the child of about this many relations (GET /relation/child/{guid}).
CHILD_FAN_IN = 4

MARKER = """
CREATE TABLE IF NOT EXISTS bench_seed (
    relations  bigint      NOT NULL,
    layout     integer     NOT NULL,
    max_id     bigint      NOT NULL,
    seeded_at  timestamptz NOT NULL DEFAULT now()
)"""


def named_guid(name: str) -> uuid.UUID:
    """The guid the seed SQL computes as `md5(name)::uuid`."""
    return uuid.UUID(hashlib.md5(name.encode()).hexdigest())


@dataclass(frozen=True)
class Segment:
    """`lists` parents with `size` children each under one type (or MIXED_TYPES when type is None)."""

    kind: str
    lists: int
    size: int
    type_alias: str | None
    # Children shared with other lists (a pool of Np / CHILD_FAN_IN guids) or unique to this list.
    shared_children: bool

    @property
    def rows(self) -> int:
        return self.lists * self.size

    def parent(self, project: str, number: int) -> uuid.UUID:
        return named_guid(f"{project}:{self.kind}:{number}")


@dataclass
class ProjectLayout:
    project: str
    relations: int
    segments: list[Segment] = field(default_factory=list)

    @property
    def child_pool(self) -> int:
        return max(self.relations // CHILD_FAN_IN, 100)

    def child(self, number: int) -> uuid.UUID:
        return named_guid(f"{self.project}:c:{number}")

    def segment(self, kind: str) -> Segment | None:
        return next((s for s in self.segments if s.kind == kind and s.lists), None)


def project_layout(project: str, relations: int) -> ProjectLayout:
    """10,000-item lists (1 per 100,000 relations), 1,000-item lists, 100-item lists, 10-item lists
    (10 % of the rows, many of them so that connects spread out), and parents of 20 for the rest."""
    big = relations // 100_000 or (1 if relations >= 20_000 else 0)
    segments = [
        Segment("l10000", big, 10_000, "umbDocument", False),
        Segment("l1000", relations // 10_000, 1_000, "umbMedia", False),
        Segment("l100", relations // 1_000, 100, "umbDocument", True),
        Segment("l10", relations // 100, 10, "umbDocument", True),
    ]
    rest = relations - sum(s.rows for s in segments)
    segments.append(Segment("p20", max(rest, 0) // 20, 20, None, True))
    return ProjectLayout(project, relations, segments)


def layouts(relations: int) -> list[ProjectLayout]:
    main = int(relations * MAIN_SHARE)
    other = (relations - main) // len(OTHER_PROJECTS)
    return [project_layout(MAIN_PROJECT, main)] + [project_layout(p, other) for p in OTHER_PROJECTS]


def segment_sql(segment: Segment) -> str:
    """INSERT of one segment: $1 project, $2 first id, $3 child pool size (shared children only).
    Row i of the segment is child number i % size of list i / size."""
    if segment.type_alias is None:
        types = ", ".join(f"'{alias}'" for alias in MIXED_TYPES)
        type_expr = f"(ARRAY[{types}])[(i % {len(MIXED_TYPES)}) + 1]"
        rank = f"(i % {segment.size}) / {len(MIXED_TYPES)} + 1"
    else:
        type_expr = f"'{segment.type_alias}'"
        rank = f"(i % {segment.size}) + 1"
    if segment.shared_children:
        child = "md5($1 || ':c:' || ((i + $2) % $3))::uuid"
    else:
        child = f"md5($1 || ':{segment.kind}:' || (i / {segment.size}) || ':' || (i % {segment.size}))::uuid"
    return f"""
INSERT INTO relation (project, id, type_alias, parent, child, position, comment, created_at)
SELECT $1, $2 + i, {type_expr},
       md5($1 || ':{segment.kind}:' || (i / {segment.size}))::uuid,
       {child},
       ({rank})::bigint * {POSITION_GAP},
       '',
       now() - make_interval(secs => ({segment.rows} - i))
FROM generate_series(0, {segment.rows - 1}) AS i"""


async def _seeded(connection: asyncpg.Connection, relations: int) -> int | None:
    """The seeded maximum id when the database holds this data set, else None."""
    row = await connection.fetchrow("SELECT relations, layout, max_id FROM bench_seed LIMIT 1")
    if row is None or row["relations"] != relations or row["layout"] != LAYOUT_VERSION:
        return None
    return int(row["max_id"])


# keys[LIMITED_KEY]: a key of MAIN_PROJECT with its own budget (SPEC §13), leased from PostgreSQL in
# slices like any other, but never used up at the rates one worker reaches.
LIMITED_KEY = "main, rate-limited"
UNREFUSING_LIMIT = RatePolicy(1_000_000, 1_000_000)


async def _projects(url: str) -> dict[str, str]:
    """Every bench project with its built-in types, and a fresh key of all scopes for each."""
    db = Database(url, min_size=1, max_size=2)
    await db.connect()
    try:
        keys = {}
        for project in (MAIN_PROJECT, *OTHER_PROJECTS, LOAD_PROJECT):
            await create_project(db, project=project)
            keys[project] = (await create_key(db, project=project, scopes=list(SCOPES), name="bench")).key
        # The same project through a key with a rate limit too high to refuse: what the limit costs.
        limited = await create_key(
            db, project=MAIN_PROJECT, scopes=list(SCOPES), name="bench limited", rate_limit=UNREFUSING_LIMIT
        )
        keys[LIMITED_KEY] = limited.key
        return keys
    finally:
        await db.disconnect()


async def _bulk_insert(connection: asyncpg.Connection, plans: list[ProjectLayout], log: Any) -> int:
    """Drop the relation table's indexes and constraints, insert, and rebuild them as they were."""
    constraints = await connection.fetch(
        """SELECT conname, pg_get_constraintdef(oid) AS definition, contype FROM pg_constraint
           WHERE conrelid = 'relation'::regclass AND contype IN ('p', 'u', 'f')
           ORDER BY CASE contype WHEN 'p' THEN 0 WHEN 'u' THEN 1 ELSE 2 END"""
    )
    indexes = await connection.fetch(
        """SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS definition
           FROM pg_index i WHERE i.indrelid = 'relation'::regclass
             AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)"""
    )
    await connection.execute("TRUNCATE relation")
    for index in indexes:
        await connection.execute(f"DROP INDEX {index['name']}")
    for constraint in reversed(constraints):
        await connection.execute(f'ALTER TABLE relation DROP CONSTRAINT "{constraint["conname"]}"')
    next_id = 1
    for plan in plans:
        for segment in plan.segments:
            if not segment.rows:
                continue
            args = (plan.child_pool,) if segment.shared_children else ()
            await connection.execute(segment_sql(segment), plan.project, next_id, *args)
            next_id += segment.rows
    log(f"  inserted {next_id - 1:,} rows; rebuilding indexes")
    await connection.execute("SET maintenance_work_mem = '256MB'")
    for constraint in constraints:
        await connection.execute(
            f'ALTER TABLE relation ADD CONSTRAINT "{constraint["conname"]}" {constraint["definition"]}'
        )
    for index in indexes:
        await connection.execute(index["definition"])
    await connection.execute("SELECT setval('relation_id_seq', $1)", next_id)
    return next_id - 1


async def seed(url: str, relations: int, *, force: bool = False, log: Any = print) -> dict[str, str]:
    """Make the database at `url` hold the data set of `relations` rows (seeding it, or removing what
    an earlier run added). Returns an API key per bench project."""
    await migrate(url)
    keys = await _projects(url)
    connection = await connect(url)
    try:
        await connection.execute(MARKER)
        max_id = None if force else await _seeded(connection, relations)
        started = time.monotonic()
        if max_id is None:
            log(f"seeding {relations:,} relations")
            async with connection.transaction():
                max_id = await _bulk_insert(connection, layouts(relations), log)
                await connection.execute("DELETE FROM bench_seed")
                await connection.execute(
                    "INSERT INTO bench_seed (relations, layout, max_id) VALUES ($1, $2, $3)",
                    relations,
                    LAYOUT_VERSION,
                    max_id,
                )
            await connection.execute("VACUUM (ANALYZE) relation")
            log(f"  seeded in {time.monotonic() - started:.1f} s")
        else:
            removed = await connection.execute("DELETE FROM relation WHERE id > $1", max_id)
            await connection.execute("SELECT setval('relation_id_seq', $1)", max_id + 1)
            if int(removed.rsplit(" ", 1)[-1]):
                await connection.execute("VACUUM (ANALYZE) relation")
            log(f"reusing the seeded {relations:,} relations ({removed.lower()} added by earlier runs)")
        return keys
    finally:
        await connection.close()
