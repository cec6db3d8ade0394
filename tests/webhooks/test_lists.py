"""The webhook lists by keyset cursor (SPEC §8, service/webhooks/routes.py): `next`/`prev` cursor links
and the Link header, a deep cursor step at 12,000 deliveries against an ordered SQL read, `?page=` as
before, cursors of another list or project refused with 400, totals from the delivery counter, and
plans that read an index range with no sort and no count."""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from service import messages
from service.db import Database
from service.webhooks import queries
from tests.conftest import MakeProject, Project, error_of
from tests.webhooks.helpers import add_delivery, create_webhook

URL = "https://hooks.example.org/relations"
DELIVERIES = 12_000
PAGE = 1_000
# Deliveries as the dispatcher queues them, many in one statement.
LOAD = """
INSERT INTO webhook_delivery (project, webhook_id, event_id, event_type, body)
SELECT $1, $2, 'evt-' || g, 'relation.created', '{}' FROM generate_series(1, $3) AS g"""
NEWEST_FIRST = """
SELECT id FROM webhook_delivery WHERE project = $1 AND webhook_id = $2 ORDER BY id DESC OFFSET $3 LIMIT $4"""


def cursor_of(href: str) -> str:
    return dict(parse_qsl(urlsplit(href).query))["cursor"]


