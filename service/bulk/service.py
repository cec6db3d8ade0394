"""Export and import, the one implementation behind both the HTTP routes and the CLI.

Export: one REPEATABLE READ, READ ONLY transaction (so the file is a state the project really had,
whatever is written meanwhile), the type lines, then the relation lines, written by PostgreSQL and
streamed with COPY, chunk by chunk as the client takes them: memory stays flat at any size.

Import: one READ COMMITTED transaction on a dedicated connection. The upload is read line by line
(lines.py) and COPYed in batches into a temporary staging table as it arrives, never held whole;
then the project's import lock is taken (schema.sql: list writers wait while it merges), the rules
that span lines are checked in SQL, a plan of every named list's final order is built, and the
plan is applied with plain INSERT and UPDATE on `relation` and `relation_type`, so their triggers
(list counters, and whatever else is kept by triggers) see every row. Any problem raises before the
commit: nothing is stored, also when the client disconnects midway."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import asyncpg

from service import messages
from service.bulk import lines as bulk_lines
from service.bulk import queries
from service.bulk.lines import MAX_PROBLEMS, LineReader, Staged, TypeLine, field_problem
from service.db import Database
from service.errors import Conflict, Forbidden, RelationTypeNotFound
from service.relation_types.model import describe, from_row, type_id

# The chunks of the export's body: COPY's data is gathered into pieces of this size (memory stays flat).
EXPORT_CHUNK_BYTES = 1 << 20
STAGE_BATCH = 10_000
# Imports creating more rows than this refresh the planner's statistics before they commit.
ANALYZE_AFTER = 10_000

Progress = Callable[[int], None]


@dataclass
class Tally:
    created: int = 0
    updated: int = 0
    unchanged: int = 0


@dataclass
class Outcome:
    """The answer of an import (SPEC §11)."""

    relation_types: Tally = field(default_factory=Tally)
    relations: Tally = field(default_factory=Tally)
    lines: int = 0

    def body(self) -> dict[str, Any]:
        return {"relationTypes": asdict(self.relation_types), "relations": asdict(self.relations)}


class DryRun(Exception):
    """Carries a dry run's outcome out of its transaction, which is rolled back."""

    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome


# --- export ---------------------------------------------------------------------------------------


@asynccontextmanager
async def exporting(
    db: Database, *, project: str, alias: str | None = None, progress: Progress | None = None
) -> AsyncIterator[AsyncIterator[bytes]]:
    """The export's chunks of lines, read from one snapshot held while the block runs. An unknown
    `alias` raises RelationTypeNotFound before any line is produced."""
    async with db.dedicated(isolation="repeatable_read", readonly=True) as conn:
        await queries.prepare(conn)
        types = await queries.rows(conn, queries.EXPORT_TYPES, project, alias)
        if alias is not None and not types:
            raise RelationTypeNotFound(alias)
        stream = _ExportStream(conn, project=project, progress=progress)
        try:
            yield stream.chunks(types)
        finally:
            await stream.close()


