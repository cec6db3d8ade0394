"""Liveness and readiness: no authentication, no version check."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service.db import Database
from service.errors import ServiceUnavailable
from service.hal import HalResponse
from service.replicas import describe


async def live(request: Request) -> Response:
    return HalResponse({"status": "live"})


async def ready(request: Request) -> Response:
    """Ready when the primary answers; the replicas are reported (a replica that is down is skipped by
    reads, so it does not make the worker unready)."""
    db: Database = request.app.state.db
    if not await db.ping():
        raise ServiceUnavailable()
    body: dict[str, object] = {"status": "ready"}
    if db.replicas:
        now = time.monotonic()
        body["replicas"] = [describe(replica, now) for replica in db.replicas]
    return HalResponse(body)


routes = [
    Route("/health/live", live, methods=["GET"], name="health:live"),
    Route("/health/ready", ready, methods=["GET"], name="health:ready"),
]
