"""The NDJSON lines of SPEC §11, read without a database: an upload is split into numbered lines, each
line is checked with the API's own rules (alias and GUID formats, comment length, the relation-type
fields), and what passes becomes a relation-type line or a row for the staging table. Rules that need
more than one line (duplicates, cardinality, unknown types) are checked in PostgreSQL (service.py).

A relation line is first decoded by msgspec into a typed struct (`_FastLine`): shape, types, unknown
fields and the canonical GUID spelling are checked in C, which makes a well-formed line several times
cheaper than orjson and the checks in Python. The fast path only ever accepts: a line it cannot take as
it is (any problem, a GUID in another spelling, a type line) is read again by the general path, which
alone reports problems, so the messages are the same whichever path a line takes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
import orjson

from service import messages
from service.bodies import parse_guid
from service.errors import ValidationFailed
from service.fields import alias_problem
from service.relation_types.model import RelationTypeFields, read_fields
from service.relations.model import COMMENT_LIMIT

TYPE_KEY = "relationType"
RELATION_KEY = "relation"
RELATION_FIELDS = frozenset(
    {"_id", "parentId", "childId", "relationTypeAlias", "comment", "_createDate", "_links"}
)
# What an export writes besides a type's fields (and `_links`, which an API answer carries).
TYPE_EXTRAS = ("_id", "_createDate", "_updateDate", "_links")
MAX_LINE_BYTES = 1 << 20
MAX_PROBLEMS = 100
MAX_TYPES = 10_000


class _FastRelation(msgspec.Struct, forbid_unknown_fields=True):
    """A relation line's body as the fast path takes it; anything else goes the general way."""

    parentId: uuid.UUID  # msgspec reads the canonical spelling, upper case and no hyphens, as parse_guid
    childId: uuid.UUID
    relationTypeAlias: str
    comment: Annotated[str, msgspec.Meta(max_length=COMMENT_LIMIT)] | None = None
    created_at: str | None = msgspec.field(default=None, name="_createDate")
    relation_id: Annotated[int, msgspec.Meta(ge=1)] | None = msgspec.field(default=None, name="_id")
    links: msgspec.Raw = msgspec.field(default=msgspec.Raw(b"null"), name="_links")


class _FastLine(msgspec.Struct, forbid_unknown_fields=True):
    relation: _FastRelation


_FAST_DECODER = msgspec.json.Decoder(_FastLine)
_FAST_MISSES = (msgspec.DecodeError, msgspec.ValidationError, ValueError)

# A row of the staging table: line, relation type alias, parent, child, comment, created (or None).
Staged = tuple[int, str, uuid.UUID, uuid.UUID, str, datetime | None]


@dataclass(frozen=True)
class TypeLine:
    line: int
    fields: RelationTypeFields
    type_id: uuid.UUID | None
    created_at: datetime | None
    updated_at: datetime | None


class Problems:
    """Line problems in the order found, capped at the first MAX_PROBLEMS."""

    def __init__(self) -> None:
        self.found: list[tuple[int, str]] = []

    def add(self, line: int, message: str) -> None:
        self.found.append((line, message))

    @property
    def full(self) -> bool:
        return len(self.found) >= MAX_PROBLEMS

    def __bool__(self) -> bool:
        return bool(self.found)

    def error(self) -> ValidationFailed:
        """422 with `details.errors` keyed `line N`, the first MAX_PROBLEMS problems by line."""
        errors: dict[str, list[str]] = {}
        for line, message in sorted(self.found, key=lambda found: found[0])[:MAX_PROBLEMS]:
            errors.setdefault(f"line {line}", []).append(message)
        return ValidationFailed(messages.RELATION_INVALID, errors=errors)


def _moment(value: Any) -> datetime | None:
    if type(value) is not str:
        raise ValueError
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def field_problem(kind: str, name: str, message: str) -> str:
    """A line's problem with one field: `relation.parentId: Must be a GUID.`"""
    return messages.LINE_FIELD.format(kind=kind, field=name, message=message)


