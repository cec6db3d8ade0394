"""The prune's statements are served by indexes (no sequential scan, no sort of the whole log), with
custom and generic plans: every batch costs the same however long the log is."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest

from service.changes import queries
from service.db import Database
from tests.test_query_plans import scans


def nodes(plan: dict[str, Any]) -> list[str]:
    return [plan["Node Type"], *(node for child in plan.get("Plans", []) for node in nodes(child))]


@pytest.mark.parametrize("mode", ["force_custom_plan", "force_generic_plan"])
@pytest.mark.parametrize("name", ["oldest", "delete-events"])
async def test_prune_statements_use_indexes(db: Database, mode: str, name: str) -> None:
    sql, args = {
        "oldest": (queries.OLDEST, (100, datetime.datetime.now(datetime.UTC))),
        "delete-events": (queries.DELETE_EVENTS, ("some-project", 42, 5000)),
    }[name]
    async with db.transaction():
        await db.execute(f"SET LOCAL plan_cache_mode = {mode}")
        await db.execute("SET LOCAL enable_seqscan = off")
        raw = await db.fetchval("EXPLAIN (FORMAT JSON) " + sql, *args)
    plan = json.loads(raw)[0]["Plan"]
    found = [(node, table) for node, table in scans(plan) if node.endswith("Scan")]
    assert found, plan
    assert all(node in ("Index Scan", "Index Only Scan") for node, _ in found), plan
    assert "Sort" not in nodes(plan), plan
