"""Load test for reliability (issue 8): 32 concurrent clients mix creates, list edits, deletes and reads
for a bounded time, first all on one list, then spread over many lists. Afterwards: no 5xx, and the
database holds exactly the acknowledged writes.

Each client only adds new children (fresh guids it owns) and only removes its own, one request at a
time, so the expected content of every list is known client-side: acknowledged adds minus acknowledged
removes. A request that got no answer (timeout, dropped connection) leaves its item "uncertain": either
outcome is accepted. Within a list, the children one client appended appear in the order they were
acknowledged (appends never overtake each other)."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.seed import LOAD_PROJECT
from service.schema import connect

TYPE = "umbDocument"
CLIENTS = 32


@dataclass
class Item:
    parent: uuid.UUID
    client: int
    seq: int
    relation_id: int | None = None


@dataclass
class Tally:
    ops: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    present: dict[uuid.UUID, Item] = field(default_factory=dict)  # acknowledged, not removed
    uncertain: set[uuid.UUID] = field(default_factory=set)
    seq: int = 0

    def note(self, op: str, response: httpx.Response | None, expected: int) -> bool:
        self.ops[op] += 1
        if response is None:
            self.statuses[0] += 1
            return False
        self.statuses[response.status_code] += 1
        if response.status_code != expected and len(self.unexpected) < 20:
            self.unexpected.append(f"{op} -> {response.status_code} {response.text[:200]}")
        return response.status_code == expected


async def _send(http: httpx.AsyncClient, method: str, path: str, body: Any = None) -> httpx.Response | None:
    try:
        return await http.request(method, path, json=body)
    except httpx.HTTPError:
        return None


async def _client(
    number: int, http: httpx.AsyncClient, parents: list[uuid.UUID], lists: bool, until: float, tally: Tally
) -> None:
    rng = random.Random(number)
    mine: dict[uuid.UUID, list[uuid.UUID]] = {parent: [] for parent in parents}
    while time.monotonic() < until:
        parent = rng.choice(parents)
        owned = mine[parent]
        list_path = f"/relation/parent/{parent}/{TYPE}"
        roll = rng.random()
        if roll < 0.35 or (roll < 0.6 and not lists):
            child = uuid.uuid4()
            tally.seq += 1
            item = Item(parent, number, tally.seq)
            body = {"parentId": str(parent), "childId": str(child), "relationTypeAlias": TYPE}
            response = await _send(http, "POST", "/relation", body)
            if tally.note("create", response, 201):
                assert response is not None
                item.relation_id = response.json()["_id"]
                tally.present[child] = item
                owned.append(child)
            elif response is None or response.status_code >= 500:
                tally.uncertain.add(child)
        elif roll < 0.5 and lists:
            child = uuid.uuid4()
            tally.seq += 1
            item = Item(parent, number, tally.seq)
            response = await _send(http, "PATCH", list_path, {"connect": [str(child)]})
            if tally.note("connect", response, 200):
                tally.present[child] = item
                owned.append(child)
            elif response is None or response.status_code >= 500:
                tally.uncertain.add(child)
        elif roll < 0.6 and lists and owned:
            child = owned.pop(rng.randrange(len(owned)))
            response = await _send(http, "PATCH", list_path, {"disconnect": [str(child)]})
            if tally.note("disconnect", response, 200):
                tally.present.pop(child)
            else:
                tally.uncertain.add(child)
        elif roll < 0.7 and any(tally.present[c].relation_id for c in owned):
            child = next(c for c in owned if tally.present[c].relation_id)
            owned.remove(child)
            response = await _send(http, "DELETE", f"/relation/{tally.present[child].relation_id}")
            if tally.note("delete", response, 200):
                tally.present.pop(child)
            else:
                tally.uncertain.add(child)
        elif lists and roll < 0.85:
            tally.note("read list", await _send(http, "GET", list_path), 200)
        else:
            tally.note("read parent", await _send(http, "GET", f"/relation/parent/{parent}"), 200)


async def _phase(base_url: str, key: str, parents: list[uuid.UUID], lists: bool, seconds: float) -> Tally:
    tally = Tally()
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with httpx.AsyncClient(
        base_url=base_url, headers={"Api-Key": key}, limits=limits, timeout=30
    ) as http:
        until = time.monotonic() + seconds
        await asyncio.gather(*(_client(n, http, parents, lists, until, tally) for n in range(CLIENTS)))
    return tally


async def _verify(db_url: str, tally: Tally, parents: list[uuid.UUID]) -> dict[str, Any]:
    connection = await connect(db_url)
    try:
        rows = await connection.fetch(
            "SELECT parent, child, position, id FROM relation WHERE project = $1 AND parent = ANY($2::uuid[])"
            " ORDER BY parent, type_alias, position, id",
            LOAD_PROJECT,
            parents,
        )
        duplicate_positions = await connection.fetchval(
            "SELECT count(*) FROM (SELECT 1 FROM relation WHERE project = $1 AND parent = ANY($2::uuid[])"
            " GROUP BY parent, type_alias, position HAVING count(*) > 1) AS d",
            LOAD_PROJECT,
            parents,
        )
    finally:
        await connection.close()
    actual = {row["child"] for row in rows}
    expected = set(tally.present)
    missing = expected - actual - tally.uncertain
    extra = actual - expected - tally.uncertain
    # Per list and client, the acknowledged appends must be in acknowledgement order.
    misordered = 0
    last: dict[tuple[uuid.UUID, int], int] = {}
    for row in rows:
        item = tally.present.get(row["child"])
        if item is None:
            continue
        slot = (item.parent, item.client)
        if last.get(slot, -1) > item.seq:
            misordered += 1
        last[slot] = item.seq
    return {
        "rows": len(rows),
        "expected": len(expected),
        "missing": len(missing),
        "unexpected_rows": len(extra),
        "uncertain": len(tally.uncertain),
        "misordered": misordered,
        "duplicate_positions": int(duplicate_positions),
    }


async def _clear(db_url: str) -> None:
    connection = await connect(db_url)
    try:
        await connection.execute("DELETE FROM relation WHERE project = $1", LOAD_PROJECT)
    finally:
        await connection.close()


def run(base_url: str, db_url: str, key: str, *, seconds: float, lists: bool, log: Any) -> dict[str, Any]:
    """Both phases; returns their figures, `ok`, and `summary` lines for the report."""
    results: dict[str, Any] = {"ok": True, "summary": []}
    for phase, count in (("one list", 1), ("100 lists", 100)):
        parents = [uuid.uuid4() for _ in range(count)]
        log(f"load test: {CLIENTS} clients, {phase}, {seconds:g} s")
        asyncio.run(_clear(db_url))
        started = time.monotonic()
        tally = asyncio.run(_phase(base_url, key, parents, lists, seconds))
        elapsed = time.monotonic() - started
        check = asyncio.run(_verify(db_url, tally, parents))
        server_errors = sum(n for status, n in tally.statuses.items() if status >= 500)
        no_answer = tally.statuses.get(0, 0)
        ok = (
            server_errors == 0
            and no_answer == 0
            and not tally.unexpected
            and check["missing"] == 0
            and check["unexpected_rows"] == 0
            and check["misordered"] == 0
            and check["duplicate_positions"] == 0
        )
        results["ok"] = results["ok"] and ok
        requests = sum(tally.ops.values())
        ops = ", ".join(f"{name} {n}" for name, n in sorted(tally.ops.items()))
        results[phase] = {**check, "requests": requests, "ops": dict(tally.ops), "5xx": server_errors,
                          "no_answer": no_answer, "statuses": {str(k): v for k, v in tally.statuses.items()},
                          "unexpected_answers": tally.unexpected, "ok": ok}  # fmt: skip
        results["summary"].append(
            f"load test, {CLIENTS} clients, {phase}: {requests:,} requests in {elapsed:.0f} s ({ops}); "
            f"5xx {server_errors}, no answer {no_answer}, other unexpected {len(tally.unexpected)}; "
            f"database: {check['rows']} rows, acknowledged {check['expected']}, missing {check['missing']}, "
            f"not acknowledged {check['unexpected_rows']}, misordered {check['misordered']}, "
            f"duplicate positions {check['duplicate_positions']} -> {'OK' if ok else 'FAILED'}"
        )
        for line in tally.unexpected[:5]:
            results["summary"].append(f"    unexpected: {line}")
    return results
