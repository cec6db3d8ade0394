"""What a webhook is: its fields as a body gives them, the url rule, and the representations of a webhook
and of a delivery."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from service import messages
from service.fields import Fields
from service.hal import Links, iso
from service.webhooks.client import is_public

# SPEC §9's event types: a webhook subscribes to some of them (all by default).
EVENT_TYPES = (
    "relation.created",
    "relation.updated",
    "relation.deleted",
    "list.reordered",
    "relationType.created",
    "relationType.updated",
    "relationType.deleted",
)
URL_LIMIT = 2048
DESCRIPTION_LIMIT = 1000
CREATE_FIELDS = ("url", "events", "description", "enabled")
UPDATE_FIELDS = (*CREATE_FIELDS, "rotateSecret")
_CONTROL = re.compile(r"[\x00-\x20\x7f]")
# null is no value for any field: what each one says when given null.
NULL_MESSAGES = {
    "url": messages.FIELD_NOT_STRING,
    "events": messages.WEBHOOK_EVENTS_SHAPE,
    "description": messages.FIELD_NOT_STRING,
    "enabled": messages.FIELD_NOT_BOOLEAN,
    "rotateSecret": messages.WEBHOOK_ROTATE_SHAPE,
}


@dataclass(frozen=True)
class WebhookFields:
    url: str
    events: tuple[str, ...] = EVENT_TYPES
    description: str = ""
    enabled: bool = True
    rotate_secret: bool = False


def url_problem(value: Any, *, allow_private: bool) -> str | None:
    """Why `value` cannot be a webhook's url, or None. A host name is checked again at every connect
    (service/webhooks/client.py); here only what the url itself shows is refused."""
    shape = messages.WEBHOOK_URL_HTTP if allow_private else messages.WEBHOOK_URL_INVALID
    if not isinstance(value, str):
        return messages.FIELD_NOT_STRING
    if len(value) > URL_LIMIT:
        return messages.FIELD_TOO_LONG.format(limit=URL_LIMIT)
    if _CONTROL.search(value):
        return shape
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        return shape
    schemes = ("https", "http") if allow_private else ("https",)
    if parts.scheme.lower() not in schemes or not parts.hostname or parts.username or parts.password:
        return shape
    if allow_private:
        return None
    host = parts.hostname.lower()
    if host == "localhost" or host.endswith(".localhost"):
        return messages.WEBHOOK_URL_PRIVATE
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None  # a name: checked when connecting
    return None if is_public(host) else messages.WEBHOOK_URL_PRIVATE


def _events(fields: Fields, default: tuple[str, ...]) -> tuple[str, ...]:
    if not fields.present("events"):
        return default
    value = fields.body["events"]
    if not isinstance(value, list) or not value:
        fields.fail("events", messages.WEBHOOK_EVENTS_SHAPE)
        return default
    unknown = messages.WEBHOOK_EVENT_UNKNOWN.format(types=", ".join(EVENT_TYPES))
    for index, item in enumerate(value):
        if item not in EVENT_TYPES:
            fields.fail(f"events[{index}]", unknown)
    chosen = {item for item in value if isinstance(item, str)}
    return tuple(event for event in EVENT_TYPES if event in chosen)


def read_fields(
    body: dict[str, Any], *, allow_private: bool, current: WebhookFields | None = None
) -> WebhookFields:
    """A create body (current is None: `url` required) or a partial update of `current`."""
    fields = Fields(
        body, message=messages.WEBHOOK_INVALID, known=CREATE_FIELDS if current is None else UPDATE_FIELDS
    )
    for name, value in body.items():
        if value is None and name in NULL_MESSAGES and (name != "url" or current is not None):
            fields.fail(name, NULL_MESSAGES[name])
    base = current or WebhookFields(url="")
    url = base.url
    if fields.present("url") or current is None:
        if not fields.present("url"):
            fields.fail("url", messages.FIELD_REQUIRED)
        else:
            problem = url_problem(body["url"], allow_private=allow_private)
            if problem:
                fields.fail("url", problem)
            else:
                url = str(body["url"])
    rotate = fields.present("rotateSecret")
    if rotate and body["rotateSecret"] is not True:
        fields.fail("rotateSecret", messages.WEBHOOK_ROTATE_SHAPE)
    result = WebhookFields(
        url=url,
        events=_events(fields, base.events),
        description=fields.text("description", limit=DESCRIPTION_LIMIT, default=base.description),
        enabled=fields.boolean("enabled", default=base.enabled),
        rotate_secret=rotate,
    )
    fields.check()
    return result


def from_row(row: Any) -> WebhookFields:
    return WebhookFields(
        url=row["url"], events=tuple(row["events"]), description=row["description"], enabled=row["enabled"]
    )


def represent(links: Links, row: Any, *, secret: str | None = None) -> dict[str, Any]:
    webhook_id = str(row["id"])
    shown: dict[str, Any] = {
        "id": webhook_id,
        "url": row["url"],
        "events": list(row["events"]),
        "description": row["description"],
        "enabled": row["enabled"],
        "disabledReason": row["disabled_reason"],
        "createdAt": iso(row["created_at"]),
        "updatedAt": iso(row["updated_at"]),
        "_links": {
            "self": {"href": links.href("webhooks:get", id=webhook_id)},
            "deliveries": {"href": links.href("webhooks:deliveries", id=webhook_id)},
        },
    }
    if secret is not None:
        shown["secret"] = secret
    return shown


def delivery_state(row: Any) -> str:
    """`pending`, `delivered` or `failed` as stored; `sending` while an attempt holds its claim."""
    state: str = row["state"]
    if state == "pending" and row["in_flight"]:
        return "sending"
    return state


def represent_delivery(links: Links, row: Any) -> dict[str, Any]:
    webhook_id = str(row["webhook_id"])
    state = delivery_state(row)
    moment = row["next_attempt_at"]
    return {
        "id": row["id"],
        "webhookId": webhook_id,
        "eventId": row["event_id"],
        "eventType": row["event_type"],
        "state": state,
        "attempts": row["attempts"],
        "lastStatus": row["last_status"],
        "lastError": row["last_error"],
        "lastAttemptAt": iso(row["last_attempt_at"]) if row["last_attempt_at"] else None,
        "nextAttemptAt": iso(moment) if moment is not None and state == "pending" else None,
        "deliveredAt": iso(row["delivered_at"]) if row["delivered_at"] else None,
        "createdAt": iso(row["created_at"]),
        "_links": {
            "self": {"href": links.href("webhooks:delivery", id=webhook_id, deliveryId=row["id"])},
            "retry": {"href": links.href("webhooks:retry", id=webhook_id, deliveryId=row["id"])},
            "webhook": {"href": links.href("webhooks:get", id=webhook_id)},
        },
    }
