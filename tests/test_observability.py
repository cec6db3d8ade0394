"""Request ids, the JSON access log, Prometheus metrics, and the envelope on answers made outside the
handlers (middleware, crashes)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.types import Message, Receive, Scope, Send

from service import messages
from service.middleware import Observe
from service.relations import queries as relation_queries
from tests.conftest import Project, error_of, guid

GENERATED_ID = re.compile(r"^[0-9a-f]{32}$")


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(orjson.loads(record.getMessage()))


@pytest.fixture
def access_lines() -> Iterator[list[dict[str, Any]]]:
    logger = logging.getLogger("service.access")
    lines = Lines()
    logger.addHandler(lines)
    try:
        yield lines.records
    finally:
        logger.removeHandler(lines)


def relation_body() -> dict[str, str]:
    return {"parentId": guid(), "childId": guid(), "relationTypeAlias": "relateDocumentOnCopy"}


async def test_sane_request_id_is_echoed(client: httpx.AsyncClient, project: Project) -> None:
    given = "req-2026.11_23-abc"
    response = await client.get("/relation/type", headers={**project.headers, "X-Request-Id": given})
    assert response.headers["x-request-id"] == given


@pytest.mark.parametrize("given", ["has space", "x" * 129, "semi;colon", "ü"])
async def test_insane_request_id_is_replaced(client: httpx.AsyncClient, given: str) -> None:
    response = await client.get("/health/live", headers={"X-Request-Id": given.encode()})
    assert GENERATED_ID.match(response.headers["x-request-id"])


async def test_every_answer_has_a_request_id(client: httpx.AsyncClient, project: Project) -> None:
    answers = [
        await client.get("/health/live"),
        await client.get("/no/such/route"),
        await client.get("/relation/type"),
        await client.post("/relation", content=b"{", headers=project.headers),
        await client.get("/relation/parent/%00", headers=project.headers),
    ]
    assert [answer.status_code for answer in answers] == [200, 404, 401, 400, 400]
    ids = [answer.headers["x-request-id"] for answer in answers]
    assert all(GENERATED_ID.match(rid) for rid in ids)
    assert len(set(ids)) == len(ids)


async def test_one_access_line_per_request(
    client: httpx.AsyncClient, project: Project, access_lines: list[dict[str, Any]]
) -> None:
    created = await client.post(
        "/relation", json=relation_body(), headers={**project.headers, "X-Request-Id": "trace-1"}
    )
    relation_id = created.json()["_id"]
    await client.get(f"/relation/{relation_id}", headers=project.headers)
    await client.get("/nowhere/at/all")
    assert len(access_lines) == 3
    post, get, unknown = access_lines
    assert {key: post[key] for key in ("method", "route", "status", "project", "request_id")} == {
        "method": "POST",
        "route": "/relation",
        "status": 201,
        "project": project.alias,
        "request_id": "trace-1",
    }
    assert isinstance(post["duration_ms"], float) and post["duration_ms"] >= 0
    assert post["name"] == "relations:create"
    assert get["route"] == "/relation/{id}" and get["path"] == f"/relation/{relation_id}"
    assert get["status"] == 200
    assert unknown["route"] == "unmatched" and unknown["status"] == 404 and unknown["project"] is None


async def test_crash_is_a_500_envelope_logged_and_counted(
    app: Starlette, project: Project, monkeypatch: pytest.MonkeyPatch, access_lines: list[dict[str, Any]]
) -> None:
    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret detail that must not leak")

    monkeypatch.setattr(relation_queries, "get", broken)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        before = sample(await metrics_text(client), "relations_http_requests_total", route="/relation/{id}")
        response = await client.get("/relation/1", headers={**project.headers, "X-Request-Id": "crash-1"})
        after = sample(await metrics_text(client), "relations_http_requests_total", route="/relation/{id}")
    assert response.status_code == 500
    assert error_of(response) == {"code": "InternalServerError", "message": messages.INTERNAL}
    assert "secret" not in response.text
    assert response.headers["x-request-id"] == "crash-1"
    assert [line["status"] for line in access_lines if line["request_id"] == "crash-1"] == [500]
    assert after.get("500", 0) == before.get("500", 0) + 1


async def metrics_text(client: httpx.AsyncClient) -> str:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def sample(text: str, name: str, **labels: str) -> dict[str, float]:
    """Values of `name` whose labels include `labels`, by status."""
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for item in family.samples:
            if item.name == name and all(item.labels.get(key) == value for key, value in labels.items()):
                status = item.labels.get("status", "")
                found[status] = found.get(status, 0) + item.value
    return found


async def test_metrics_count_requests_and_latency_by_route_and_status(
    client: httpx.AsyncClient, project: Project
) -> None:
    text = await metrics_text(client)
    created_before = sample(text, "relations_http_requests_total", method="POST", route="/relation")
    timed_before = sample(text, "relations_http_request_duration_seconds_count", route="/relation")
    await client.post("/relation", json=relation_body(), headers=project.headers)
    await client.post("/relation", json={"parentId": "nope"}, headers=project.headers)
    await client.post("/relation", json=relation_body(), headers=project.headers)
    text = await metrics_text(client)
    created_after = sample(text, "relations_http_requests_total", method="POST", route="/relation")
    timed_after = sample(text, "relations_http_request_duration_seconds_count", route="/relation")
    assert created_after["201"] == created_before.get("201", 0) + 2
    assert created_after["422"] == created_before.get("422", 0) + 1
    assert timed_after["201"] == timed_before.get("201", 0) + 2
    buckets = sample(text, "relations_http_request_duration_seconds_bucket", route="/relation", le="+Inf")
    assert buckets["201"] == timed_after["201"]


async def test_metrics_show_the_pool_and_need_no_credentials(client: httpx.AsyncClient) -> None:
    text = await metrics_text(client)
    size = sample(text, "relations_db_pool_connections")[""]
    in_use = sample(text, "relations_db_pool_connections_in_use")[""]
    assert size >= 1
    assert 0 <= in_use <= size


async def test_unknown_methods_and_paths_keep_labels_bounded(client: httpx.AsyncClient) -> None:
    await client.request("BREW", "/relation")
    await client.get(f"/random/{guid()}")
    text = await metrics_text(client)
    assert sample(text, "relations_http_requests_total", method="other", route="/relation")["405"] >= 1
    assert sample(text, "relations_http_requests_total", route="unmatched")["404"] >= 1
    assert "/random/" not in text


async def test_access_log_can_be_switched_off(access_lines: list[dict[str, Any]]) -> None:
    sent: list[Message] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/x", "headers": [], "client": ("127.0.0.1", 1)}
    await Observe(inner, log_requests=False)(scope, receive, send)
    assert access_lines == []
    assert dict(sent[0]["headers"])[b"x-request-id"]
    await Observe(inner, log_requests=True)(scope, receive, send)
    assert [line["status"] for line in access_lines] == [204]