@dataclass
class LineReader:
    """Feeds an upload's bytes in and gets the staging rows of its complete lines out; type lines and
    problems are kept here (types are few: at most MAX_TYPES)."""

    problems: Problems = field(default_factory=Problems)
    types: dict[str, TypeLine] = field(default_factory=dict)
    lines: int = 0
    _rest: bytes = b""
    _skipping: bool = False
    _aliases: dict[str, str | None] = field(default_factory=dict)

    def feed(self, chunk: bytes) -> list[Staged]:
        rows: list[Staged] = []
        for raw in self._split(chunk):
            self._read(raw, rows)
        return rows

    def finish(self) -> list[Staged]:
        """The last line, when the upload does not end with a newline."""
        rows: list[Staged] = []
        if self._rest or self._skipping:
            self.lines += 1
            if not self._skipping:
                self._read(self._rest, rows)
            self._rest = b""
            self._skipping = False
        return rows

    def _split(self, chunk: bytes) -> Iterator[bytes]:
        parts = (self._rest + chunk).split(b"\n") if self._rest else chunk.split(b"\n")
        self._rest = parts.pop()
        for raw in parts:
            self.lines += 1
            if self._skipping:  # the end of a line already reported as too long
                self._skipping = False
                continue
            if len(raw) > MAX_LINE_BYTES:
                self.problems.add(self.lines, messages.LINE_TOO_LONG.format(limit=MAX_LINE_BYTES))
                continue
            yield raw
        if len(self._rest) > MAX_LINE_BYTES and not self._skipping:
            self.problems.add(self.lines + 1, messages.LINE_TOO_LONG.format(limit=MAX_LINE_BYTES))
            self._skipping = True
        if self._skipping:
            self._rest = b""

    def _read(self, raw: bytes, rows: list[Staged]) -> None:
        row = self._fast(raw)
        if row is not None:
            rows.append(row)
            return
        if not raw.strip():
            return
        try:
            line = orjson.loads(raw)
        except orjson.JSONDecodeError:
            self.problems.add(self.lines, messages.LINE_NOT_JSON)
            return
        if type(line) is not dict or len(line) != 1:
            self.problems.add(self.lines, messages.LINE_SHAPE)
            return
        body = line.get(RELATION_KEY)
        if body is not None:
            row = self._relation(body)
            if row is not None:
                rows.append(row)
        elif TYPE_KEY in line:
            self._type(line[TYPE_KEY])
        else:
            self.problems.add(self.lines, messages.LINE_SHAPE)

    def _fast(self, raw: bytes) -> Staged | None:
        """The row of a relation line that has no problem and needs no conversion, else None."""
        try:
            body = _FAST_DECODER.decode(raw).relation
            created = None if body.created_at is None else _moment(body.created_at)
        except _FAST_MISSES:
            return None
        comment = body.comment or ""
        if "\x00" in comment or self._alias_problem(body.relationTypeAlias) is not None:
            return None
        return (self.lines, body.relationTypeAlias, body.parentId, body.childId, comment, created)

    def _alias_problem(self, alias: Any) -> str | None:
        """alias_problem, remembered: a file names few aliases, on every line."""
        if type(alias) is not str:
            return messages.FIELD_REQUIRED if alias is None else messages.ALIAS_INVALID
        try:
            return self._aliases[alias]
        except KeyError:
            problem = alias_problem(alias)
            if len(self._aliases) < MAX_TYPES:
                self._aliases[alias] = problem
            return problem

    def _relation(self, body: Any) -> Staged | None:
        number = self.lines
        if type(body) is not dict:
            self.problems.add(number, messages.LINE_NOT_OBJECT.format(kind=RELATION_KEY))
            return None
        found: list[str] = []
        if not RELATION_FIELDS.issuperset(body):
            found.extend(
                field_problem(RELATION_KEY, name, messages.FIELD_UNKNOWN)
                for name in body
                if name not in RELATION_FIELDS
            )
        parent, child = (self._node(body, name, found) for name in ("parentId", "childId"))
        alias = body.get("relationTypeAlias")
        problem = self._alias_problem(alias)
        if problem:
            found.append(field_problem(RELATION_KEY, "relationTypeAlias", problem))
        comment = body.get("comment")
        if comment is None:
            comment = ""
        elif type(comment) is not str:
            found.append(field_problem(RELATION_KEY, "comment", messages.FIELD_NOT_STRING))
        elif len(comment) > COMMENT_LIMIT:
            found.append(
                field_problem(RELATION_KEY, "comment", messages.FIELD_TOO_LONG.format(limit=COMMENT_LIMIT))
            )
        elif "\x00" in comment:
            found.append(field_problem(RELATION_KEY, "comment", messages.FIELD_NUL))
        created = None
        if body.get("_createDate") is not None:
            try:
                created = _moment(body["_createDate"])
            except ValueError:
                found.append(field_problem(RELATION_KEY, "_createDate", messages.LINE_NOT_DATE))
        relation_id = body.get("_id")
        if relation_id is not None and (type(relation_id) is not int or relation_id < 1):
            found.append(field_problem(RELATION_KEY, "_id", messages.LINE_NOT_INTEGER))
        if found or parent is None or child is None:
            for message in found:
                self.problems.add(number, message)
            return None
        return (number, str(alias), parent, child, comment, created)

    @staticmethod
    def _node(body: dict[str, Any], name: str, found: list[str]) -> uuid.UUID | None:
        """The GUID `name`, or None with its problem added to `found`."""
        guid = parse_guid(body.get(name))
        if guid is None:
            problem = messages.FIELD_NOT_GUID if body.get(name) is not None else messages.FIELD_REQUIRED
            found.append(field_problem(RELATION_KEY, name, problem))
        return guid

    def _type(self, body: Any) -> None:
        number = self.lines
        if type(body) is not dict:
            self.problems.add(number, messages.LINE_NOT_OBJECT.format(kind=TYPE_KEY))
            return
        found: list[str] = []
        try:
            fields = read_fields({name: value for name, value in body.items() if name not in TYPE_EXTRAS})
        except ValidationFailed as failed:
            fields = None
            for name, problems in failed.errors.items():
                found.extend(field_problem(TYPE_KEY, name, problem) for problem in problems)
        type_id = None
        if body.get("_id") is not None:
            type_id = parse_guid(body["_id"])
            if type_id is None:
                found.append(field_problem(TYPE_KEY, "_id", messages.FIELD_NOT_GUID))
        moments: dict[str, datetime | None] = {}
        for name in ("_createDate", "_updateDate"):
            moments[name] = None
            if body.get(name) is not None:
                try:
                    moments[name] = _moment(body[name])
                except ValueError:
                    found.append(field_problem(TYPE_KEY, name, messages.LINE_NOT_DATE))
        if fields is not None and fields.alias in self.types:
            earlier = self.types[fields.alias].line
            found.append(messages.LINE_TYPE_DUPLICATE.format(alias=fields.alias, line=earlier))
        elif fields is not None and len(self.types) >= MAX_TYPES:
            found.append(messages.IMPORT_TOO_MANY_TYPES.format(limit=MAX_TYPES))
        if found or fields is None:
            for message in found:
                self.problems.add(number, message)
            return
        self.types[fields.alias] = TypeLine(
            number, fields, type_id, moments["_createDate"], moments["_updateDate"]
        )


def type_line(represented: dict[str, Any]) -> bytes:
    """An export's line for a relation type, from its §4 representation (without `_links`)."""
    return orjson.dumps({TYPE_KEY: represented}) + b"\n"


def relation_line(represented: dict[str, Any]) -> bytes:
    """A line for a relation, from its §4 representation (without `_links`): what the Umbraco import
    writes, and what the export's SQL writes for each row (tests compare the two)."""
    return orjson.dumps({RELATION_KEY: represented}) + b"\n"
