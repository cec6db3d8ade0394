"""One tenant's burst against one list (issue 11's reproduction, at load): rounds of 20 PATCH connects
with an Idempotency-Key each and 5 plain ones, all at once, to one list of one project, while another
project reads `GET /relation/type/umbDocument` in a loop. Every edit must answer 200, and the other
project's reads must stay as fast as without the burst (edits of one list take the list's queue before
a pooled connection, so the burst holds one connection at a time)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from typing import Any

import httpx

ROUNDS = 5
KEYED, PLAIN = 20, 5
TYPE = "umbDocument"


def _quantile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


async def _reads(http: httpx.AsyncClient, key: str, until: asyncio.Event, samples: list[float]) -> None:
    while not until.is_set():
        started = time.perf_counter()
        response = await http.get(f"/relation/type/{TYPE}", headers={"Api-Key": key})
        samples.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            samples.append(float("inf"))


async def _measure(base_url: str, edit_key: str, read_key: str) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=KEYED + PLAIN + 4)
    async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits) as http:
        idle: list[float] = []
        done = asyncio.Event()
        reader = asyncio.create_task(_reads(http, read_key, done, idle))
        await asyncio.sleep(2)
        done.set()
        await reader
        statuses: Counter[int] = Counter()
        edit_ms: list[float] = []
        busy: list[float] = []
        for _ in range(ROUNDS):
            parent = uuid.uuid4()
            done = asyncio.Event()
            reader = asyncio.create_task(_reads(http, read_key, done, busy))

            async def edit(n: int, parent: uuid.UUID = parent) -> None:
                headers = {"Api-Key": edit_key}
                if n < KEYED:
                    headers["Idempotency-Key"] = uuid.uuid4().hex
                started = time.perf_counter()
                try:
                    response = await http.patch(
                        f"/relation/parent/{parent}/{TYPE}",
                        json={"connect": [str(uuid.uuid4())]},
                        headers=headers,
                    )
                    statuses[response.status_code] += 1
                except httpx.HTTPError:
                    statuses[0] += 1
                edit_ms.append((time.perf_counter() - started) * 1000)

            await asyncio.gather(*(edit(n) for n in range(KEYED + PLAIN)))
            done.set()
            await reader
    return {
        "statuses": dict(statuses),
        "ok": set(statuses) == {200},
        "edit_max_ms": max(edit_ms),
        "read_idle_p50_ms": _quantile(idle, 0.5),
        "read_busy_p50_ms": _quantile(busy, 0.5),
        "read_busy_p99_ms": _quantile(busy, 0.99),
    }


def run(base_url: str, edit_key: str, read_key: str) -> dict[str, Any]:
    result = asyncio.run(_measure(base_url, edit_key, read_key))
    result["summary"] = [
        f"contention: {ROUNDS} rounds of {KEYED} keyed + {PLAIN} plain PATCH connects to one list at once: "
        f"statuses {result['statuses']}, slowest edit {result['edit_max_ms']:.0f} ms; another project's "
        f"GET /relation/type/{TYPE}: p50 {result['read_idle_p50_ms']:.1f} ms idle, "
        f"{result['read_busy_p50_ms']:.1f} ms (p99 {result['read_busy_p99_ms']:.1f} ms) during the bursts"
    ]
    return result
