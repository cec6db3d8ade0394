"""Bulk import and export (issue 14), against PostgreSQL's own COPY of the same rows in the same run.

1,000,000 relations in 1,000 lists (`--bulk-relations`, `--bulk-lists`) are written as an NDJSON file;
PostgreSQL COPYs the same rows (as text) into a bare table with no index; the service (one worker)
imports the file through POST /relation/import into an empty project and exports it again through
GET /relation/export, while the worker's resident memory is sampled every 50 ms. Targets: import
within 3 x that COPY, export at least 200,000 relations/s, the worker under 150 MB during either."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench import servers

CHUNK = 1 << 20
TYPE_LINES = 6  # the built-in types of the new project


def rows(relations: int, lists: int, run: int) -> Iterator[tuple[str, str, int]]:
    """(parent, child, position within its list) of the data set. GUIDs differ from run to run (`run`):
    the same keys again would meet the dead index entries of the last run's rows."""
    per_list = max(relations // lists, 1)
    for number in range(relations):
        parent = uuid.UUID(int=(0xB0 << 120) + (run << 64) + number // per_list)
        child = uuid.UUID(int=(0xC0 << 120) + (run << 64) + number)
        yield str(parent), str(child), number % per_list + 1


def write_files(folder: Path, relations: int, lists: int, run: int) -> tuple[Path, Path]:
    ndjson, text = folder / "bulk-import.ndjson", folder / "bulk-copy.txt"
    with ndjson.open("wb") as lines, text.open("w") as copy:
        for parent, child, position in rows(relations, lists, run):
            line = {
                "parentId": parent,
                "childId": child,
                "relationTypeAlias": "umbDocument",
                "comment": "",
                "_createDate": "2026-11-23T10:00:00Z",
            }
            lines.write(orjson.dumps({"relation": line}) + b"\n")
            copy.write(f"umbDocument\t{parent}\t{child}\t{position << 20}\t\t2026-11-23 10:00:00+00\n")
    return ndjson, text


COPY_COLUMNS = ["type_alias", "parent", "child", "position", "comment", "created_at"]
BARE_TABLE = """CREATE TABLE bench_bulk_copy (project text NOT NULL DEFAULT 'bench', type_alias text,
    parent uuid, child uuid, position bigint, comment text, created_at timestamptz)"""
# For context: the same COPY into a table with relation's indexes and foreign key (what any writer of
# `relation` pays, whatever it does in Python).
INDEXED_TABLE = """CREATE TABLE bench_bulk_copy (LIKE relation INCLUDING DEFAULTS INCLUDING INDEXES);
ALTER TABLE bench_bulk_copy ALTER COLUMN project SET DEFAULT '{project}';
ALTER TABLE bench_bulk_copy ADD FOREIGN KEY (project, type_alias) REFERENCES relation_type (project, alias)"""


async def copy_seconds(url: str, text: Path, table_sql: str) -> float:
    """Seconds for PostgreSQL's own COPY of the rows (as text) into the table `table_sql` makes."""
    from service.schema import connect

    connection = await connect(url)
    try:
        await connection.execute("DROP TABLE IF EXISTS bench_bulk_copy")
        await connection.execute(table_sql)
        started = time.perf_counter()
        with text.open("rb") as source:
            await connection.copy_to_table(
                "bench_bulk_copy", source=source, columns=COPY_COLUMNS, format="text"
            )
        seconds = time.perf_counter() - started
        await connection.execute("DROP TABLE bench_bulk_copy")
        return seconds
    finally:
        await connection.close()


class PeakMemory:
    """The largest VmRSS of the server's process while the block runs."""

    def __init__(self, server: servers.Server) -> None:
        self.server = server
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_kb = max(self.peak_kb, self.server.rss_kb())
            time.sleep(0.05)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_kb = max(self.peak_kb, self.server.rss_kb())


def chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            yield chunk


def run(url: str, folder: Path, *, relations: int, lists: int, log: Any) -> dict[str, Any]:
    import asyncio

    from service.projects.service import SCOPES, create_key
    from service.schema import connect, migrate

    asyncio.run(migrate(url))
    project = f"bulk-{int(time.time())}"

    async def key() -> str:
        from service.db import Database

        db = Database(url, min_size=1, max_size=1)
        await db.connect()
        try:
            return (await create_key(db, project=project, scopes=list(SCOPES))).key
        finally:
            await db.disconnect()

    api_key = asyncio.run(key())
    log(f"bulk: writing {relations:,} relations in {lists:,} lists")
    ndjson, text = write_files(folder, relations, lists, run=int(time.time()) & 0xFFFFFFFF)
    try:
        bare_seconds = asyncio.run(copy_seconds(url, text, BARE_TABLE))
        log(f"  PostgreSQL COPY into a bare table: {bare_seconds:.2f} s")
        indexed_seconds = asyncio.run(copy_seconds(url, text, INDEXED_TABLE.format(project=project)))
        log(
            f"  PostgreSQL COPY into a table with relation's indexes and foreign key: {indexed_seconds:.2f} s"
        )
        headers = {"Api-Key": api_key}
        with servers.service(url, folder / "service-bulk.log") as server, httpx.Client(timeout=3600) as http:
            base_kb = server.rss_kb()
            with PeakMemory(server) as import_memory:
                started = time.perf_counter()
                answer = http.post(
                    f"{server.url}/relation/import",
                    content=chunks(ndjson),
                    headers={**headers, "Content-Type": "application/x-ndjson"},
                )
                import_seconds = time.perf_counter() - started
            if answer.status_code != 200:
                raise RuntimeError(f"import answered {answer.status_code}: {answer.text[:500]}")
            log(f"  import: {import_seconds:.2f} s, {answer.json()}")
            with PeakMemory(server) as export_memory:
                started = time.perf_counter()
                exported = 0
                with http.stream("GET", f"{server.url}/relation/export", headers=headers) as stream:
                    for chunk in stream.iter_bytes(CHUNK):
                        exported += chunk.count(b"\n")
                exported -= TYPE_LINES
                export_seconds = time.perf_counter() - started
            log(f"  export: {exported:,} relations in {export_seconds:.2f} s")
    finally:
        ndjson.unlink(missing_ok=True)
        text.unlink(missing_ok=True)
        asyncio.run(_drop(url, project, connect))
    return {
        "relations": relations,
        "lists": lists,
        "copy_seconds": bare_seconds,
        "indexed_copy_seconds": indexed_seconds,
        "import_seconds": import_seconds,
        "import_ratio": import_seconds / bare_seconds,
        "export_seconds": export_seconds,
        "exported": exported,
        "export_rate": exported / export_seconds,
        "rss_start_mb": base_kb / 1024,
        "rss_import_mb": import_memory.peak_kb / 1024,
        "rss_export_mb": export_memory.peak_kb / 1024,
    }


async def _drop(url: str, project: str, connect: Any) -> None:
    connection = await connect(url)
    try:
        await connection.execute("DELETE FROM relation WHERE project = $1", project)
        await connection.execute("DELETE FROM project WHERE project = $1", project)
        # The next run then finds space to reuse, not a table twice the size with dead rows in it.
        await connection.execute("VACUUM relation")
        await connection.execute("VACUUM child_list")
    finally:
        await connection.close()


def summary(result: dict[str, Any]) -> list[str]:
    ratio, rate = result["import_ratio"], result["export_rate"]
    peak = max(result["rss_import_mb"], result["rss_export_mb"])
    return [
        f"bulk ({result['relations']:,} relations in {result['lists']:,} lists, 1 worker):",
        f"  PostgreSQL COPY into a bare table {result['copy_seconds']:>7.2f} s",
        f"  the same COPY, relation's indexes {result['indexed_copy_seconds']:>7.2f} s  (for context)",
        f"  POST /relation/import             {result['import_seconds']:>7.2f} s  ({ratio:.2f} x COPY)",
        f"  GET /relation/export              {result['export_seconds']:>7.2f} s  ({rate:,.0f} relations/s)",
        f"  worker RSS: {result['rss_start_mb']:.1f} MB idle, peak {result['rss_import_mb']:.1f} MB "
        f"importing, {result['rss_export_mb']:.1f} MB exporting",
        "targets (issue 14):",
        f"  [{'met' if ratio <= 3 else 'NOT met'}] import within 3 x COPY: {ratio:.2f}",
        f"  [{'met' if rate >= 200_000 else 'NOT met'}] export >= 200,000 relations/s: {rate:,.0f}",
        f"  [{'met' if peak < 150 else 'NOT met'}] worker RSS < 150 MB during either: {peak:.1f} MB",
    ]
