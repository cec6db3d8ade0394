"""Per-field validation of JSON object bodies, collecting Heartcore's `details.errors`."""

from __future__ import annotations

import re
import uuid
from collections.abc import Collection
from typing import Any

from service import messages, reserved
from service.bodies import parse_guid
from service.errors import ValidationFailed

ALIAS = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,99}")


def alias_problem(alias: Any) -> str | None:
    """Why `alias` cannot name a relation type, or None."""
    if not isinstance(alias, str) or not ALIAS.fullmatch(alias):
        return messages.ALIAS_INVALID
    if reserved.is_reserved(alias):
        return messages.ALIAS_RESERVED.format(alias=alias)
    return None


class Fields:
    """Reads typed fields from a body; every problem is collected and raised once by `check()`."""

    def __init__(self, body: dict[str, Any], *, message: str, known: Collection[str]) -> None:
        self.body = body
        self.message = message
        self.errors: dict[str, list[str]] = {}
        for name in body:
            if name not in known:
                self.fail(name, messages.FIELD_UNKNOWN)

    def fail(self, name: str, message: str) -> None:
        self.errors.setdefault(name, []).append(message)

    def present(self, name: str) -> bool:
        return name in self.body and self.body[name] is not None

    def guid(self, name: str) -> uuid.UUID | None:
        if not self.present(name):
            self.fail(name, messages.FIELD_REQUIRED)
            return None
        guid = parse_guid(self.body[name])
        if guid is None:
            self.fail(name, messages.FIELD_NOT_GUID)
        return guid

    def text(self, name: str, *, limit: int, required: bool = False, default: str = "") -> str:
        if not self.present(name):
            if required:
                self.fail(name, messages.FIELD_REQUIRED)
            return default
        value = self.body[name]
        if not isinstance(value, str):
            self.fail(name, messages.FIELD_NOT_STRING)
            return default
        if "\x00" in value:
            self.fail(name, messages.FIELD_NUL)
        if len(value) > limit:
            self.fail(name, messages.FIELD_TOO_LONG.format(limit=limit))
        if required and not value.strip():
            self.fail(name, messages.FIELD_REQUIRED)
        return value

    def boolean(self, name: str, *, default: bool = False) -> bool:
        if not self.present(name):
            return default
        value = self.body[name]
        if not isinstance(value, bool):
            self.fail(name, messages.FIELD_NOT_BOOLEAN)
            return default
        return value

    def alias(self, name: str) -> str:
        value = self.body.get(name)
        if value is None:
            self.fail(name, messages.FIELD_REQUIRED)
            return ""
        problem = alias_problem(value)
        if problem:
            self.fail(name, problem)
            return ""
        return str(value)

    def check(self) -> None:
        if self.errors:
            raise ValidationFailed(self.message, errors=self.errors)
