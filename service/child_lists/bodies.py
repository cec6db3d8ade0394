"""The three body forms of a list edit (Strapi, Backendless bare arrays, JSON:API) read into one `Edit`.

400 for a body of the wrong overall shape, 422 (per item, keyed like `connect[2].position`) for values."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from service import messages
from service.bodies import parse_guid
from service.errors import BadRequest, ValidationFailed
from service.relations.model import COMMENT_LIMIT

MAX_ITEMS = 1000
Kind = Literal["connect", "set", "add", "remove", "clear"]
PositionKind = Literal["end", "start", "before", "after"]


@dataclass(frozen=True)
class Position:
    kind: PositionKind = "end"
    anchor: uuid.UUID | None = None


END = Position()


@dataclass(frozen=True)
class Item:
    """One child of a request. `comment` None keeps a member's comment (a new one gets "")."""

    id: uuid.UUID
    position: Position = END
    comment: str | None = None
    index: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Edit:
    kind: Kind
    items: tuple[Item, ...] = ()
    disconnect: tuple[uuid.UUID, ...] = ()
    strict: bool = True
    # JSON:API: the `type` of each resource identifier (checked against the child object type: 409),
    # and whether `data` was a single object or null (only for cardinality one).
    types: tuple[str, ...] = ()
    single: bool = False
    source: str = "connect"  # the array's name in messages: connect, set, items, data


class _Errors:
    def __init__(self) -> None:
        self.found: dict[str, list[str]] = {}

    def fail(self, name: str, message: str) -> None:
        self.found.setdefault(name, []).append(message)

    def check(self) -> None:
        if self.found:
            raise ValidationFailed(messages.RELATION_INVALID, errors=self.found)


def _array(body: dict[str, Any], key: str) -> list[Any]:
    value = body.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadRequest(messages.LIST_NOT_ARRAY.format(key=key))
    return value


def _limit(errors: _Errors, **arrays: list[Any]) -> None:
    if sum(len(array) for array in arrays.values()) > MAX_ITEMS:
        for name, array in arrays.items():
            if array:
                errors.fail(name, messages.LIST_TOO_MANY_ITEMS.format(limit=MAX_ITEMS))
        errors.check()


def _position(errors: _Errors, name: str, raw: Any) -> Position:
    if raw is None:
        return END
    if isinstance(raw, dict) and len(raw) == 1:
        ((kind, value),) = raw.items()
        if kind in ("start", "end") and value is True:
            return Position(kind)
        if kind in ("before", "after"):
            anchor = parse_guid(value)
            if anchor is not None:
                return Position(kind, anchor)
    errors.fail(name, messages.LIST_POSITION_INVALID)
    return END


def _comment(errors: _Errors, name: str, raw: Any) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        errors.fail(name, messages.FIELD_NOT_STRING)
    elif "\x00" in raw:
        errors.fail(name, messages.FIELD_NUL)
    elif len(raw) > COMMENT_LIMIT:
        errors.fail(name, messages.FIELD_TOO_LONG.format(limit=COMMENT_LIMIT))
    else:
        return raw
    return None


def _items(
    errors: _Errors, key: str, raw: list[Any], *, positions: bool, comments: bool = True
) -> list[Item]:
    """Shorthand (a GUID) or longhand (`{"id", "position"?, "comment"?}`) items of array `key`."""
    items: list[Item] = []
    allowed = {"id", "position", "comment"} if comments else {"id"}
    for index, value in enumerate(raw):
        name = f"{key}[{index}]"
        if isinstance(value, str):
            guid = parse_guid(value)
            if guid is None:
                errors.fail(name, messages.FIELD_NOT_GUID)
            else:
                items.append(Item(guid, index=index))
            continue
        if not isinstance(value, dict) or "id" not in value:
            errors.fail(name, messages.LIST_ITEM_INVALID if comments else messages.LIST_ITEM_ID_ONLY)
            continue
        for unknown in sorted(set(value) - allowed):
            errors.fail(f"{name}.{unknown}", messages.FIELD_UNKNOWN)
        guid = parse_guid(value["id"])
        if guid is None:
            errors.fail(f"{name}.id", messages.FIELD_NOT_GUID)
        position = END
        if value.get("position") is not None:
            if positions:
                position = _position(errors, f"{name}.position", value["position"])
            else:
                errors.fail(f"{name}.position", messages.LIST_POSITION_NOT_ALLOWED)
        comment = _comment(errors, f"{name}.comment", value.get("comment"))
        if guid is not None:
            items.append(Item(guid, position, comment, index))
    return items


def _options(body: dict[str, Any]) -> bool:
    options = body.get("options")
    if options is None:
        return True
    if not isinstance(options, dict) or set(options) - {"strict"}:
        raise BadRequest(messages.LIST_OPTIONS_SHAPE)
    strict = options.get("strict", True)
    if not isinstance(strict, bool):
        raise BadRequest(messages.LIST_OPTIONS_SHAPE)
    return strict


def _known_keys(body: dict[str, Any], allowed: set[str], shape: str) -> None:
    for key in body:
        if key not in allowed:
            raise BadRequest(messages.LIST_KEY_UNKNOWN.format(key=str(key)[:100]) + " " + shape)


def _set(raw: list[Any], key: str) -> Edit:
    errors = _Errors()
    _limit(errors, **{key: raw})
    items = _items(errors, key, raw, positions=False)
    errors.check()
    return Edit("set", tuple(items), source=key)


