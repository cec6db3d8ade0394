"""SQL for relation types. Data functions take keyword-only arguments and return rows or None."""

from __future__ import annotations

import asyncpg

from service import messages
from service.cursors import PageStart, Slice, fetch, statements
from service.db import Database, Record
from service.errors import Conflict
from service.relation_types.model import BUILTINS, RelationTypeFields, type_id

COLUMNS = """alias, type_id, name, parent_object_type, child_object_type, is_bidirectional,
    is_dependency, cardinality, is_builtin, created_at, updated_at"""

# By alias, from the primary key; the total from relation_type_count (schema.sql's triggers).
LIST = statements(
    total="SELECT coalesce(max(size), 0) AS total FROM relation_type_count WHERE project = $1",
    select=f"{COLUMNS} FROM relation_type",
    where="project = $1",
    order=("alias",),
    key_at=2,
)
GET = f"SELECT {COLUMNS} FROM relation_type WHERE project = $1 AND alias = $2"
INSERT = f"""
INSERT INTO relation_type (project, alias, type_id, name, parent_object_type, child_object_type,
    is_bidirectional, is_dependency, cardinality, is_builtin)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (project, alias) DO NOTHING
RETURNING {COLUMNS}
"""
UPDATE = f"""
UPDATE relation_type SET name = $3, parent_object_type = $4, child_object_type = $5,
    is_bidirectional = $6, is_dependency = $7, cardinality = $8, updated_at = clock_timestamp()
WHERE project = $1 AND alias = $2
RETURNING {COLUMNS}
"""
# Holds the type's row for the rest of the transaction: relation creates check cardinality under it.
LOCK = f"SELECT {COLUMNS} FROM relation_type WHERE project = $1 AND alias = $2 FOR UPDATE"
PARENT_WITH_SEVERAL_CHILDREN = """
SELECT 1 FROM relation WHERE project = $1 AND type_alias = $2
GROUP BY parent HAVING count(*) > 1 LIMIT 1
"""
DELETE = "DELETE FROM relation_type WHERE project = $1 AND alias = $2 RETURNING alias"
DELETE_RELATIONS = "DELETE FROM relation WHERE project = $1 AND type_alias = $2"
COUNT_RELATIONS = "SELECT count(*) FROM relation WHERE project = $1 AND type_alias = $2"


async def list_page(db: Database, *, project: str, window: PageStart) -> Slice:
    return await fetch(db, LIST[not window.forward], (project,), window, column="alias")


async def get(db: Database, *, project: str, alias: str) -> Record | None:
    return await db.fetchrow(GET, project, alias)


async def lock(db: Database, *, project: str, alias: str) -> Record | None:
    return await db.fetchrow(LOCK, project, alias)


async def insert(
    db: Database, *, project: str, fields: RelationTypeFields, builtin: bool = False
) -> Record | None:
    """The new type, or None when the alias is taken."""
    return await db.fetchrow(
        INSERT, project, fields.alias, type_id(fields.alias, fields.name), *stored_fields(fields), builtin
    )


async def insert_builtins(db: Database, *, project: str) -> None:
    for fields in BUILTINS:
        await insert(db, project=project, fields=fields, builtin=True)


def stored_fields(fields: RelationTypeFields) -> tuple[str, str, str, bool, bool, str]:
    """The columns after (project, alias[, type_id]) of INSERT and UPDATE, in their order."""
    return (
        fields.name,
        fields.parent_object_type,
        fields.child_object_type,
        fields.is_bidirectional,
        fields.is_dependency,
        fields.cardinality,
    )


async def update(db: Database, *, project: str, fields: RelationTypeFields) -> Record | None:
    return await db.fetchrow(UPDATE, project, fields.alias, *stored_fields(fields))


async def has_parent_with_several_children(db: Database, *, project: str, alias: str) -> bool:
    return await db.fetchval(PARENT_WITH_SEVERAL_CHILDREN, project, alias) is not None


async def count_relations(db: Database, *, project: str, alias: str) -> int:
    return int(await db.fetchval(COUNT_RELATIONS, project, alias))


async def delete(db: Database, *, project: str, alias: str, force: bool) -> bool:
    """Delete the type (and, with `force`, its relations). 409 when relations remain: the foreign key
    decides, so a relation created meanwhile (by a writer that did not wait for the type's lock) is
    never orphaned."""
    if force:
        await db.execute(DELETE_RELATIONS, project, alias)
    try:
        return await db.fetchval(DELETE, project, alias) is not None
    except asyncpg.ForeignKeyViolationError:
        raise Conflict(messages.RELATION_TYPE_GAINED_RELATIONS.format(alias=alias)) from None
