"""The /webhook routes (SPEC §10): create with a secret shown once, read, list, change, rotate, delete,
the delivery log and manual retry; validation per field, 404s, the scope, and secrets at rest."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from service import messages
from service.app import create_app
from service.db import Database
from service.settings import Settings
from service.webhooks.model import EVENT_TYPES
from tests.conftest import Project, error_of
from tests.test_auth import serving
from tests.webhooks.helpers import add_delivery, create_webhook

URL = "https://hooks.example.org/relations"


async def test_create_answers_the_secret_once(client: httpx.AsyncClient, project: Project) -> None:
    response = await client.post(
        "/webhook", json={"url": URL, "description": "search index"}, headers=project.headers
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["secret"].startswith("whsec_")
    assert len(base64.b64decode(body["secret"].removeprefix("whsec_"))) >= 24
    assert body["url"] == URL and body["description"] == "search index" and body["enabled"] is True
    assert body["events"] == list(EVENT_TYPES)
    assert response.headers["Location"] == body["_links"]["self"]["href"]
    again = await client.get(response.headers["Location"], headers=project.headers)
    assert again.status_code == 200
    assert "secret" not in again.json()
    assert {key: value for key, value in body.items() if key != "secret"} == again.json()


async def test_secrets_are_not_stored_in_the_clear(
    client: httpx.AsyncClient, db: Database, project: Project
) -> None:
    created = (await create_webhook(client, project, URL)).json()
    raw = base64.b64decode(created["secret"].removeprefix("whsec_"))
    row = await db.fetchrow("SELECT * FROM webhook WHERE project = $1", project.alias)
    dumped = b"".join(
        bytes(value) if isinstance(value, bytes) else str(value).encode() for value in row.values()
    )
    assert created["secret"].encode() not in dumped
    assert raw not in dumped
    assert base64.b64encode(raw) not in dumped


async def test_list_is_paged(client: httpx.AsyncClient, project: Project) -> None:
    ids = [(await create_webhook(client, project, f"{URL}/{n}")).json()["id"] for n in range(3)]
    page = await client.get("/webhook?pageSize=2", headers=project.headers)
    assert page.status_code == 200
    listed = page.json()
    assert listed["_totalItems"] == 3 and listed["_totalPages"] == 2
    assert [item["id"] for item in listed["_embedded"]["webhooks"]] == ids[:2]
    assert "next" in listed["_links"]
    assert all("secret" not in item for item in listed["_embedded"]["webhooks"])


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({}, "url", messages.FIELD_REQUIRED),
        ({"url": 5}, "url", messages.FIELD_NOT_STRING),
        ({"url": "ftp://example.org/x"}, "url", messages.WEBHOOK_URL_HTTP),
        ({"url": "https://user:pw@example.org/x"}, "url", messages.WEBHOOK_URL_HTTP),
        ({"url": "https:///nohost"}, "url", messages.WEBHOOK_URL_HTTP),
        ({"url": "https://example.org:99999/"}, "url", messages.WEBHOOK_URL_HTTP),
        ({"url": URL, "events": []}, "events", messages.WEBHOOK_EVENTS_SHAPE),
        ({"url": URL, "events": "relation.created"}, "events", messages.WEBHOOK_EVENTS_SHAPE),
        ({"url": URL, "events": ["relation.created", "nope"]}, "events[1]", None),
        ({"url": URL, "events": [{}]}, "events[0]", None),
        ({"url": URL, "description": 3}, "description", messages.FIELD_NOT_STRING),
        ({"url": URL, "enabled": "yes"}, "enabled", messages.FIELD_NOT_BOOLEAN),
        ({"url": URL, "secret": "whsec_mine"}, "secret", messages.FIELD_UNKNOWN),
    ],
)
async def test_create_validates_each_field(
    client: httpx.AsyncClient, project: Project, body: dict[str, Any], field: str, message: str | None
) -> None:
    response = await client.post("/webhook", json=body, headers=project.headers)
    assert response.status_code == 422, response.text
    error = error_of(response)
    assert error["code"] == "ValidationFailed" and error["message"] == messages.WEBHOOK_INVALID
    assert field in error["details"]["errors"]
    expected = message or messages.WEBHOOK_EVENT_UNKNOWN.format(types=", ".join(EVENT_TYPES))
    assert error["details"]["errors"][field] == [expected]


async def test_bad_bodies_are_400(client: httpx.AsyncClient, project: Project) -> None:
    empty = await client.post("/webhook", content=b"", headers=project.headers)
    assert empty.status_code == 400 and error_of(empty)["message"] == messages.EMPTY_BODY
    array = await client.post("/webhook", json=[URL], headers=project.headers)
    assert array.status_code == 400 and error_of(array)["message"] == messages.BODY_NOT_OBJECT


async def test_events_are_chosen_and_kept_in_one_order(client: httpx.AsyncClient, project: Project) -> None:
    body = {"url": URL, "events": ["relation.deleted", "relation.created", "relation.deleted"]}
    created = await client.post("/webhook", json=body, headers=project.headers)
    assert created.json()["events"] == ["relation.created", "relation.deleted"]


@pytest.fixture(scope="module")
async def public_only(database_url: str) -> Any:
    """An app without RELATIONS_WEBHOOK_ALLOW_PRIVATE (the production default)."""
    from tests.conftest import TEST_SECRET_KEY

    settings = Settings(
        database_url=database_url, key_cache_seconds=0, secret_key=TEST_SECRET_KEY, webhook_delivery=False
    )
    async with serving(create_app(settings)) as http:
        yield http


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://example.org/hook", messages.WEBHOOK_URL_INVALID),
        ("https://127.0.0.1/hook", messages.WEBHOOK_URL_PRIVATE),
        ("https://10.1.2.3/hook", messages.WEBHOOK_URL_PRIVATE),
        ("https://[::1]/hook", messages.WEBHOOK_URL_PRIVATE),
        ("https://[::ffff:192.168.0.1]/hook", messages.WEBHOOK_URL_PRIVATE),
        ("https://169.254.169.254/latest/meta-data", messages.WEBHOOK_URL_PRIVATE),
        ("https://localhost:8443/hook", messages.WEBHOOK_URL_PRIVATE),
        ("https://api.localhost/hook", messages.WEBHOOK_URL_PRIVATE),
    ],
)
async def test_private_and_plain_http_urls_are_refused_without_the_setting(
    public_only: httpx.AsyncClient, project: Project, url: str, message: str
) -> None:
    response = await public_only.post("/webhook", json={"url": url}, headers=project.headers)
    assert response.status_code == 422, response.text
    assert error_of(response)["details"]["errors"] == {"url": [message]}


async def test_public_https_urls_pass_without_the_setting(
    public_only: httpx.AsyncClient, project: Project
) -> None:
    for url in ("https://hooks.example.org/x", "https://93.184.216.34:8443/x"):
        response = await public_only.post("/webhook", json={"url": url}, headers=project.headers)
        assert response.status_code == 201, response.text


async def test_without_a_secret_key_creation_is_503(database_url: str, project: Project) -> None:
    settings = Settings(database_url=database_url, key_cache_seconds=0, webhook_delivery=False)
    async with serving(create_app(settings)) as http:
        response = await http.post("/webhook", json={"url": URL}, headers=project.headers)
    assert response.status_code == 503
    assert error_of(response) == {"code": "ServiceUnavailable", "message": messages.WEBHOOKS_NOT_CONFIGURED}


def test_a_short_secret_key_is_refused_at_start(database_url: str) -> None:
    with pytest.raises(ValueError, match="RELATIONS_SECRET_KEY"):
        create_app(Settings(database_url=database_url, secret_key="short"))


async def test_put_changes_fields_and_keeps_the_rest(client: httpx.AsyncClient, project: Project) -> None:
    created = (await create_webhook(client, project, URL, events=["relation.created"])).json()
    href = created["_links"]["self"]["href"]
    changed = await client.put(
        href, json={"url": URL + "/v2", "description": "new", "enabled": False}, headers=project.headers
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["url"], body["description"], body["enabled"]) == (URL + "/v2", "new", False)
    assert body["events"] == ["relation.created"] and "secret" not in body
    bad = await client.put(href, json={"events": ["x"], "rotateSecret": 1}, headers=project.headers)
    assert bad.status_code == 422
    assert set(error_of(bad)["details"]["errors"]) == {"events[0]", "rotateSecret"}
    nothing = await client.put(href, json={}, headers=project.headers)
    assert nothing.status_code == 200 and nothing.json()["url"] == URL + "/v2"


async def test_rotation_answers_a_new_secret_and_keeps_the_old_one_for_a_day(
    client: httpx.AsyncClient, db: Database, project: Project
) -> None:
    created = (await create_webhook(client, project, URL)).json()
    rotated = await client.put(
        created["_links"]["self"]["href"], json={"rotateSecret": True}, headers=project.headers
    )
    assert rotated.status_code == 200, rotated.text
    new_secret = rotated.json()["secret"]
    assert new_secret.startswith("whsec_") and new_secret != created["secret"]
    hours = await db.fetchval(
        "SELECT extract(epoch FROM previous_secret_until - updated_at) / 3600 FROM webhook WHERE id = $1",
        uuid.UUID(created["id"]),
    )
    assert round(float(hours)) == 24


async def test_delete_then_404(client: httpx.AsyncClient, project: Project) -> None:
    created = (await create_webhook(client, project, URL)).json()
    href = created["_links"]["self"]["href"]
    gone = await client.delete(href, headers=project.headers)
    assert gone.status_code == 200 and gone.json()["id"] == created["id"]
    for method in ("GET", "PUT", "DELETE"):
        response = await client.request(
            method, href, json={} if method == "PUT" else None, headers=project.headers
        )
        assert response.status_code == 404
        assert error_of(response) == {
            "code": "NotFound",
            "message": messages.WEBHOOK_NOT_FOUND.format(id=created["id"]),
        }


@pytest.mark.parametrize("path", ["/webhook/not-an-id", "/webhook/not-an-id/deliveries"])
async def test_malformed_ids_are_not_found(client: httpx.AsyncClient, project: Project, path: str) -> None:
    response = await client.get(path, headers=project.headers)
    assert response.status_code == 404
    assert error_of(response)["message"] == messages.WEBHOOK_NOT_FOUND.format(id="not-an-id")


async def test_deliveries_newest_first_and_retry(
    client: httpx.AsyncClient, db: Database, project: Project
) -> None:
    created = (await create_webhook(client, project, URL)).json()
    hook_id = uuid.UUID(created["id"])
    first = await add_delivery(db, project.alias, hook_id, event_id="evt-1")
    second = await add_delivery(db, project.alias, hook_id, event_id="evt-2")
    await db.execute(
        "UPDATE webhook_delivery SET state = 'failed', attempts = 11, next_attempt_at = NULL,"
        " last_status = 500, last_error = 'the receiver answered 500' WHERE id = $1",
        first,
    )
    listed = await client.get(created["_links"]["deliveries"]["href"], headers=project.headers)
    assert listed.status_code == 200
    items = listed.json()["_embedded"]["deliveries"]
    assert [item["id"] for item in items] == [second, first]
    failed = items[1]
    assert failed["eventId"] == "evt-1" and failed["eventType"] == "relation.created"
    assert (failed["state"], failed["attempts"], failed["lastStatus"]) == ("failed", 11, 500)
    assert failed["nextAttemptAt"] is None and failed["deliveredAt"] is None

    retried = await client.post(failed["_links"]["retry"]["href"], headers=project.headers)
    assert retried.status_code == 202, retried.text
    assert retried.json()["state"] == "pending" and retried.json()["nextAttemptAt"] is not None
    one = await client.get(failed["_links"]["self"]["href"], headers=project.headers)
    assert one.json()["state"] == "pending"

    missing = await client.post(f"/webhook/{hook_id}/deliveries/999999999/retry", headers=project.headers)
    assert missing.status_code == 404
    assert error_of(missing)["message"] == messages.DELIVERY_NOT_FOUND.format(id="999999999", webhook=hook_id)


async def test_retry_is_409_while_in_flight_or_disabled(
    client: httpx.AsyncClient, db: Database, project: Project
) -> None:
    created = (await create_webhook(client, project, URL)).json()
    hook_id = uuid.UUID(created["id"])
    delivery = await add_delivery(db, project.alias, hook_id, event_id="evt-1")
    await db.execute(
        "UPDATE webhook_delivery SET claim = gen_random_uuid(), next_attempt_at = now() + interval '1 minute'"
        " WHERE id = $1",
        delivery,
    )
    retry = f"/webhook/{hook_id}/deliveries/{delivery}/retry"
    busy = await client.post(retry, headers=project.headers)
    assert busy.status_code == 409
    assert error_of(busy)["message"] == messages.DELIVERY_IN_FLIGHT.format(id=delivery)
    listed = await client.get(f"/webhook/{hook_id}/deliveries", headers=project.headers)
    assert listed.json()["_embedded"]["deliveries"][0]["state"] == "sending"

    await client.put(f"/webhook/{hook_id}", json={"enabled": False}, headers=project.headers)
    disabled = await client.post(retry, headers=project.headers)
    assert disabled.status_code == 409
    assert error_of(disabled)["message"] == messages.WEBHOOK_DISABLED.format(id=hook_id)


async def test_disabling_pauses_and_enabling_resumes_pending_deliveries(
    client: httpx.AsyncClient, db: Database, project: Project
) -> None:
    created = (await create_webhook(client, project, URL)).json()
    hook_id = uuid.UUID(created["id"])
    delivery = await add_delivery(db, project.alias, hook_id, event_id="evt-1")
    due = "SELECT next_attempt_at FROM webhook_delivery WHERE id = $1"
    await client.put(f"/webhook/{hook_id}", json={"enabled": False}, headers=project.headers)
    assert await db.fetchval(due, delivery) is None
    await client.put(f"/webhook/{hook_id}", json={"enabled": True}, headers=project.headers)
    assert await db.fetchval(due, delivery) is not None


async def test_the_scope_is_webhooks_write(client: httpx.AsyncClient, project: Project) -> None:
    reader = await project.key("relations:read", "relations:write", "relation-types:write")
    refused = await client.get("/webhook", headers={"Api-Key": reader})
    assert refused.status_code == 403
    allowed = await client.get("/webhook", headers={"Api-Key": await project.key("webhooks:write")})
    assert allowed.status_code == 200


async def test_idempotency_key_never_stores_a_secret(
    client: httpx.AsyncClient, db: Database, project: Project
) -> None:
    headers = {**project.headers, "Idempotency-Key": "create-hook-1"}
    first = await client.post("/webhook", json={"url": URL}, headers=headers)
    assert first.status_code == 201
    stored = await db.fetchval("SELECT count(*) FROM idempotency_key WHERE project = $1", project.alias)
    assert stored == 0


async def test_project_limit(client: httpx.AsyncClient, app: Starlette, project: Project) -> None:
    from service.webhooks.queries import LIMIT_PER_PROJECT

    for n in range(LIMIT_PER_PROJECT):
        await create_webhook(client, project, f"{URL}/{n}")
    over = await client.post("/webhook", json={"url": URL}, headers=project.headers)
    assert over.status_code == 409
    assert error_of(over)["message"] == messages.WEBHOOK_LIMIT.format(limit=LIMIT_PER_PROJECT)


@pytest.mark.parametrize("field", ["url", "events", "description", "enabled", "rotateSecret"])
async def test_null_is_no_value(client: httpx.AsyncClient, project: Project, field: str) -> None:
    created = (await create_webhook(client, project, URL)).json()
    response = await client.put(
        created["_links"]["self"]["href"], json={field: None}, headers=project.headers
    )
    assert response.status_code == 422, response.text
    assert set(error_of(response)["details"]["errors"]) == {field}
    if field != "rotateSecret":
        refused = await client.post("/webhook", json={"url": URL, field: None}, headers=project.headers)
        assert refused.status_code == 422, refused.text


def test_webhook_writes_change_no_relation() -> None:
    """They neither wait for the read cache nor wake the change feed (service/pipeline.steps_for)."""
    from service.webhooks.routes import routes

    writes = [op for route in routes for op in route.operations.values() if op.method not in ("GET", "HEAD")]
    assert len(writes) == 4 and not any(op.relational for op in writes)
