"""SQL of the bulk routes. They run on one dedicated connection (Database.dedicated), so these
functions take asyncpg's connection; every statement of a bulk operation may run long, so each is
given BULK_TIMEOUT_SECONDS (the transaction also lifts statement_timeout, see `prepare`)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg

from service.bulk.lines import Staged, TypeLine
from service.db import Record
from service.relation_types import queries as type_queries
from service.relations.queries import POSITION_GAP

BULK_TIMEOUT_SECONDS = 3600.0
# A client that stops reading an export or sending an import for this long ends it (and its snapshot).
IDLE_SECONDS = 60
# Lists whose positions would pass this are renumbered (the planner's safe range, far from bigint's end).
SAFE_POSITION = 1 << 62

PREPARE = f"""
SET LOCAL statement_timeout = 0;
SET LOCAL idle_in_transaction_session_timeout = '{IDLE_SECONDS}s';
SET LOCAL work_mem = '64MB'"""

# --- export ---------------------------------------------------------------------------------------
EXPORT_TYPES = f"""
SELECT {type_queries.COLUMNS} FROM relation_type WHERE project = $1 AND ($2::text IS NULL OR alias = $2)
ORDER BY alias"""
# The relation lines are written by PostgreSQL (the Python per row would cost more than the rest of the
# export): §4's representation without `_links`, in its key order, compact like orjson's (tests compare
# it with relations.model.represent). They are sent with COPY (EXPORT_FORMAT), not fetched as rows: no
# round trip per batch and no Python object per row. One type at a time (the types by alias): with the
# type fixed, relation_by_parent's order (parent, type, position, id) is the export's, so no sort.
EXPORT_RELATIONS = """
SELECT '{"relation":{"_id":' || id || ',"parentId":"' || parent || '","childId":"' || child
    || '","relationTypeAlias":' || to_json(type_alias)::text || ',"comment":' || to_json(comment)::text
    || ',"_createDate":"' || to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') || '"}}'
FROM relation WHERE project = $1 AND type_alias = $2
ORDER BY parent, position, id"""

# CSV with a quote and a delimiter that JSON never holds unescaped (control characters), so COPY sends
# each line exactly as it is (the text format would double its backslashes), one per line.
EXPORT_FORMAT: dict[str, str] = {"format": "csv", "quote": "\x01", "delimiter": "\x02"}

# --- import: staging ------------------------------------------------------------------------------
STAGING_TABLE = "import_relation"
STAGING_COLUMNS = ("line", "type_alias", "parent", "child", "comment", "created_at")
CREATE_STAGING = f"""
CREATE TEMP TABLE {STAGING_TABLE} (
    line        bigint      NOT NULL,
    type_alias  text        NOT NULL,
    parent      uuid        NOT NULL,
    child       uuid        NOT NULL,
    comment     text        NOT NULL,
    created_at  timestamptz
) ON COMMIT DROP"""
ANALYZE_STAGING = f"ANALYZE {STAGING_TABLE}"
LOCK_PROJECT = "SELECT pg_advisory_xact_lock(relation_project_lock_key($1))"

UNKNOWN_TYPES = f"""
SELECT line, type_alias FROM {STAGING_TABLE} WHERE NOT (type_alias = ANY($1::text[]))
ORDER BY line LIMIT $2"""
DUPLICATES = f"""
SELECT line, first FROM (
    SELECT line, min(line) OVER (PARTITION BY type_alias, parent, child) AS first FROM {STAGING_TABLE}
) AS found WHERE line <> first ORDER BY line LIMIT $1"""

# --- import: types --------------------------------------------------------------------------------
TYPES_FOR_UPDATE = f"""
SELECT {type_queries.COLUMNS} FROM relation_type WHERE project = $1 AND alias = ANY($2::text[])
ORDER BY alias FOR UPDATE"""
TYPE_ALIASES = "SELECT alias, cardinality FROM relation_type WHERE project = $1"
INSERT_TYPE = """
INSERT INTO relation_type (project, alias, type_id, name, parent_object_type, child_object_type,
    is_bidirectional, is_dependency, cardinality, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, coalesce($10, now()), coalesce($11, $10, now()))
