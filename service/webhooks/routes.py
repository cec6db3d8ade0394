"""HTTP handlers for /webhook (SPEC §10), every one behind the scope `webhooks:write`."""

from __future__ import annotations

import uuid

from starlette.responses import Response

from service import messages
from service.auth import WEBHOOKS_WRITE
from service.cursors import ListKey
from service.db import Record
from service.endpoint import Context, api_route
from service.errors import Conflict, NotFound, ServiceUnavailable
from service.webhooks import model, queries
from service.webhooks.signing import SecretBox, new_secret

# After a rotation the previous secret signs beside the new one this long.
ROTATION_OVERLAP_SECONDS = 24 * 3600


def secret_box(ctx: Context) -> SecretBox:
    """The key that seals secrets; without RELATIONS_SECRET_KEY, 503 naming it."""
    box: SecretBox | None = ctx.request.app.state.secret_box
    if box is None:
        raise ServiceUnavailable(messages.WEBHOOKS_NOT_CONFIGURED)
    return box


def allow_private(ctx: Context) -> bool:
    return bool(ctx.request.app.state.settings.webhook_allow_private)


def webhook_id(ctx: Context) -> uuid.UUID:
    """The path's webhook id; one that cannot be an id is not found, like an unknown one."""
    raw: str = ctx.path["id"]
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound(messages.WEBHOOK_NOT_FOUND.format(id=raw[:64])) from None


async def load_webhook(ctx: Context) -> Record:
    found = await queries.get(ctx.db, project=ctx.project, webhook_id=webhook_id(ctx))
    if found is None:
        raise NotFound(messages.WEBHOOK_NOT_FOUND.format(id=ctx.path["id"][:64]))
    return found


async def load_delivery(ctx: Context, hook: Record) -> Record:
    raw: str = ctx.path["deliveryId"]
    found = None
    if raw.isascii() and raw.isdigit() and len(raw) < 19:
        found = await queries.get_delivery(
            ctx.db, project=ctx.project, webhook_id=hook["id"], delivery_id=int(raw)
        )
    if found is None:
        raise NotFound(messages.DELIVERY_NOT_FOUND.format(id=raw[:64], webhook=hook["id"]))
    return found


def by_creation(row: Record) -> ListKey:
    return (row["created_at"].isoformat(), str(row["id"]))


def by_id(row: Record) -> ListKey:
    return (row["id"],)


async def list_webhooks(ctx: Context) -> Response:
    window = ctx.window("webhooks:list", queries.START)
    page = await queries.list_page(ctx.db, project=ctx.project, window=window)
    items = [model.represent(ctx.links, row) for row in page.rows]
    return ctx.page(key="webhooks", items=items, window=window, page=page, key_of=by_creation)


async def create_webhook(ctx: Context) -> Response:
    fields = model.read_fields(ctx.json_object(), allow_private=allow_private(ctx))
    box = secret_box(ctx)
    new_id, secret = uuid.uuid4(), new_secret()
    sealed = box.seal(secret, project=ctx.project, webhook_id=new_id)
    row = await queries.insert(
        ctx.db, project=ctx.project, webhook_id=new_id, fields=fields, sealed_secret=sealed
    )
    if row is None:
        raise Conflict(messages.WEBHOOK_LIMIT.format(limit=queries.LIMIT_PER_PROJECT))
    shown = model.represent(ctx.links, row, secret=secret)
    return ctx.hal(shown, status=201, headers={"Location": shown["_links"]["self"]["href"]})


async def get_webhook(ctx: Context) -> Response:
    return ctx.hal(model.represent(ctx.links, await load_webhook(ctx)))


