"""Positions in the change log (the cursors) and events in SPEC §9's shape."""

from __future__ import annotations

import base64
import binascii
import struct
import zlib
from dataclasses import dataclass
from typing import Any

import orjson

from service import messages
from service.child_lists.queries import etag
from service.errors import BadRequest

# NOTIFY channel, notified at the commit of every transaction that changed something (payload: project).
CHANNEL = "relation_changes"
# An event id above every real one: a position after every event of its transaction.
LAST_ID = (1 << 63) - 1
_TOKEN_VERSION = 1
_TOKEN_HEAD = struct.Struct(">BIq")  # version, crc32 of the project, event id; then the commit key
# A transaction's commit key (schema.sql, relation_change_commit_key), big-endian: its commit
# snapshot's xmax, 2^31 - 1 minus the transactions then in flight, and its own transaction id.
_COMMIT_KEY = struct.Struct(">qiq")


def commit_xmax(key: bytes) -> int:
    """The xmax a commit key orders by (its first part)."""
    xmax: int = _COMMIT_KEY.unpack_from(key)[0]
    return xmax


def commit_xid(key: bytes) -> int:
    """The id of the transaction a commit key belongs to (its last part)."""
    xid: int = _COMMIT_KEY.unpack(key)[2]
    return xid


@dataclass(frozen=True, order=True)
class Position:
    """A place in the log: after the event `id` of the transaction with `commit_key` (bytes compare as
    the keys do). `START` is before everything; `Position.end(bound)` after every transaction a
    reader with that delivery bound may deliver (xmax ≤ bound), and before every one it may not."""

    commit_key: bytes
    id: int

    @classmethod
    def end(cls, bound: int) -> Position:
        # A key of int8send(bound + 1) alone sorts after every (xmax ≤ bound, …) key and before the rest.
        return cls(struct.pack(">q", bound + 1), 0)

    def token(self, project: str) -> str:
        raw = _TOKEN_HEAD.pack(_TOKEN_VERSION, zlib.crc32(project.encode()), self.id) + self.commit_key
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    @classmethod
    def from_token(cls, token: str, project: str) -> Position:
        """The position a cursor names; 400 for a malformed one or one made for another project."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            version, check, event_id = _TOKEN_HEAD.unpack_from(raw)
        except (binascii.Error, ValueError, struct.error):
            raise BadRequest(messages.CHANGES_CURSOR_INVALID) from None
        key = raw[_TOKEN_HEAD.size :]
        if (
            version != _TOKEN_VERSION
            or check != zlib.crc32(project.encode())
            or event_id < 0
            or len(key) > 24
        ):
            raise BadRequest(messages.CHANGES_CURSOR_INVALID)
        return cls(key, event_id)


START = Position(b"", 0)


@dataclass(frozen=True)
class Change:
    """One event of the log, the project it belongs to, and the position just after it."""

    project: str
    position: Position
    event: dict[str, Any]


def occurred(moment: Any) -> str:
    """UTC with milliseconds: `2026-11-23T10:00:00.123Z`."""
    text: str = moment.isoformat(timespec="milliseconds")
    return text[:23] + "Z"


def created_date(moment: Any) -> str:
    text: str = moment.isoformat()
    return text[:19] + "Z"


def event_data(row: Any) -> dict[str, Any]:
    kind = row["kind"]
    if kind.startswith("relationType."):
        data: dict[str, Any] = orjson.loads(row["type_data"])
        return data
    if kind == "list.reordered":
        return {
            "parentId": str(row["parent"]),
            "relationTypeAlias": row["type_alias"],
            "etag": etag(row["list_size"] or 0, row["list_version"] or 0),
        }
    return {
        "_id": row["relation_id"],
        "parentId": str(row["parent"]),
        "childId": str(row["child"]),
        "relationTypeAlias": row["type_alias"],
        "comment": row["comment"],
        "_createDate": created_date(row["created_at"]),
    }


def change(row: Any) -> Change:
    event = {
        "id": str(row["id"]),
        "type": row["kind"],
        "occurredAt": occurred(row["committed_at"]),
        "data": event_data(row),
    }
    return Change(row["project"], Position(bytes(row["commit_key"]), row["id"]), event)