ON CONFLICT (project, alias) DO NOTHING
RETURNING alias"""

# --- import: the plan -----------------------------------------------------------------------------
# The lists the file names, and whether each has members already (`known`). A list that has none (all
# of them, in an import into an empty project) needs no plan: its rows go in straight from the staging
# table, in line order (INSERT_FRESH).
LIST_TABLE = "import_list"
LISTS = f"""
CREATE TEMP TABLE {LIST_TABLE} ON COMMIT DROP AS
SELECT l.type_alias, l.parent, EXISTS (
    SELECT 1 FROM relation AS r WHERE r.project = $1 AND r.parent = l.parent AND r.type_alias = l.type_alias
) AS known
FROM (SELECT DISTINCT type_alias, parent FROM {STAGING_TABLE}) AS l"""
# The staging rows of lists without members, each with its place in its list.
FRESH_ROWS = f"""
SELECT s.*, row_number() OVER (PARTITION BY s.parent, s.type_alias ORDER BY s.line) AS rank
FROM {STAGING_TABLE} AS s JOIN {LIST_TABLE} AS l
  ON l.type_alias = s.type_alias AND l.parent = s.parent AND NOT l.known"""
# Every list the file names that has members, with the final order of its members: the file's, in line
# order, then the members the file does not name, in their present order. `rank` is a member's place
# in the final list; `kept_rank`/`old_rank` its place among the members that were there before, after
# and before the import (they differ when it moved). A list is renumbered (rank times the gap) when a member
# moved or a new member comes before an old one; otherwise old members keep their positions and the
# new ones follow the last.
PLAN_TABLE = "import_plan"
PLAN = f"""
CREATE TEMP TABLE {PLAN_TABLE} ON COMMIT DROP AS
WITH lists AS (
    SELECT type_alias, parent FROM {LIST_TABLE} WHERE known
), staged AS (
    SELECT s.* FROM {STAGING_TABLE} AS s
    JOIN lists AS l ON l.type_alias = s.type_alias AND l.parent = s.parent
), existing AS (
    SELECT r.id, r.type_alias, r.parent, r.child, r.position, r.comment,
           row_number() OVER (PARTITION BY r.type_alias, r.parent ORDER BY r.position, r.id) AS old_rank
    FROM lists AS l JOIN relation AS r
      ON r.project = $1 AND r.parent = l.parent AND r.type_alias = l.type_alias
), joined AS (
    SELECT coalesce(s.type_alias, e.type_alias) AS type_alias, coalesce(s.parent, e.parent) AS parent,
           coalesce(s.child, e.child) AS child, s.line, s.comment, s.created_at,
           e.id, e.position AS old_position, e.comment AS old_comment, e.old_rank
    FROM staged AS s
    FULL JOIN existing AS e ON e.type_alias = s.type_alias AND e.parent = s.parent AND e.child = s.child
), ranked AS (
    SELECT *, row_number() OVER list AS rank, count(id) OVER list AS kept_rank FROM joined
    WINDOW list AS (PARTITION BY type_alias, parent ORDER BY line NULLS LAST, old_rank)
), listed AS (
    SELECT *,
           count(id) OVER whole AS kept,
           max(old_position) OVER whole AS last_position,
           coalesce(bool_or(id IS NOT NULL AND kept_rank <> old_rank) OVER whole, false)
           OR coalesce(min(rank) FILTER (WHERE id IS NULL) OVER whole
                       < max(rank) FILTER (WHERE id IS NOT NULL) OVER whole, false)
           OR coalesce(max(old_position) OVER whole, 0) + count(*) OVER whole * {POSITION_GAP}
              >= {SAFE_POSITION}
           AS renumber
    FROM ranked WINDOW whole AS (PARTITION BY type_alias, parent)
)
SELECT type_alias, parent, child, line, comment, created_at, id, old_comment, old_rank, kept_rank, rank,
       CASE WHEN renumber THEN rank * {POSITION_GAP}
            WHEN id IS NOT NULL THEN old_position
            ELSE coalesce(last_position, 0) + (rank - kept) * {POSITION_GAP} END AS position,
       id IS NOT NULL AND (old_position IS DISTINCT FROM
           CASE WHEN renumber THEN rank * {POSITION_GAP} ELSE old_position END) AS repositioned
FROM listed"""
# The counts of the file's relations (the fresh lists' rows are all created).
TALLY = f"""
SELECT count(*) FILTER (WHERE id IS NULL)
       + (SELECT count(*) FROM {STAGING_TABLE} AS s JOIN {LIST_TABLE} AS l
          ON l.type_alias = s.type_alias AND l.parent = s.parent AND NOT l.known) AS created,
       count(*) FILTER (WHERE id IS NOT NULL AND line IS NOT NULL
                        AND (comment <> old_comment OR kept_rank <> old_rank)) AS updated,
       count(*) FILTER (WHERE id IS NOT NULL AND line IS NOT NULL
                        AND comment = old_comment AND kept_rank = old_rank) AS unchanged