async def update_webhook(ctx: Context) -> Response:
    body = ctx.json_object()
    hook_id = webhook_id(ctx)
    secret = None
    async with ctx.db.transaction():
        current = await queries.lock(ctx.db, project=ctx.project, webhook_id=hook_id)
        if current is None:
            raise NotFound(messages.WEBHOOK_NOT_FOUND.format(id=ctx.path["id"][:64]))
        fields = model.read_fields(body, allow_private=allow_private(ctx), current=model.from_row(current))
        if fields.rotate_secret:
            secret = new_secret()
            sealed = secret_box(ctx).seal(secret, project=ctx.project, webhook_id=hook_id)
            await queries.rotate(
                ctx.db,
                project=ctx.project,
                webhook_id=hook_id,
                sealed_secret=sealed,
                overlap_seconds=ROTATION_OVERLAP_SECONDS,
            )
        row = await queries.update(ctx.db, project=ctx.project, webhook_id=hook_id, fields=fields)
        if current["enabled"] and not fields.enabled:
            await queries.pause(ctx.db, project=ctx.project, webhook_id=hook_id)
        elif fields.enabled and not current["enabled"]:
            await queries.resume(ctx.db, project=ctx.project, webhook_id=hook_id)
    return ctx.hal(model.represent(ctx.links, row, secret=secret))


async def delete_webhook(ctx: Context) -> Response:
    row = await queries.delete(ctx.db, project=ctx.project, webhook_id=webhook_id(ctx))
    if row is None:
        raise NotFound(messages.WEBHOOK_NOT_FOUND.format(id=ctx.path["id"][:64]))
    return ctx.hal(model.represent(ctx.links, row))


async def list_deliveries(ctx: Context) -> Response:
    hook = await load_webhook(ctx)
    window = ctx.window("webhooks:deliveries", queries.DELIVERIES_START)
    page = await queries.deliveries_page(ctx.db, project=ctx.project, webhook_id=hook["id"], window=window)
    items = [model.represent_delivery(ctx.links, row) for row in page.rows]
    return ctx.page(key="deliveries", items=items, window=window, page=page, key_of=by_id)


async def get_delivery(ctx: Context) -> Response:
    hook = await load_webhook(ctx)
    return ctx.hal(model.represent_delivery(ctx.links, await load_delivery(ctx, hook)))


async def retry_delivery(ctx: Context) -> Response:
    """Due again at once (also a delivered or failed one); 409 while an attempt is in flight or the
    webhook is disabled. It takes no body; the pipeline refuses one past the size limit (413)."""
    hook = await load_webhook(ctx)
    delivery = await load_delivery(ctx, hook)
    if not hook["enabled"]:
        raise Conflict(messages.WEBHOOK_DISABLED.format(id=hook["id"]))
    row = await queries.retry(ctx.db, project=ctx.project, webhook_id=hook["id"], delivery_id=delivery["id"])
    if row is None:
        raise Conflict(messages.DELIVERY_IN_FLIGHT.format(id=delivery["id"]))
    await queries.notify_due(ctx.db)
    return ctx.hal(model.represent_delivery(ctx.links, row), status=202)


W = WEBHOOKS_WRITE
# A webhook's writes change no relation: they neither wait for the read cache nor wake the change feed
# (relational=False). Answers that carry a secret are never stored for Idempotency-Key replays
# (idempotency=False).
routes = [
    api_route("/webhook", list_webhooks, method="GET", name="webhooks:list", scope=W),
    api_route(
        "/webhook",
        create_webhook,
        method="POST",
        name="webhooks:create",
        scope=W,
        idempotency=False,
        relational=False,
    ),
    api_route("/webhook/{id}", get_webhook, method="GET", name="webhooks:get", scope=W),
    api_route(
        "/webhook/{id}",
        update_webhook,
        method="PUT",
        name="webhooks:update",
        scope=W,
        idempotency=False,
        relational=False,
    ),
    api_route(
        "/webhook/{id}",
        delete_webhook,
        method="DELETE",
        name="webhooks:delete",
        scope=W,
        invalid_message=messages.WEBHOOK_INVALID,
        relational=False,
    ),
    api_route("/webhook/{id}/deliveries", list_deliveries, method="GET", name="webhooks:deliveries", scope=W),
    api_route(
        "/webhook/{id}/deliveries/{deliveryId}", get_delivery, method="GET", name="webhooks:delivery", scope=W
    ),
    api_route(
        "/webhook/{id}/deliveries/{deliveryId}/retry",
        retry_delivery,
        method="POST",
        name="webhooks:retry",
        scope=W,
        invalid_message=messages.WEBHOOK_INVALID,
        relational=False,
    ),
]