class _ExportStream:
    """The type lines, then the relation lines as PostgreSQL's COPY sends them. The COPY runs in a task
    of its own, one chunk ahead of the client: while a chunk waits to be taken, the driver stops
    reading and PostgreSQL stops writing, so memory stays flat. A chunk the client has not taken
    after IDLE_SECONDS cancels the COPY (and with it the snapshot). `close` lets a COPY still running
    (a client gone midway) run out into nothing, so the connection is free for the end of the
    transaction (cancelling the driver's COPY from outside would leave it waiting on the server)."""

    def __init__(self, conn: asyncpg.Connection, *, project: str, progress: Progress | None) -> None:
        self.conn, self.project, self.progress = conn, project, progress
        self.ahead: asyncio.Queue[bytes | Exception | None] = asyncio.Queue(maxsize=1)
        self.copying: asyncio.Task[None] | None = None
        self.closed = False
        self.gathered = bytearray()

    async def chunks(self, types: Sequence[Any]) -> AsyncIterator[bytes]:
        yield b"".join(bulk_lines.type_line(describe(row)) for row in types)
        self.copying = asyncio.ensure_future(self._copy([row["alias"] for row in types]))
        written = 0
        while (chunk := await self.ahead.get()) is not None:
            if isinstance(chunk, Exception):
                raise chunk  # so a failed export never ends its body
            written += chunk.count(b"\n")
            if self.progress is not None:
                self.progress(written)
            yield chunk

    async def close(self) -> None:
        self.closed = True
        while not self.ahead.empty():  # frees a sink waiting to hand over its chunk
            self.ahead.get_nowait()
        if self.copying is not None:
            await self.copying

    async def _copy(self, aliases: list[str]) -> None:
        """Each type's relations in turn (the types by alias, as EXPORT_TYPES gives them)."""
        try:
            for alias in aliases:
                await queries.export_relations(
                    self.conn, project=self.project, alias=alias, output=self._sink
                )
        except Exception as error:
            await self._hand_over(error)
        else:
            if self.gathered:
                await self._hand_over(bytes(self.gathered))
            await self._hand_over(None)

    async def _hand_over(self, item: bytes | Exception | None) -> None:
        if not self.closed:
            await self.ahead.put(item)

    async def _sink(self, data: bytes) -> None:
        """Gathers the driver's reads (often a few KiB each) into chunks of EXPORT_CHUNK_BYTES."""
        self.gathered += data
        while len(self.gathered) >= EXPORT_CHUNK_BYTES and not self.closed:
            chunk = bytes(self.gathered[:EXPORT_CHUNK_BYTES])
            del self.gathered[:EXPORT_CHUNK_BYTES]
            await asyncio.wait_for(self.ahead.put(chunk), queries.IDLE_SECONDS)


# --- import ---------------------------------------------------------------------------------------


