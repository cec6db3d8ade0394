"""Pure ASGI middleware (no BaseHTTPMiddleware: this runs on every request and is benchmarked):
request ids, the access log and metrics; forwarded headers from trusted proxies; NUL in URLs; CORS.

Every answer produced here is rendered in the error envelope, like the handlers' own."""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import time
from collections.abc import Sequence
from typing import Any

import orjson
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service import jsonapi, messages, metrics
from service.errors import ApiError, BadRequest
from service.hal import HalResponse
from service.settings import InvalidSetting

access_log = logging.getLogger("service.access")

REQUEST_ID_HEADER = "X-Request-Id"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
_FORWARDED_HOST = re.compile(r"(?:[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?")
# Headers a browser may send and read cross-origin (CORS).
REQUEST_HEADERS = (
    "Accept",
    "Api-Key",
    "Api-Version",
    "Authorization",
    "Content-Type",
    "Idempotency-Key",
    "If-Match",
    "Umb-Project-Alias",
    REQUEST_ID_HEADER,
)
EXPOSED_HEADERS = (
    "ETag",
    "Location",
    "Retry-After",
    "Idempotent-Replayed",
    "RateLimit",
    "RateLimit-Policy",
    REQUEST_ID_HEADER,
)


def error_response(error: ApiError, scope: Scope | None = None) -> Response:
    """The error in SPEC §3's envelope, or as a JSON:API error document when the request speaks
    JSON:API (`scope` given: every answer made for a request should give it)."""
    if scope is not None and jsonapi.speaks_json_api(scope):
        return jsonapi.error_response(error)
    return HalResponse(error.body(), status_code=error.status, headers=error.headers or None)


def request_id(scope: Scope) -> str:
    """The caller's X-Request-Id when it is sane, else a new one (random, not a UUID: cheaper)."""
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            given: str = value.decode("latin-1")
            if _SANE_REQUEST_ID.fullmatch(given):
                return given
            break
    return os.urandom(16).hex()


def route_template(scope: Scope) -> str:
    """The matched route's path template (`/relation/{id}`): a bounded label, unlike the path."""
    route = scope.get("route")
    return route.path_format if isinstance(route, Route) else metrics.UNMATCHED


def route_name(scope: Scope) -> str | None:
    """The matched operation's name (`relations:get`); a route of several methods names each."""
    route = scope.get("route")
    name_for = getattr(route, "name_for", None)
    return name_for(scope["method"]) if name_for else getattr(route, "name", None)


