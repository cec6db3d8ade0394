"""With 1,000,000 relations loaded, the referenced, dependency, related, parent and child queries are
served by index scans: EXPLAIN shows no sequential scan of `relation`, with both custom and generic
plans (asyncpg prepares statements, so PostgreSQL switches to generic plans after five runs)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from service.db import Database
from service.relations import queries
from tests.seed import child_of, parent_of, seed_relations

RELATIONS = 1_000_000
PROJECT = "plans-1m"


def scans(plan: dict[str, Any]) -> list[tuple[str, str]]:
    """(node type, relation name) for every scan node of a JSON plan."""
    found = []
    if "Relation Name" in plan:
        found.append((plan["Node Type"], plan["Relation Name"]))
    for child in plan.get("Plans", []):
        found.extend(scans(child))
    return found


@pytest.fixture(scope="module")
async def seeded(db: Database) -> str:
    await seed_relations(db, project=PROJECT, relations=RELATIONS)
    return PROJECT


def cases(project: str) -> dict[str, tuple[str, tuple[Any, ...]]]:
    parent = uuid.UUID(parent_of(project, 7))
    child = uuid.UUID(child_of(project, 11))
    ids = [uuid.UUID(child_of(project, index)) for index in range(50)]
    return {
        "referenced": (queries.REFERENCED, (project, ids)),
        "child-dependency": (queries.BY_CHILD + " LIMIT 100", (project, child, None, True)),
        "child": (queries.BY_CHILD + " LIMIT 100", (project, child, None, False)),
        "related": (queries.RELATED + " LIMIT 100", (project, parent)),
        "parent": (queries.BY_PARENT + " LIMIT 100", (project, parent, None)),
        "parent-of-type": (queries.BY_PARENT + " LIMIT 100", (project, parent, "umbMedia")),
        "by-id": (queries.GET, (project, 12345)),
    }


@pytest.mark.parametrize("mode", ["force_custom_plan", "force_generic_plan"])
@pytest.mark.parametrize(
    "name", ["referenced", "child-dependency", "child", "related", "parent", "parent-of-type", "by-id"]
)
async def test_index_scans_at_a_million(db: Database, seeded: str, mode: str, name: str) -> None:
    assert await db.fetchval("SELECT count(*) FROM relation WHERE project = $1", seeded) >= RELATIONS * 0.99
    sql, args = cases(seeded)[name]
    async with db.transaction():
        await db.execute(f"SET LOCAL plan_cache_mode = {mode}")
        raw = await db.fetchval("EXPLAIN (FORMAT JSON) " + sql, *args)
    plan = json.loads(raw)[0]["Plan"]
    relation_scans = [node for node, table in scans(plan) if table == "relation"]
    assert relation_scans, plan
    assert all(node in ("Index Scan", "Index Only Scan", "Bitmap Heap Scan") for node in relation_scans), plan