async def import_lines(
    db: Database,
    *,
    project: str,
    chunks: AsyncIterable[bytes],
    may_change_types: bool,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> Outcome:
    """Import an NDJSON upload into `project` (which exists) in one transaction. Raises
    ValidationFailed (422, `details.errors` keyed `line N`), Forbidden (types to create or change
    without `may_change_types`), or whatever ends the upload; in each case nothing is stored."""
    try:
        async with db.dedicated() as conn:
            outcome = await _import(conn, project, chunks, may_change_types, progress)
            if dry_run:
                raise DryRun(outcome)
            return outcome
    except DryRun as done:
        return done.outcome


async def _import(
    conn: asyncpg.Connection,
    project: str,
    chunks: AsyncIterable[bytes],
    may_change_types: bool,
    progress: Progress | None,
) -> Outcome:
    await queries.prepare(conn)
    await queries.run(conn, queries.CREATE_STAGING)
    reader = LineReader()
    staged = await _stage(conn, reader, chunks, progress)
    problems = reader.problems
    outcome = Outcome(lines=reader.lines)
    if problems.full:
        raise problems.error()
    await queries.run(conn, queries.ANALYZE_STAGING)
    # The checks of the file alone run before the project's lock is taken, so list edits wait only
    # for the merge (a type deleted in between fails the foreign key: 409, retry).
    if staged:
        cardinality = await _cardinalities(conn, project, reader)
        for row in await queries.rows(conn, queries.UNKNOWN_TYPES, list(cardinality), MAX_PROBLEMS):
            unknown = messages.RELATION_TYPE_UNKNOWN.format(alias=row["type_alias"])
            problems.add(row["line"], field_problem("relation", "relationTypeAlias", unknown))
        for row in await queries.rows(conn, queries.DUPLICATES, MAX_PROBLEMS):
            problems.add(row["line"], messages.LINE_DUPLICATE.format(line=row["first"]))
    if problems:
        raise problems.error()

    await queries.run(conn, queries.LOCK_PROJECT, project)
    stored = {
        row["alias"]: row
        for row in await queries.rows(conn, queries.TYPES_FOR_UPDATE, project, list(reader.types))
    }
    created_types, changed_types = _type_changes(reader.types, stored, outcome.relation_types)
    cardinality = await _cardinalities(conn, project, reader)
    await queries.run(conn, queries.LISTS, project)
    await queries.run(conn, queries.PLAN, project)
    ones = [alias for alias, value in cardinality.items() if value == "one"]
    for row in await queries.rows(conn, queries.CARDINALITY_ONE, ones, MAX_PROBLEMS):
        taken = messages.CARDINALITY_ONE_TAKEN.format(alias=row["type_alias"])
        problems.add(row["line"], field_problem("relation", "childId", taken))
    for alias in changed_types:
        line = reader.types[alias]
        tightened = line.fields.cardinality == "one" and stored[alias]["cardinality"] != "one"
        if tightened and await queries.rows(conn, queries.SEVERAL_CHILDREN_ELSEWHERE, project, alias):
            conflict = field_problem("relationType", "cardinality", messages.CARDINALITY_ONE_CONFLICT)
            problems.add(line.line, conflict)
    if problems:
        raise problems.error()
    if (created_types or changed_types) and not may_change_types:
        raise Forbidden()

    try:
        await _write(conn, project, reader, created_types, changed_types, outcome)
    except (asyncpg.IntegrityConstraintViolationError, asyncpg.TransactionRollbackError):
        # A type deleted or created meanwhile by the API (its writers do not take the project's lock),
        # or a deadlock with such a writer: nothing is stored, and the import can simply run again.
        raise Conflict(messages.IMPORT_CONFLICT) from None
    return outcome


async def _write(
    conn: asyncpg.Connection,
    project: str,
    reader: LineReader,
    created_types: list[str],
    changed_types: list[str],
    outcome: Outcome,
) -> None:
    for alias in created_types:
        line = reader.types[alias]
        if not await queries.insert_type(
            conn, project=project, line=line, type_id=line.type_id or type_id(alias, line.fields.name)
        ):
            raise Conflict(messages.IMPORT_CONFLICT)
    for alias in changed_types:
        await queries.update_type(conn, project=project, line=reader.types[alias])

    tally = (await queries.rows(conn, queries.TALLY))[0]
    outcome.relations = Tally(tally["created"], tally["updated"], tally["unchanged"])
    await queries.run(conn, queries.UPDATE_RELATIONS, project)
    await queries.run(conn, queries.INSERT_RELATIONS, project)
    await queries.run(conn, queries.INSERT_FRESH, project)
    if outcome.relations.created + outcome.relations.updated >= ANALYZE_AFTER:
        await queries.run(conn, queries.ANALYZE_WRITTEN)


async def _cardinalities(conn: asyncpg.Connection, project: str, reader: LineReader) -> dict[str, str]:
    """Every type the import may use (the project's and the file's), with its cardinality after it."""
    found = {
        row["alias"]: row["cardinality"] for row in await queries.rows(conn, queries.TYPE_ALIASES, project)
    }
    found.update({alias: line.fields.cardinality for alias, line in reader.types.items()})
    return found


async def _stage(
    conn: asyncpg.Connection, reader: LineReader, chunks: AsyncIterable[bytes], progress: Progress | None
) -> int:
    """Read the upload into the staging table; the number of rows staged. Reading stops early once
    MAX_PROBLEMS problems are found (the answer is 422 anyway)."""
    pending: list[Staged] = []
    staged = 0
    async for chunk in chunks:
        pending.extend(reader.feed(chunk))
        if reader.problems.full:
            return staged
        if len(pending) >= STAGE_BATCH:
            await queries.stage(conn, records=pending)
            staged += len(pending)
            pending = []
            if progress is not None:
                progress(reader.lines)
    pending.extend(reader.finish())
    if pending:
        await queries.stage(conn, records=pending)
        staged += len(pending)
    if progress is not None:
        progress(reader.lines)
    return staged


def _type_changes(
    found: dict[str, TypeLine], stored: dict[str, Any], tally: Tally
) -> tuple[list[str], list[str]]:
    """The aliases of the file's types to create and to change; counts the unchanged ones too."""
    created: list[str] = []
    changed: list[str] = []
    for alias, line in found.items():
        if alias not in stored:
            created.append(alias)
        elif from_row(stored[alias]) != line.fields:
            changed.append(alias)
        else:
            tally.unchanged += 1
    tally.created, tally.updated = len(created), len(changed)
    return created, changed
