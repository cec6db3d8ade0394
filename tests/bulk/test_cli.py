"""`relations export` and `relations import` (service/cli.py over service/bulk), run as the console
script against the session's database: the same import as the route, progress on and off a terminal."""

from __future__ import annotations

import asyncio
import os
import pty
from pathlib import Path

import httpx
import orjson

from service.db import Database
from service.projects import queries as project_queries
from tests.bulk.helpers import export_of, ndjson, relation, relation_type
from tests.conftest import Project, guid
from tests.test_cli import RELATIONS, new_alias, relations


async def test_export_then_import_into_a_new_project(
    database_url: str, client: httpx.AsyncClient, project: Project, db: Database, tmp_path: Path
) -> None:
    parent = guid()
    body = ndjson(
        relation_type("seeAlso", "See also"), *(relation(parent, guid(), "seeAlso") for _ in range(3))
    )
    answer = await client.post(
        "/relation/import", content=body, headers={**project.headers, "Content-Type": "application/x-ndjson"}
    )
    assert answer.status_code == 200, answer.text
    out = tmp_path / "export.ndjson"
    exported = await relations(database_url, "export", "--project", project.alias, "-o", str(out))
    assert exported.code == 0, exported.err
    assert exported.out == ""
    # off a terminal: plain progress lines with rows and rows/s, nothing else
    assert "rows/s" in exported.err and "(done)" in exported.err and "\x1b[" not in exported.err
    lines = out.read_bytes().splitlines()
    assert len(lines) == 7 + 3
    assert (
        lines
        == b"".join(
            chunk + b"\n"
            for chunk in (await client.get("/relation/export", headers=project.headers)).content.splitlines()
        ).splitlines()
    )

    target = new_alias()
    dry = await relations(database_url, "import", "--project", target, str(out), "--dry-run")
    assert dry.code == 0, dry.err
    assert orjson.loads(dry.out)["relations"] == {"created": 3, "updated": 0, "unchanged": 0}
    assert "nothing was stored" in dry.err
    assert await project_queries.project_exists(db, project=target), "import creates the project"
    imported = await relations(database_url, "import", "--project", target, str(out))
    assert imported.code == 0, imported.err
    assert orjson.loads(imported.out) == {
        "relationTypes": {"created": 1, "updated": 0, "unchanged": 6},
        "relations": {"created": 3, "updated": 0, "unchanged": 0},
    }
    again = await export_of(client, db, target)
    assert [line["relation"]["childId"] for line in again if "relation" in line] == [
        orjson.loads(line)["relation"]["childId"] for line in lines[7:]
    ]


async def test_import_problems_and_failed_export(database_url: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.ndjson"
    bad.write_bytes(ndjson(relation(guid(), guid()), "{oops", relation("x", guid())))
    run = await relations(database_url, "import", "--project", new_alias(), str(bad))
    assert run.code == 1
    assert "line 2: Not valid JSON in UTF-8." in run.err
    assert "line 3: relation.parentId: Must be a GUID." in run.err
    out = tmp_path / "none.ndjson"
    missing = await relations(database_url, "export", "--project", new_alias(), "-o", str(out))
    assert missing.code == 1 and "no project" in missing.err
    assert not out.exists() and not out.with_name("none.ndjson.partial").exists()


async def test_progress_bar_on_a_terminal(database_url: str, project: Project, tmp_path: Path) -> None:
    leader, follower = pty.openpty()
    process = await asyncio.create_subprocess_exec(
        str(RELATIONS),
        "export",
        "--project",
        project.alias,
        "-o",
        str(tmp_path / "out.ndjson"),
        env={**os.environ, "DATABASE_URL": database_url, "COLUMNS": "120", "TERM": "xterm"},
        stdout=asyncio.subprocess.PIPE,
        stderr=follower,
    )
    os.close(follower)
    await asyncio.wait_for(process.wait(), timeout=60)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal's other end closed
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    assert process.returncode == 0
    text = seen.decode(errors="replace")
    assert "\x1b[" in text, "rich draws a live bar on a terminal"
    assert "rows/s" in text and "━" in text
