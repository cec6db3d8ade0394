"""Keyset cursors (SPEC §8): where a page starts, as an opaque string bound to its list.

A cursor holds a direction, the page number it leads to (so `_page` stays right) and the key of the
item it continues after (or before), in the route's own order. It is signed with HMAC-SHA256 over that
content and the list it was made for (project, route, path, filters, page size) under one key kept in
the database (`cursor_key`, made at migration and read by every worker at start-up), so a cursor that
was changed, cut short, or made for another list, page size or project is refused with 400 and never
answers another list's rows."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from service import messages
from service.db import Database, Record
from service.errors import BadRequest

# A key's parts: ids, positions and sides are integers, aliases strings.
ListKey = tuple[int | str, ...]
KEY_SQL = "SELECT key FROM cursor_key"
MAC_BYTES = 16
MAX_CURSOR = 1024
MAX_INT = (1 << 63) - 1
# Before every position: the start key of lists ordered by position.
MIN_POSITION = -MAX_INT - 1


@dataclass(frozen=True)
class Position:
    """A page's start: `forward` after `key` or backward before it; `page` is the page it is."""

    forward: bool
    page: int
    key: ListKey


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Cursors:
    """Makes and reads the cursors of every list with one secret."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _mac(self, scope: str, payload: bytes) -> bytes:
        return hmac.new(self._secret, scope.encode() + b"\0" + payload, hashlib.sha256).digest()[:MAC_BYTES]

    def make(self, scope: str, position: Position) -> str:
        payload = orjson.dumps([int(position.forward), position.page, *position.key])
        return f"{_b64(payload)}.{_b64(self._mac(scope, payload))}"

    def read(self, scope: str, cursor: str, shape: Sequence[type], *, parameter: str = "cursor") -> Position:
        """The position `cursor` (given as the query parameter `parameter`) names in the list `scope`;
        400 unless this list made it."""
        malformed = BadRequest(
            messages.CURSOR_MALFORMED.format(name=parameter), source={"parameter": parameter}
        )
        body, dot, mac = cursor.partition(".")
        if not dot or len(cursor) > MAX_CURSOR or not cursor.isascii():
            raise malformed
        try:
            payload, given = _unb64(body), _unb64(mac)
        except (binascii.Error, ValueError):
            raise malformed from None
        if len(given) != MAC_BYTES:
            raise malformed
        if not hmac.compare_digest(given, self._mac(scope, payload)):
            raise BadRequest(messages.CURSOR_FOREIGN.format(name=parameter), source={"parameter": parameter})
        # Signed by us for this list: its content has the shape we wrote, checked all the same.
        try:
            value = orjson.loads(payload)
        except orjson.JSONDecodeError:
            raise malformed from None
        if (
            not isinstance(value, list)
            or len(value) != 2 + len(shape)
            or value[0] not in (0, 1)
            or not _fits(value[1], int)
            or value[1] < 1
            or not all(_fits(part, kind) for part, kind in zip(value[2:], shape, strict=True))
        ):
            raise malformed
        return Position(bool(value[0]), value[1], tuple(value[2:]))


def _fits(value: object, kind: type) -> bool:
    if kind is int:
        return type(value) is int and -MAX_INT - 1 <= value <= MAX_INT
    return type(value) is kind


async def load(db: Database) -> Cursors:
    """The cursors of every worker, under the key schema.sql stored once."""
    return Cursors(bytes(await db.fetchval(KEY_SQL)))


@dataclass(frozen=True)
class PageStart:
    """Where one request's page starts: after (or before) `key`, skipping `offset` rows (only for
    `?page=`, counted from the list's start), and the list it belongs to (`scope`)."""

    page: int
    page_size: int
    forward: bool
    key: ListKey
    offset: int
    scope: str
    cursor: str | None = None

    @classmethod
    def of(
        cls,
        *,
        page: int,
        page_size: int,
        cursor: str | None,
        cursors: Cursors,
        scope: str,
        start: ListKey,
        parameter: str = "cursor",
    ) -> PageStart:
        """`start` is a key before the list's first item, in the shape of the list's keys; `parameter`
        the query parameter the cursor came in."""
        if cursor is None:
            return cls(page, page_size, True, start, (page - 1) * page_size, scope)
        position = cursors.read(scope, cursor, [type(part) for part in start], parameter=parameter)
        return cls(position.page, page_size, position.forward, position.key, 0, scope, cursor)


@dataclass(frozen=True)
class Slice:
    """A page's rows in list order, the list's total, whether more rows lie beyond the page in the
    direction it was read, and the first row as read (for columns beside the relation's)."""

    rows: list[Record]
    total: int
    more: bool
    head: Record | None


async def fetch(
    db: Database, sql: str, args: Sequence[object], window: PageStart, *, column: str = "id"
) -> Slice:
    """One page by one of `statements`' two: the window's key, then the limit (a row more than the
    page, to know whether there is more) and the offset follow `args`. An empty page is one row
    with the total and a null `column`."""
    found = await db.fetch(sql, *args, *window.key, window.page_size + 1, window.offset)
    head = found[0] if found else None
    rows = [row for row in found if row[column] is not None]
    more = len(rows) > window.page_size
    del rows[window.page_size :]
    if not window.forward:
        rows.reverse()
    return Slice(rows, int(head["total"]) if head is not None else 0, more, head)


def statements(
    *,
    total: str,
    select: str,
    where: str,
    order: Sequence[str],
    key_at: int,
    descending: bool = False,
    key_types: Sequence[str] = (),
) -> tuple[str, str]:
    """The forward and the backward statement of a list: its total (from a counter), and a page of
    `select … where` in `order` (newest first when `descending`) after (before) the key `$key_at…`,
    each served by an index in that order with no sort and no count. `key_types`: the SQL type each
    key part is read as from its text, for columns a key holds as a string (a time, a uuid); empty,
    the parts are bound as they are. The limit and offset parameters follow the key's."""
    if key_types and len(key_types) != len(order):
        raise ValueError("a key type for each column of the order, or none")
    casts = [f"::text::{kind}" for kind in key_types] or [""] * len(order)
    keys = ", ".join(f"${key_at + n}{cast}" for n, cast in enumerate(casts))
    columns = ", ".join(order)
    limit, offset = f"${key_at + len(order)}", f"${key_at + len(order) + 1}"

    def one(compare: str, direction: str) -> str:
        ordering = ", ".join(f"{column}{direction}" for column in order)
        return f"""
WITH total AS ({total})
SELECT total.*, page.* FROM total LEFT JOIN LATERAL (
    SELECT {select} WHERE {where} AND ({columns}) {compare} ({keys})
    ORDER BY {ordering} LIMIT {limit} OFFSET {offset}
) AS page ON true"""

    ahead, back = one(">", ""), one("<", " DESC")
    return (back, ahead) if descending else (ahead, back)
