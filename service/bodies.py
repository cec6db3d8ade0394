"""Reading request bodies and query values: size limit, media type, JSON, GUIDs. Every failure is an
ApiError with a sentence saying what is wrong."""

from __future__ import annotations

import re
import uuid
from typing import Any

import orjson
from starlette.requests import Request

from service import messages
from service.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

JSON_API = "application/vnd.api+json"
_GUID = re.compile(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}")
_BRACED = re.compile(r"\{(.*)\}")


def media_type(request: Request) -> str:
    return media_type_of(request.headers.get("content-type", ""))


def media_type_of(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def is_json_media_type(value: str) -> bool:
    return value in ("", "application/json", "text/json") or value.endswith("+json")


async def read_limited(request: Request, *, limit: int) -> bytes:
    """The raw body, refused with 413 as soon as it passes `limit` (never read whole first), whether
    its size was declared (Content-Length) or not (chunked). The pipeline's body step is its one caller."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(messages.BODY_TOO_LARGE.format(limit=limit))
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(messages.BODY_TOO_LARGE.format(limit=limit))
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(raw: bytes, content_type: str, *, allow: tuple[str, ...] = ()) -> Any:
    """`raw` as JSON. `allow` names extra media types accepted besides JSON ones."""
    found = media_type_of(content_type)
    if not is_json_media_type(found) and found not in allow:
        raise UnsupportedMediaType(messages.UNSUPPORTED_MEDIA_TYPE.format(media_type=found))
    if not raw.strip():
        raise BadRequest(messages.EMPTY_BODY)
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest(messages.INVALID_UTF8) from None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequest(messages.INVALID_JSON) from None


def parse_guid(value: Any) -> uuid.UUID | None:
    """A GUID in any of the usual spellings (braces, upper case, no hyphens), or None."""
    if not isinstance(value, str) or len(value) > 40:
        return None
    text = value.strip(" ")  # spaces only: a newline or tab is no part of a GUID
    braced = _BRACED.fullmatch(text)
    if braced:
        text = braced.group(1)
    if not _GUID.fullmatch(text):
        return None
    return uuid.UUID(text)


def path_guid(value: str) -> uuid.UUID:
    guid = parse_guid(value)
    if guid is None:
        raise BadRequest(messages.INVALID_GUID.format(value=value[:64]))
    return guid


def query_bool(request: Request, name: str) -> bool:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return False
    lowered = raw.strip().lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise BadRequest(messages.INVALID_BOOLEAN.format(name=name))