FROM {PLAN_TABLE}"""
# Lists of a cardinality-one type that would have several members: the line to blame is the file's
# second member of the list, or its only one (when the list already has another child).
CARDINALITY_ONE = f"""
SELECT coalesce(min(line) FILTER (WHERE rank > 1), min(line)) AS line, type_alias FROM (
    SELECT type_alias, parent, line, rank FROM {PLAN_TABLE} WHERE type_alias = ANY($1::text[])
    UNION ALL
    SELECT type_alias, parent, line, rank FROM ({FRESH_ROWS}) AS fresh WHERE type_alias = ANY($1::text[])
) AS members
GROUP BY type_alias, parent HAVING count(*) > 1 ORDER BY 1 LIMIT $2"""
# A type the file turns into cardinality one, with a parent of several children in a list the file
# does not name.
SEVERAL_CHILDREN_ELSEWHERE = f"""
SELECT 1 FROM relation AS r WHERE r.project = $1 AND r.type_alias = $2 AND NOT EXISTS (
    SELECT 1 FROM {LIST_TABLE} AS l WHERE l.type_alias = r.type_alias AND l.parent = r.parent)
GROUP BY r.parent HAVING count(*) > 1 LIMIT 1"""

# --- import: the writes (plain statements: the tables' triggers see every row) --------------------
UPDATE_RELATIONS = f"""
UPDATE relation AS r SET position = p.position, comment = coalesce(p.comment, r.comment)
FROM {PLAN_TABLE} AS p
WHERE r.project = $1 AND r.id = p.id
  AND (p.repositioned OR (p.line IS NOT NULL AND p.comment <> p.old_comment))"""
# In the order of the unique and by-parent indexes, so their inserts touch neighbouring pages.
INSERT_RELATIONS = f"""
INSERT INTO relation (project, type_alias, parent, child, position, comment, created_at)
SELECT $1, type_alias, parent, child, position, comment, coalesce(created_at, now()) FROM {PLAN_TABLE}
WHERE id IS NULL ORDER BY parent, type_alias, rank"""
INSERT_FRESH = f"""
INSERT INTO relation (project, type_alias, parent, child, position, comment, created_at)
SELECT $1, type_alias, parent, child, rank * {POSITION_GAP}, comment, coalesce(created_at, now())
FROM ({FRESH_ROWS}) AS fresh ORDER BY parent, type_alias, rank"""
# Statistics fit for the planner the moment the rows are visible (ANALYZE counts this transaction's
# own rows): after a large import, autovacuum's next run may be minutes away.
ANALYZE_WRITTEN = "ANALYZE relation, child_list"


async def run(conn: asyncpg.Connection, sql: str, *args: Any) -> str:
    status: str = await conn.execute(sql, *args, timeout=BULK_TIMEOUT_SECONDS)
    return status


async def rows(conn: asyncpg.Connection, sql: str, *args: Any) -> list[Record]:
    found: list[Record] = await conn.fetch(sql, *args, timeout=BULK_TIMEOUT_SECONDS)
    return found


async def prepare(conn: asyncpg.Connection) -> None:
    await conn.execute(PREPARE)


async def export_relations(
    conn: asyncpg.Connection, *, project: str, alias: str, output: Callable[[bytes], Awaitable[None]]
) -> None:
    """The relation lines of one type, COPYed to `output` in the chunks the driver reads."""
    await conn.copy_from_query(
        EXPORT_RELATIONS, project, alias, output=output, timeout=BULK_TIMEOUT_SECONDS, **EXPORT_FORMAT
    )


async def stage(conn: asyncpg.Connection, *, records: Sequence[Staged]) -> None:
    await conn.copy_records_to_table(
        STAGING_TABLE, records=records, columns=STAGING_COLUMNS, timeout=BULK_TIMEOUT_SECONDS
    )


async def insert_type(conn: asyncpg.Connection, *, project: str, line: TypeLine, type_id: uuid.UUID) -> bool:
    fields = type_queries.stored_fields(line.fields)
    created = await conn.fetchval(
        INSERT_TYPE, project, line.fields.alias, type_id, *fields, line.created_at, line.updated_at
    )
    return created is not None


async def update_type(conn: asyncpg.Connection, *, project: str, line: TypeLine) -> None:
    await conn.execute(
        type_queries.UPDATE, project, line.fields.alias, *type_queries.stored_fields(line.fields)
    )