async def get(client: httpx.AsyncClient, project: Project, href: str) -> dict[str, Any]:
    response = await client.get(href, headers=project.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def loaded_webhook(client: httpx.AsyncClient, db: Database, project: Project, count: int) -> str:
    """A disabled webhook (no sender claims its deliveries) with `count` deliveries; its id."""
    hook_id: str = (await create_webhook(client, project, URL, enabled=False)).json()["id"]
    await db.execute(LOAD, project.alias, uuid.UUID(hook_id), count)
    return hook_id


async def test_the_webhook_list_walks_by_cursor(client: httpx.AsyncClient, project: Project) -> None:
    ids = [(await create_webhook(client, project, f"{URL}/{n}")).json()["id"] for n in range(5)]
    first = await client.get("/webhook?pageSize=2", headers=project.headers)
    assert 'rel="next"' in first.headers["link"] and 'rel="first"' in first.headers["link"]
    seen, body = [], first.json()
    while True:
        seen += [item["id"] for item in body["_embedded"]["webhooks"]]
        if "next" not in body["_links"]:
            break
        assert "cursor=" in body["_links"]["next"]["href"]
        body = await get(client, project, body["_links"]["next"]["href"])
    assert seen == ids  # oldest first, as before
    assert (body["_page"], body["_totalItems"], body["_totalPages"]) == (3, 5, 3)
    back = await get(client, project, body["_links"]["prev"]["href"])
    assert [item["id"] for item in back["_embedded"]["webhooks"]] == ids[2:4]
    assert back["_page"] == 2
    numbered = await get(client, project, "/webhook?page=2&pageSize=2")
    assert numbered["_embedded"]["webhooks"] == back["_embedded"]["webhooks"]


async def test_a_deep_delivery_cursor_step_reads_the_rows_sql_orders(
    client: httpx.AsyncClient, db: Database, project: Project
) -> None:
    hook_id = await loaded_webhook(client, db, project, DELIVERIES)
    href: str | None = f"/webhook/{hook_id}/deliveries?pageSize={PAGE}"
    pages = []
    while href is not None:
        body = await get(client, project, href)
        pages.append(body)
        found = body["_links"].get("next")
        href = found["href"] if found else None
    assert len(pages) == DELIVERIES // PAGE
    last = pages[-1]
    assert (last["_page"], last["_totalItems"], last["_totalPages"]) == (12, DELIVERIES, 12)
    deep = (DELIVERIES // PAGE - 1) * PAGE
    expected = await db.fetch(NEWEST_FIRST, project.alias, uuid.UUID(hook_id), deep, PAGE)
    assert [item["id"] for item in last["_embedded"]["deliveries"]] == [row["id"] for row in expected]
    # The same rows by number, and `prev` from the deep page is the page before it.
    numbered = await get(client, project, f"/webhook/{hook_id}/deliveries?page=12&pageSize={PAGE}")
    assert numbered["_embedded"] == last["_embedded"]
    back = await get(client, project, last["_links"]["prev"]["href"])
    assert back["_embedded"] == pages[-2]["_embedded"] and back["_page"] == 11


async def test_bad_cursors_are_400(
    client: httpx.AsyncClient, db: Database, project: Project, make_project: MakeProject
) -> None:
    hook_id = await loaded_webhook(client, db, project, 5)
    other_hook = await loaded_webhook(client, db, project, 5)
    other = await make_project()
    foreign_hook = await loaded_webhook(client, db, other, 5)
    for owner in (project, other, other):  # a second page of /webhook in both projects
        await create_webhook(client, owner, URL)

    async def next_cursor(owner: Project, path: str) -> str:
        return cursor_of((await get(client, owner, f"{path}?pageSize=2"))["_links"]["next"]["href"])

    mine = f"/webhook/{hook_id}/deliveries"
    cursor = await next_cursor(project, mine)
    tampered = ("A" if cursor[0] != "A" else "B") + cursor[1:]
    malformed = messages.CURSOR_MALFORMED.format(name="cursor")
    foreign = messages.CURSOR_FOREIGN.format(name="cursor")
    cases = [
        (mine, tampered, foreign),
        (mine, cursor[:-4], malformed),
        (mine, "garbage", malformed),
        (mine, await next_cursor(project, f"/webhook/{other_hook}/deliveries"), foreign),
        (mine, await next_cursor(other, f"/webhook/{foreign_hook}/deliveries"), foreign),
        ("/webhook", await next_cursor(other, "/webhook"), foreign),
        ("/webhook", cursor, foreign),
    ]
    for path, given, message in cases:
        response = await client.get(f"{path}?pageSize=2&cursor={given}", headers=project.headers)
        assert response.status_code == 400, (path, given, response.text)
        assert error_of(response) == {"code": "BadRequest", "message": message}
    other_size = await client.get(f"{mine}?pageSize=3&cursor={cursor}", headers=project.headers)
    assert error_of(other_size) == {"code": "BadRequest", "message": foreign}


async def test_the_delivery_total_is_a_counter(
    client: httpx.AsyncClient, db: Database, project: Project
) -> None:
    hook_id = await loaded_webhook(client, db, project, 3)
    hook = uuid.UUID(hook_id)
    await add_delivery(db, project.alias, hook, event_id="one-more")
    await db.execute("DELETE FROM webhook_delivery WHERE project = $1 AND event_id = 'evt-2'", project.alias)
    body = await get(client, project, f"/webhook/{hook_id}/deliveries")
    assert body["_totalItems"] == len(body["_embedded"]["deliveries"]) == 3
    counted = "SELECT size FROM webhook_delivery_count WHERE project = $1 AND webhook_id = $2"
    assert await db.fetchval(counted, project.alias, hook) == 3
    assert (await client.delete(f"/webhook/{hook_id}", headers=project.headers)).status_code == 200
    assert await db.fetchval(counted, project.alias, hook) is None  # it goes with its webhook


def nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    found = [plan]
    for child in plan.get("Plans", []):
        found.extend(nodes(child))
    return found


async def explain(db: Database, mode: str, sql: str, args: tuple[Any, ...], *, no_seqscan: bool) -> list[Any]:
    async with db.transaction():
        await db.execute(f"SET LOCAL plan_cache_mode = {mode}")
        if no_seqscan:
            await db.execute("SET LOCAL enable_seqscan = off")
        raw = await db.fetchval("EXPLAIN (FORMAT JSON) " + sql, *args)
    return nodes(json.loads(raw)[0]["Plan"])


def assert_index_range(every: list[dict[str, Any]], table: str, name: str) -> None:
    """The list's rows come from index scans of `table`, unsorted and uncounted."""
    scans = [n for n in every if n.get("Relation Name") == table and "Scan" in n["Node Type"]]
    assert scans and all(n["Node Type"] in ("Index Scan", "Index Only Scan") for n in scans), (name, every)
    for node in every:
        below = [n for n in nodes(node) if n.get("Relation Name") == table]
        listed = node["Node Type"] in ("Sort", "Incremental Sort", "Aggregate", "WindowAgg")
        assert not (listed and below), (name, node)


@pytest.mark.parametrize("mode", ["force_custom_plan", "force_generic_plan"])
async def test_list_statements_read_an_index_range(
    client: httpx.AsyncClient, db: Database, project: Project, mode: str
) -> None:
    hook_id = uuid.UUID(await loaded_webhook(client, db, project, DELIVERIES))
    await db.execute("ANALYZE webhook_delivery")
    forward, backward = queries.DELIVERIES
    deep = (10**12,)
    cases = {
        "deliveries/page-1": (forward, (project.alias, hook_id, *queries.DELIVERIES_START, PAGE + 1, 0)),
        "deliveries/next": (forward, (project.alias, hook_id, *deep, PAGE + 1, 0)),
        "deliveries/prev": (backward, (project.alias, hook_id, *deep, PAGE + 1, 0)),
    }
    for name, (sql, args) in cases.items():
        assert_index_range(await explain(db, mode, sql, args, no_seqscan=False), "webhook_delivery", name)
    # A project holds at most 100 webhooks, so on a small table the planner may rightly read it whole;
    # without that choice the list's order is an index range (webhook_by_created), with no sort.
    key = ("2026-12-01T10:00:00.123456+00:00", str(uuid.UUID(int=7)))
    webhook_forward, webhook_backward = queries.LIST
    for name, sql, start in (
        ("webhooks/page-1", webhook_forward, queries.START),
        ("webhooks/next", webhook_forward, key),
        ("webhooks/prev", webhook_backward, key),
    ):
        every = await explain(db, mode, sql, (project.alias, *start, 3, 0), no_seqscan=True)
        assert_index_range([n for n in every if n["Node Type"] != "Aggregate"], "webhook", name)
        assert any(n.get("Index Name") == "webhook_by_created" for n in every), (name, every)
