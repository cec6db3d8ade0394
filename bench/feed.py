"""The change feed under load (issue 13): commit-to-consumer lag of a long-polling consumer during the
32-client mixed load, and what the change log costs POST /relation (its triggers on and off, in
alternating runs)."""

from __future__ import annotations

import asyncio
import datetime
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
import httpx

from bench.load import Result

TRIGGERS = (
    "relation_logged_insert",
    "relation_logged_delete",
    "relation_logged_update",
)


def _occurred(text: str) -> float:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


class Consumer:
    """Follows the feed with `wait` on its own thread and event loop, noting each event's lag: the
    time it arrived minus its `occurredAt` (the commit, by the database's clock on this machine)."""

    def __init__(self, base_url: str, headers: dict[str, str]) -> None:
        self.base_url = base_url
        self.headers = headers
        self.lags_ms: list[float] = []
        self.ids: list[str] = []
        self.arrivals: dict[int, float] = {}  # relation id → when its relation.created arrived
        self.polls = 0
        self.stopping = threading.Event()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._follow()), daemon=True)

    async def _follow(self) -> None:
        async with httpx.AsyncClient(base_url=self.base_url, headers=self.headers, timeout=60) as http:
            cursor = (await http.get("/relation/changes", params={"since": "now"})).json()["cursor"]
            self.ready.set()
            while not self.stopping.is_set():
                response = await http.get(
                    "/relation/changes", params={"since": cursor, "wait": "1", "limit": "1000"}
                )
                arrived = time.time()
                page = response.json()
                self.polls += 1
                for event in page["_embedded"]["changes"]:
                    self.lags_ms.append((arrived - _occurred(event["occurredAt"])) * 1000)
                    self.ids.append(event["id"])
                    if event["type"] == "relation.created":
                        self.arrivals[event["data"]["_id"]] = arrived
                cursor = page["cursor"]

    def __enter__(self) -> Consumer:
        self.thread.start()
        self.ready.wait(30)
        return self

    def __exit__(self, *exc: object) -> None:
        time.sleep(1.5)  # let the last commits arrive
        self.stopping.set()
        self.thread.join(10)

    def summary(self) -> dict[str, Any]:
        return {
            "events": len(self.lags_ms),
            "duplicates": len(self.ids) - len(set(self.ids)),
            "polls": self.polls,
            "p50_ms": percentile(self.lags_ms, 0.5),
            "p99_ms": percentile(self.lags_ms, 0.99),
            "max_ms": max(self.lags_ms, default=float("nan")),
            "mean_ms": statistics.fmean(self.lags_ms) if self.lags_ms else float("nan"),
        }


def lag(base_url: str, headers: dict[str, str], run_load: Callable[[], Result]) -> dict[str, Any]:
    """The consumer's lag while `run_load` (the mixed load) runs, and without load (one POST every
    20 ms from this process): the feed's own latency, apart from a saturated worker's queue."""
    with Consumer(base_url, headers) as consumer:
        result = run_load()
    with Consumer(base_url, headers) as quiet:
        acknowledged = asyncio.run(_posts(base_url, headers, QUIET_POSTS))
    # From the writer's acknowledgement (after the commit and its disk flush) to the consumer.
    after_ack = [
        (quiet.arrivals[key] - at) * 1000 for key, at in acknowledged.items() if key in quiet.arrivals
    ]
    return {
        **consumer.summary(),
        "load_rps": result.rps,
        "quiet": {
            **quiet.summary(),
            "ack_p50_ms": percentile(after_ack, 0.5),
            "ack_p99_ms": percentile(after_ack, 0.99),
            "missing": len(acknowledged) - len(after_ack),
        },
    }


QUIET_POSTS = 100


async def _posts(base_url: str, headers: dict[str, str], count: int) -> dict[int, float]:
    """`count` POSTs one after another; when each was acknowledged, by relation id."""
    acknowledged: dict[int, float] = {}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30) as http:
        for _ in range(count):
            body = {
                "parentId": str(uuid.uuid4()),
                "childId": str(uuid.uuid4()),
                "relationTypeAlias": "umbDocument",
            }
            response = (await http.post("/relation", json=body)).raise_for_status()
            acknowledged[response.json()["_id"]] = time.time()
            await asyncio.sleep(0.02)
    return acknowledged


async def _set_triggers(dsn: str, options: dict[str, Any], enabled: bool) -> None:
    connection = await asyncpg.connect(dsn, **options)
    try:
        verb = "ENABLE" if enabled else "DISABLE"
        for trigger in TRIGGERS:
            await connection.execute(f"ALTER TABLE relation {verb} TRIGGER {trigger}")
    finally:
        await connection.close()


def log_cost(
    dsn: str, options: dict[str, Any], run_post: Callable[[str], Result], rounds: int = 3
) -> tuple[Result, Result]:
    """POST /relation with the change log's triggers on and off, alternating; each side's best run."""
    best: dict[bool, Result] = {}
    try:
        for _ in range(rounds):
            for enabled in (True, False):
                asyncio.run(_set_triggers(dsn, options, enabled))
                result = run_post("post logged" if enabled else "post unlogged")
                if enabled not in best or result.rps > best[enabled].rps:
                    best[enabled] = result
    finally:
        asyncio.run(_set_triggers(dsn, options, True))
    return best[True], best[False]
