"""service/pipeline.py, each step on its own (a request built by hand, the next step a recorder), and
the order `steps_for` puts them in."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import Response

from service import messages, pipeline
from service.auth import READ, WRITE, Principal
from service.context import Context, Operation
from service.errors import BadRequest, Forbidden, PayloadTooLarge, TooManyRequests, Unauthorized
from service.idempotency.service import idempotent


async def _nothing(ctx: Context) -> Response:
    return Response("handled")


class Authenticator:
    def __init__(self, principal: Principal | None) -> None:
        self.principal = principal

    async def authenticate(self, headers: Mapping[str, str]) -> Principal:
        if self.principal is None:
            raise Unauthorized()
        return self.principal


class RateLimits:
    """No budget of its own: authenticates through the authenticator, refuses when `refuse`."""

    def __init__(self) -> None:
        self.refuse = False
        self.admitted: list[Principal] = []

    async def authenticate(
        self, request: Request, authenticator: Authenticator, headers: Mapping[str, str]
    ) -> Principal:
        return await authenticator.authenticate(headers)

    async def admit(self, request: Request, principal: Principal) -> None:
        if self.refuse:
            raise TooManyRequests()
        self.admitted.append(principal)


def make_ctx(
    method: str = "GET",
    headers: dict[str, str] | None = None,
    query: bytes = b"",
    body: bytes = b"",
    scope_needed: str = READ,
    principal: Principal | None = None,
    limit: int = 100,
) -> Context:
    app = SimpleNamespace(
        state=SimpleNamespace(
            authenticator=Authenticator(principal),
            rate_limits=RateLimits(),
            settings=SimpleNamespace(max_body_bytes=limit),
        )
    )
    raw = [(name.lower().encode(), value.encode()) for name, value in (headers or {}).items()]
    chunks = [body]

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": chunks.pop() if chunks else b"", "more_body": False}

    scope = {
        "type": "http",
        "method": method,
        "path": "/x",
        "headers": raw,
        "query_string": query,
        "app": app,
    }
    request = Request(scope, receive)
    op = Operation(method, _nothing, "t", scope_needed)
    return Context(request, op, pipeline.checked_headers(request))


class Next:
    """The next step: counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, ctx: Context) -> Response:
        self.calls += 1
        return Response("next")


SHOP = Principal("shop", frozenset({READ}))


@pytest.mark.parametrize(
    ("headers", "query"),
    [({"Api-Version": "3"}, b""), ({}, b"api-version=1"), ({"Accept": "application/json;v=9"}, b"")],
)
async def test_version_step_refuses_other_versions(headers: dict[str, str], query: bytes) -> None:
    following = Next()
    with pytest.raises(BadRequest):
        await pipeline.check_version(make_ctx(headers=headers, query=query), following)
    assert following.calls == 0


@pytest.mark.parametrize("headers", [{}, {"Api-Version": "2"}, {"Api-Version": "2.2"}])
async def test_version_step_passes_version_two(headers: dict[str, str]) -> None:
    following = Next()
    await pipeline.check_version(make_ctx(headers=headers), following)
    assert following.calls == 1


async def test_credentials_step_sets_the_principal_or_refuses() -> None:
    ctx = make_ctx(principal=SHOP)
    await pipeline.authenticate(ctx, Next())
    assert ctx.principal == SHOP
    with pytest.raises(Unauthorized):
        await pipeline.authenticate(make_ctx(principal=None), Next())


async def test_project_and_scope_step() -> None:
    ctx = make_ctx(principal=SHOP)
    ctx.principal = SHOP
    await pipeline.authorise(ctx, Next())
    assert ctx.project == "shop"
    other = make_ctx(headers={"Umb-Project-Alias": "other"})
    other.principal = SHOP
    with pytest.raises(Forbidden):
        await pipeline.authorise(other, Next())
    unscoped = make_ctx(scope_needed=WRITE)
    unscoped.principal = SHOP
    with pytest.raises(Forbidden):
        await pipeline.authorise(unscoped, Next())


