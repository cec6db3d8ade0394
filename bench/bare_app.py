"""The bare handler the service is compared with: Starlette + an asyncpg pool, no auth, no tenancy
checks, no HAL links beyond two hrefs, on the service's own `relation` table and database.

Built like the reference harness' `db_app.py` (driver asyncpg): a pool of 10, asyncpg's default reset
on release (`BARE_POOL_RESET=0` makes it a no-op, as in the service), rows returned by JSONResponse.

    GET /row/{id}        SELECT ... WHERE project = $1 AND id = $2            (one row by primary key)
    GET /parent/{guid}   SELECT ... WHERE project = $1 AND parent = $2 ORDER BY type_alias, position, id

Environment: BENCH_DSN (asyncpg DSN), BENCH_HOST (socket directory, optional), BENCH_PROJECT.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

DSN = os.environ.get("BENCH_DSN", "postgresql://localhost/relations_bench")
HOST = os.environ.get("BENCH_HOST") or None
PROJECT = os.environ.get("BENCH_PROJECT", "bench")
POOL = int(os.environ.get("BARE_POOL_SIZE", "10"))
COLUMNS = "id, type_alias, parent, child, comment, created_at"
SQL_ROW = f"SELECT {COLUMNS} FROM relation WHERE project = $1 AND id = $2"
SQL_PARENT = (
    f"SELECT {COLUMNS} FROM relation WHERE project = $1 AND parent = $2 ORDER BY type_alias, position, id"
)

state: dict[str, Any] = {}


async def _no_reset(connection: asyncpg.Connection) -> None:
    return None


def to_json(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, uuid.UUID):
            value = str(value)
        elif isinstance(value, datetime.datetime):
            value = value.isoformat()
        out[key] = value
    out["_links"] = {
        "self": {"href": f"/relation/{out['id']}"},
        "parent": {"href": f"/relation/parent/{out['parent']}"},
    }
    return out


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    options: dict[str, Any] = {"min_size": POOL, "max_size": POOL}
    if HOST:
        options["host"] = HOST
    if os.environ.get("BARE_POOL_RESET", "1") == "0":
        options["reset"] = _no_reset
    state["pool"] = await asyncpg.create_pool(DSN, **options)
    yield
    await state["pool"].close()


def not_found() -> Response:
    return JSONResponse({"error": "not found"}, status_code=404)


async def row(request: Request) -> Response:
    record = await state["pool"].fetchrow(SQL_ROW, PROJECT, request.path_params["id"])
    if record is None:
        return not_found()
    return JSONResponse(to_json(dict(record)))


async def parent(request: Request) -> Response:
    try:
        guid = uuid.UUID(request.path_params["guid"])
    except ValueError:
        return not_found()
    records = await state["pool"].fetch(SQL_PARENT, PROJECT, guid)
    items = [to_json(dict(record)) for record in records]
    return JSONResponse(
        {
            "_links": {"self": {"href": f"/relation/parent/{guid}"}},
            "count": len(items),
            "_embedded": {"relations": items},
        }
    )


async def health(request: Request) -> Response:
    return JSONResponse({"ok": True})


app = Starlette(
    routes=[Route("/row/{id:int}", row), Route("/parent/{guid}", parent), Route("/health", health)],
    lifespan=lifespan,
)
