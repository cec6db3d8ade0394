"""Liveness and readiness: no authentication, no version check."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service.errors import ServiceUnavailable
from service.hal import HalResponse


async def live(request: Request) -> Response:
    return HalResponse({"status": "live"})


async def ready(request: Request) -> Response:
    if not await request.app.state.db.ping():
        raise ServiceUnavailable()
    return HalResponse({"status": "ready"})


routes = [
    Route("/health/live", live, methods=["GET"], name="health:live"),
    Route("/health/ready", ready, methods=["GET"], name="health:ready"),
]
