"""Webhooks under load (issue 13): commit-to-receiver lag of one webhook, subscribed to every event,
delivering to a receiver on 127.0.0.1 while the 32-client mixed load runs. The lag of an event is the
time its request arrived minus its body's `timestamp` (the commit, by the database's clock on this
machine). Every request's `webhook-id` is noted, so repeats are counted."""

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
import orjson
from standardwebhooks import Webhook

from bench.feed import percentile
from bench.load import Result
from bench.receiver import Received, Receiver


def _committed(text: str) -> float:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class Receiving:
    """The receiver on a thread of its own (its own event loop), and the webhook pointing at it."""

    def __init__(self, base_url: str, headers: dict[str, str], database: tuple[str, dict[str, Any]]) -> None:
        self.base_url = base_url
        self.headers = headers
        self.database = database
        self.stages: dict[str, float] = {}
        self.lags_ms: list[float] = []
        self.ids: list[str] = []
        self.first: Received | None = None
        self.secret = ""
        self.webhook = ""
        self.ready = threading.Event()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)

    async def _answer(self, request: Received) -> int:
        self.lags_ms.append((request.at - _committed(orjson.loads(request.body)["timestamp"])) * 1000)
        self.ids.append(request.headers["webhook-id"])
        self.first = self.first or request
        return 204

    async def _serve(self) -> None:
        client = httpx.AsyncClient(base_url=self.base_url, headers=self.headers, timeout=30)
        async with Receiver(self._answer).running() as receiver, client as http:
            made = await http.post("/webhook", json={"url": receiver.url, "description": "bench"})
            made.raise_for_status()
            self.secret, self.webhook = made.json()["secret"], made.json()["id"]
            self.ready.set()
            await asyncio.to_thread(self.stopping.wait)
            self.stages = await stages(*self.database, webhook=self.webhook)
            await http.delete(f"/webhook/{self.webhook}")

    def __enter__(self) -> Receiving:
        self.thread.start()
        if not self.ready.wait(30):
            raise RuntimeError("the webhook for the benchmark could not be created")
        return self

    def __exit__(self, *exc: object) -> None:
        time.sleep(2)  # the last commits' deliveries
        self.stopping.set()
        self.thread.join(10)

    def summary(self) -> dict[str, Any]:
        verified = False
        if self.first is not None:
            Webhook(self.secret).verify(self.first.body.decode(), self.first.headers)
            verified = True
        return {
            "deliveries": len(self.lags_ms),
            "duplicates": len(self.ids) - len(set(self.ids)),
            "verified": verified,
            "p50_ms": percentile(self.lags_ms, 0.5),
            "p99_ms": percentile(self.lags_ms, 0.99),
            "max_ms": max(self.lags_ms, default=float("nan")),
            "mean_ms": statistics.fmean(self.lags_ms) if self.lags_ms else float("nan"),
        }


# Where a delivery's time goes, from its row (p50 of each step, ms): the commit (the body's timestamp)
# to its row (queued by the dispatcher), to its last attempt (claimed by a sender and sent), to its
# outcome's write (the answer and the statement that records it).
STAGES = """
SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY queued) AS "commit to queued",
       percentile_cont(0.5) WITHIN GROUP (ORDER BY claimed) AS "queued to sent",
       percentile_cont(0.5) WITHIN GROUP (ORDER BY recorded) AS "sent to recorded"
FROM (SELECT extract(epoch FROM created_at - (body::jsonb ->> 'timestamp')::timestamptz) * 1000 AS queued,
             extract(epoch FROM last_attempt_at - created_at) * 1000 AS claimed,
             extract(epoch FROM delivered_at - last_attempt_at) * 1000 AS recorded
      FROM webhook_delivery WHERE webhook_id = $1 AND state = 'delivered') AS steps
"""


async def stages(dsn: str, options: dict[str, Any], *, webhook: str) -> dict[str, float]:
    connection = await asyncpg.connect(dsn, **options)
    try:
        row = await connection.fetchrow(STAGES, uuid.UUID(webhook))
    finally:
        await connection.close()
    return {name: float(value) for name, value in row.items() if value is not None}


IDLE_CHANGES = 20


def _idle_changes(base_url: str, headers: dict[str, str]) -> None:
    """One relation at a time, with pauses: the lag of a change when nothing else is going on."""
    with httpx.Client(base_url=base_url, headers=headers, timeout=30) as http:
        for _ in range(IDLE_CHANGES):
            body = {
                "parentId": str(uuid.uuid4()),
                "childId": str(uuid.uuid4()),
                "relationTypeAlias": "umbDocument",
            }
            http.post("/relation", json=body).raise_for_status()
            time.sleep(0.2)


def lag(
    base_url: str,
    headers: dict[str, str],
    writer: dict[str, str],
    run_load: Callable[[], Result],
    database: tuple[str, dict[str, Any]],
) -> dict[str, Any]:
    """The webhook's commit-to-receiver lag while `run_load` (the mixed load) runs, and then of single
    changes with the service otherwise idle (`writer`: headers of a key that may create relations);
    `stages`: where the deliveries' time went, read from their rows (`database`: dsn and options)."""
    with Receiving(base_url, headers, database) as receiving:
        result = run_load()
        time.sleep(3)  # the backlog of the load drains
        loaded = receiving.summary()
        receiving.lags_ms.clear()
        _idle_changes(base_url, writer)
    idle = receiving.summary()
    return {
        **loaded,
        "load_rps": result.rps,
        "idle_deliveries": idle["deliveries"],
        "idle_p50_ms": idle["p50_ms"],
        "idle_max_ms": idle["max_ms"],
        "stages_p50_ms": receiving.stages,
    }