def read_patch(body: Any) -> Edit:
    """Strapi: `{"connect", "disconnect", "options"}`, or `{"set"}` / a bare array (replace)."""
    if isinstance(body, list):
        return _set(body, "set")
    if not isinstance(body, dict):
        raise BadRequest(messages.LIST_BODY_SHAPE)
    _known_keys(body, {"connect", "disconnect", "set", "options"}, messages.LIST_BODY_SHAPE)
    if "set" in body:
        if "connect" in body or "disconnect" in body:
            raise BadRequest(messages.LIST_SET_WITH_CONNECT)
        if not isinstance(body["set"], list):
            raise BadRequest(messages.LIST_NOT_ARRAY.format(key="set"))
        return _set(body["set"], "set")
    connect, disconnect = _array(body, "connect"), _array(body, "disconnect")
    strict = _options(body)
    errors = _Errors()
    _limit(errors, connect=connect, disconnect=disconnect)
    items = _items(errors, "connect", connect, positions=True)
    removed = _items(errors, "disconnect", disconnect, positions=False, comments=False)
    errors.check()
    return Edit("connect", tuple(items), tuple(item.id for item in removed), strict)


def read_put(body: Any) -> Edit:
    """Replace: `{"set": [...]}` or a bare array."""
    if isinstance(body, list):
        return _set(body, "set")
    if not isinstance(body, dict):
        raise BadRequest(messages.LIST_PUT_SHAPE)
    _known_keys(body, {"set"}, messages.LIST_PUT_SHAPE)
    if not isinstance(body.get("set"), list):
        raise BadRequest(messages.LIST_NOT_ARRAY.format(key="set"))
    return _set(body["set"], "set")


def read_post(body: Any) -> Edit:
    """Add: a bare array or `{"connect": [...], "options"?}`; members already present stay."""
    if isinstance(body, list):
        raw, strict, key = body, True, "items"
    elif isinstance(body, dict):
        _known_keys(body, {"connect", "options"}, messages.LIST_POST_SHAPE)
        raw, strict, key = _array(body, "connect"), _options(body), "connect"
    else:
        raise BadRequest(messages.LIST_POST_SHAPE)
    errors = _Errors()
    _limit(errors, **{key: raw})
    items = _items(errors, key, raw, positions=True)
    errors.check()
    return Edit("add", tuple(items), strict=strict, source=key)


def read_delete(body: Any | None) -> Edit:
    """Remove: a bare array of ids; no body removes every child."""
    if body is None:
        return Edit("clear")
    if not isinstance(body, list):
        raise BadRequest(messages.LIST_DELETE_SHAPE)
    errors = _Errors()
    _limit(errors, items=body)
    items = _items(errors, "items", body, positions=False, comments=False)
    errors.check()
    return Edit("remove", disconnect=tuple(item.id for item in items), source="items")


JSON_API_KINDS: dict[str, Kind] = {"POST": "add", "PATCH": "set", "DELETE": "remove"}


def read_json_api(method: str, body: Any) -> Edit:
    """`{"data": [{"type", "id"}, ...]}`, or `{"data": {...} | null}` (cardinality one, checked later)."""
    # JSON:API: members it defines that mean nothing here (`links`, `meta`, `jsonapi`, `included`) and
    # members it does not define are ignored, never refused; only a document without `data`, or with
    # `data` beside `errors`, or `data` of the wrong shape is.
    if not isinstance(body, dict):
        raise BadRequest(messages.JSON_API_SHAPE, source={"pointer": ""})
    if "data" not in body:
        raise BadRequest(messages.JSON_API_DATA_MISSING, source={"pointer": ""})
    if "errors" in body:
        raise BadRequest(messages.JSON_API_DATA_AND_ERRORS, source={"pointer": "/errors"})
    data = body["data"]
    single = not isinstance(data, list)
    if data is None:
        identifiers: list[Any] = []
    elif isinstance(data, dict):
        identifiers = [data]
    elif isinstance(data, list):
        identifiers = data
    else:
        raise BadRequest(messages.JSON_API_SHAPE, source={"pointer": "/data"})
    errors = _Errors()
    _limit(errors, data=identifiers)
    items: list[Item] = []
    types: list[str] = []
    for index, identifier in enumerate(identifiers):
        name = "data" if single else f"data[{index}]"
        if not isinstance(identifier, dict):
            errors.fail(name, messages.JSON_API_SHAPE)
            continue
        kind = identifier.get("type")
        if not isinstance(kind, str) or not kind.strip():
            wrong_type = kind is not None and not isinstance(kind, str)
            errors.fail(f"{name}.type", messages.FIELD_NOT_STRING if wrong_type else messages.FIELD_REQUIRED)
        guid = parse_guid(identifier.get("id"))
        if guid is None:
            errors.fail(f"{name}.id", messages.FIELD_NOT_GUID)
        if guid is not None and isinstance(kind, str):
            items.append(Item(guid, index=index))
            types.append(kind)
    errors.check()
    kind_of_edit = JSON_API_KINDS[method]
    if kind_of_edit == "remove":
        return Edit(
            "remove",
            disconnect=tuple(item.id for item in items),
            types=tuple(types),
            single=single,
            source="data",
        )
    return Edit(kind_of_edit, tuple(items), types=tuple(types), single=single, source="data")