class Observe:
    """Outermost: gives each request an id (echoed in `X-Request-Id`), then counts it, times it and
    writes one JSON access-log line, whatever the answer, a crash included."""

    def __init__(self, app: ASGIApp, *, log_requests: bool = True) -> None:
        self.app = app
        self.log_requests = log_requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        rid = request_id(scope)
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = rid
        id_header = (b"x-request-id", rid.encode())
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                # The RateLimit fields the rate-limit step left for this answer (SPEC §13), whatever
                # produced it: the handler, an error, or a crash.
                message["headers"] = [*message.get("headers", ()), id_header, *state.get("rate_limit", ())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            route = route_template(scope)
            metrics.observe(scope["method"], route, status, seconds)
            if self.log_requests and access_log.isEnabledFor(logging.INFO):
                client = scope.get("client")
                line = orjson.dumps(
                    {
                        "method": scope["method"],
                        "route": route,
                        "name": route_name(scope),
                        "path": scope["path"][:200],
                        "status": status,
                        "duration_ms": round(seconds * 1000, 3),
                        "project": state.get("project"),
                        "request_id": rid,
                        "client": client[0] if client else None,
                    }
                ).decode()
                # A record made directly skips logging's caller lookup (a third of the cost per line).
                access_log.handle(access_log.makeRecord(access_log.name, logging.INFO, "", 0, line, (), None))


def _network(item: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(item, strict=False)
    except ValueError:
        raise InvalidSetting(f"RELATIONS_TRUSTED_PROXIES: {item!r} is not an IP address or network") from None


class TrustedProxies:
    """Behind a TLS-terminating proxy: take the scheme (X-Forwarded-Proto), host (X-Forwarded-Host)
    and client address (X-Forwarded-For) from the headers, but only when the connection comes from a
    trusted proxy address or network (`*` trusts any). Links are then built from the original URL."""

    def __init__(self, app: ASGIApp, *, trusted: Sequence[str]) -> None:
        self.app = app
        self.trust_all = "*" in trusted
        self.networks = [_network(item) for item in trusted if item != "*"]
        self._verdicts: dict[str, bool] = {}

    def trusts(self, host: str) -> bool:
        if self.trust_all:
            return True
        verdict = self._verdicts.get(host)
        if verdict is None:
            try:
                address = ipaddress.ip_address(host)
                verdict = any(address in network for network in self.networks)
            except ValueError:
                verdict = False
            if len(self._verdicts) > 10_000:
                self._verdicts.clear()
            self._verdicts[host] = verdict
        return verdict

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            client = scope.get("client")
            if client and self.trusts(client[0]):
                self.apply(scope)
        await self.app(scope, receive, send)

    def apply(self, scope: Scope) -> None:
        proto = host = forwarded_for = None
        for name, value in scope["headers"]:
            if name == b"x-forwarded-proto":
                proto = value.decode("latin-1").split(",")[0].strip().lower()
            elif name == b"x-forwarded-host":
                host = value.decode("latin-1").split(",")[0].strip()
            elif name == b"x-forwarded-for":
                forwarded_for = value.decode("latin-1")
        if proto in ("http", "https"):
            scope["scheme"] = proto
        if host and _FORWARDED_HOST.fullmatch(host):
            others = [(name, value) for name, value in scope["headers"] if name != b"host"]
            scope["headers"] = [*others, (b"host", host.encode("latin-1"))]
        if forwarded_for:
            # The nearest address that is not one of our proxies is the client.
            hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
            for hop in reversed(hops):
                if not self.trusts(hop) or hop == hops[0]:
                    scope["client"] = (hop[:64], 0)
                    break


class TrailingSlash:
    """`/relation/` is `/relation` (Heartcore's documentation posts there): trailing slashes are
    dropped before routing — however many, so no path is left for Starlette's `redirect_slashes`
    (switched off in service/app.py too), whose 307 is no envelope, is built from the Host header,
    and is replayed differently (or not at all) by clients for a POST."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and len(scope["path"]) > 1 and scope["path"].endswith("/"):
            scope["path"] = scope["path"].rstrip("/") or "/"
            raw = scope.get("raw_path")
            if isinstance(raw, bytes) and raw.endswith(b"/"):
                scope["raw_path"] = raw.rstrip(b"/") or b"/"
        await self.app(scope, receive, send)


class RefuseNul:
    """NUL in the URL is refused at once (PostgreSQL cannot store it). The body's size is limited where
    it is read, once: the pipeline's body step (service/pipeline.py)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and ("\x00" in scope["path"] or b"%00" in scope["query_string"]):
            await error_response(BadRequest(messages.NUL_IN_URL), scope)(scope, receive, send)
            return
        await self.app(scope, receive, send)


class Cors(CORSMiddleware):
    """Starlette's CORS, with a refused preflight answered in the error envelope."""

    def __init__(self, app: ASGIApp, *, origins: Sequence[str]) -> None:
        super().__init__(
            app,
            allow_origins=list(origins),
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=list(REQUEST_HEADERS),
            expose_headers=list(EXPOSED_HEADERS),
            max_age=600,
        )

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        failures = bytes(response.body).decode().removeprefix("Disallowed CORS ")
        return error_response(BadRequest(messages.CORS_DISALLOWED.format(failures=failures)))