async def test_rate_limit_step_admits_the_principal_or_refuses() -> None:
    ctx = make_ctx(principal=SHOP)
    ctx.principal = SHOP
    following = Next()
    await pipeline.rate_limit(ctx, following)
    limits = ctx.request.app.state.rate_limits
    assert (following.calls, limits.admitted) == (1, [SHOP])
    limits.refuse = True
    with pytest.raises(TooManyRequests):
        await pipeline.rate_limit(ctx, following)
    assert following.calls == 1


async def test_body_step_reads_once_within_the_limit() -> None:
    ctx = make_ctx("POST", body=b'{"a": 1}')
    await pipeline.read_body(ctx, Next())
    assert ctx.body == b'{"a": 1}'
    assert ctx.json() == {"a": 1}
    assert ctx.json() is ctx.json()  # parsed once
    with pytest.raises(PayloadTooLarge):
        await pipeline.read_body(make_ctx("POST", body=b"x" * 101), Next())
    declared = make_ctx("POST", headers={"Content-Length": "101"}, body=b"")
    with pytest.raises(PayloadTooLarge):
        await pipeline.read_body(declared, Next())


async def test_queue_step_runs_one_edit_of_a_resource_at_a_time() -> None:
    inside: list[int] = []
    most = 0

    async def edit(ctx: Context) -> Response:
        nonlocal most
        inside.append(1)
        most = max(most, len(inside))
        await asyncio.sleep(0.01)
        inside.pop()
        return Response()

    def make(key: str) -> Context:
        ctx = make_ctx("PATCH")
        ctx.project = "shop"
        ctx.operation = Operation("PATCH", edit, "t", WRITE, queue=lambda _: key)
        return ctx

    await asyncio.gather(*(pipeline.wait_in_queue(make("one list"), edit) for _ in range(5)))
    assert most == 1
    await asyncio.gather(*(pipeline.wait_in_queue(make(f"list {n}"), edit) for n in range(5)))
    assert most == 5


async def test_idempotency_step_without_a_key_is_the_handler() -> None:
    following = Next()
    await idempotent(make_ctx("POST"), following)
    assert following.calls == 1
    with pytest.raises(BadRequest) as refused:
        await idempotent(make_ctx("POST", headers={"Idempotency-Key": "a b"}), following)
    assert refused.value.message == messages.IDEMPOTENCY_KEY_INVALID


def test_steps_in_spec_order() -> None:
    read = Operation("GET", _nothing, "t", READ)
    checks = [pipeline.check_version, pipeline.authenticate, pipeline.authorise, pipeline.rate_limit]
    assert pipeline.steps_for(read) == [*checks, pipeline.read_revision]
    cached = Operation("GET", _nothing, "t", READ, cache=lambda ctx: frozenset())
    assert pipeline.steps_for(cached) == [*checks, pipeline.read_revision, pipeline.cached_read]
    edit = Operation("PATCH", _nothing, "t", WRITE, queue=lambda ctx: "list")
    assert pipeline.steps_for(edit) == [
        pipeline.check_version,
        pipeline.authenticate,
        pipeline.authorise,
        pipeline.rate_limit,
        pipeline.sync_cache,
        pipeline.announce_write,
        pipeline.answer_revision,
        pipeline.wake_readers,
        pipeline.read_body,
        pipeline.wait_in_queue,
        idempotent,
    ]
    write = Operation("POST", _nothing, "t", WRITE)
    assert pipeline.wait_in_queue not in pipeline.steps_for(write)
    streamed = Operation("POST", _nothing, "t", WRITE, streams_body=True)
    assert pipeline.steps_for(streamed) == [
        *checks,
        pipeline.sync_cache,
        pipeline.announce_write,
        pipeline.answer_revision,
        pipeline.wake_readers,
    ]
    # A write that changes no relation (a webhook's) has its revision, and nothing to wait for or wake.
    webhook = Operation("POST", _nothing, "t", WRITE, idempotency=False, relational=False)
    assert pipeline.steps_for(webhook) == [*checks, pipeline.answer_revision, pipeline.read_body]
