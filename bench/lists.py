"""The size section of `make bench` (issue 12): lists of 10, 1,000 and 1,000,000 items on every list
route, p50 at one connection of page 1, of a `next` step taken from deep in the list and of an explicit
deep `?page=`; exact totals; a connect into the 1,000,000-item child list against one into a 10-item
list; and a chart of p50 against list size per route.

Its data set lives in a database of its own (`<bench database>_lists`): for each size N, one entity
G_N that is the parent of N children under the type `parentsN` (by type, by parent, the child list and
the parent side of related) and the child of N parents under the bidirectional dependency type
`childrenN` (by child, `?dependency=true`, and the child side of related, which is then 2N long)."""

from __future__ import annotations

import asyncio
import json
import math
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from bench import load, seed, servers
from bench.load import Load, Result
from service.db import Database
from service.projects.service import SCOPES, create_key, create_project
from service.relations.queries import POSITION_GAP
from service.schema import connect, migrate

PROJECT = "bench-lists"
SIZES = (10, 1_000, 1_000_000)
PAGE_SIZE = 100
LAYOUT = 1
# (route, label, path template): {g} the entity, {n} the size.
ROUTES = (
    ("type", "/relation/{alias}", "/relation/parents{n}"),
    ("parent", "/relation/parent/{guid}", "/relation/parent/{g}"),
    ("child", "/relation/child/{guid}", "/relation/child/{g}"),
    ("child-dependency", "/relation/child/{guid}?dependency=true", "/relation/child/{g}?dependency=true"),
    ("related", "/relation/related/{guid}", "/relation/related/{g}"),
    ("child-list", "/relation/parent/{guid}/{alias}", "/relation/parent/{g}/parents{n}"),
)
KINDS = ("page 1", "next from deep", "deep ?page=")
MARKER = """
CREATE TABLE IF NOT EXISTS bench_lists_seed (
    layout integer NOT NULL, sizes text NOT NULL, max_id bigint NOT NULL
)"""
TYPE = """
INSERT INTO relation_type (project, alias, type_id, name, is_bidirectional, is_dependency)
VALUES ($1, $2, gen_random_uuid(), $2, $3, $4) ON CONFLICT DO NOTHING"""
ROWS = f"""
INSERT INTO relation (project, type_alias, parent, child, position)
SELECT $1, $2, CASE WHEN $5 THEN $3 ELSE md5($4 || g)::uuid END,
       CASE WHEN $5 THEN md5($4 || g)::uuid ELSE $3 END, g::bigint * {POSITION_GAP}
FROM generate_series(1, $6) AS g"""


def entity(size: int) -> Any:
    return seed.named_guid(f"{PROJECT}:g:{size}")


def expected_total(route: str, size: int) -> int:
    return 2 * size if route == "related" else size


async def seed_lists(url: str, *, force: bool, log: Callable[[str], None]) -> str:
    """The lists' data set at `url` (seeded once, then reset to it); returns an API key."""
    await migrate(url)
    db = Database(url, min_size=1, max_size=2)
    await db.connect()
    try:
        await create_project(db, project=PROJECT)
        key = (await create_key(db, project=PROJECT, scopes=list(SCOPES), name="bench")).key
    finally:
        await db.disconnect()
    connection = await connect(url)
    try:
        await connection.execute(MARKER)
        row = await connection.fetchrow("SELECT layout, sizes, max_id FROM bench_lists_seed")
        if not force and row and row["layout"] == LAYOUT and row["sizes"] == repr(SIZES):
            removed = await connection.execute("DELETE FROM relation WHERE id > $1", row["max_id"])
            log(f"reusing the lists data set ({removed.lower()} added by earlier runs)")
        else:
            await _seed(connection, log)
        return key
    finally:
        await connection.close()


async def _seed(connection: asyncpg.Connection, log: Callable[[str], None]) -> None:
    started = time.monotonic()
    log(f"seeding the lists data set ({', '.join(f'{n:,}' for n in SIZES)} items)")
    async with connection.transaction():
        await connection.execute("DELETE FROM relation WHERE project = $1", PROJECT)
        for size in SIZES:
            for alias, as_parent, flags in (
                (f"parents{size}", True, (False, False)),
                (f"children{size}", False, (True, True)),
            ):
                await connection.execute(TYPE, PROJECT, alias, *flags)
                # One statement per list, as an import writes it: the triggers count it grouped.
                await connection.execute(
                    ROWS, PROJECT, alias, entity(size), f"{PROJECT}:{alias}:", as_parent, size
                )
        max_id = await connection.fetchval("SELECT max(id) FROM relation")
        await connection.execute("DELETE FROM bench_lists_seed")
        await connection.execute(
            "INSERT INTO bench_lists_seed VALUES ($1, $2, $3)", LAYOUT, repr(SIZES), max_id
        )
    await connection.execute("VACUUM (ANALYZE) relation")
    log(f"  seeded in {time.monotonic() - started:.1f} s")


def _get(base: str, path: str, key: str) -> dict[str, Any]:
    request = urllib.request.Request(base + path, headers={"Api-Key": key})
    with urllib.request.urlopen(request, timeout=60) as response:
        body: dict[str, Any] = json.loads(response.read())
        return body


@dataclass
class Measured:
    """p50 (ms) per (route, size, kind), and the totals the service answered."""

    p50: dict[tuple[str, int, str], float]
    totals: dict[tuple[str, int], tuple[int, int]]  # answered, expected
    connect: dict[int, float]
    results: list[Result]


def paths(base: str, key: str, route_path: str, size: int, route: str) -> dict[str, str]:
    """The three requests of a list: page 1, the next link of the middle page, the middle page."""
    path = route_path.format(g=entity(size), n=size)
    sep = "&" if "?" in path else "?"
    pages = math.ceil(expected_total(route, size) / PAGE_SIZE)
    # related: three quarters in, on its child side (its first half is the parent side)
    middle = max(pages * 3 // 4 if route == "related" else pages // 2, 1)
    deep = f"{path}{sep}page={middle}&pageSize={PAGE_SIZE}"
    following = _get(base, deep, key)["_links"].get("next", {}).get("href", base + deep)
    return {
        "page 1": f"{path}{sep}pageSize={PAGE_SIZE}",
        "next from deep": following.removeprefix(base),
        "deep ?page=": deep,
    }


def measure(
    url: str, key: str, out: Path, *, seconds: float, rounds: int, tool: str, log: Callable[[str], None]
) -> Measured:
    """Each request at one connection in `rounds` short runs, alternating sizes; the lowest p50 of
    each (bursts of other work on a shared machine hit every size alike)."""
    folder = out / "lists"
    folder.mkdir(parents=True, exist_ok=True)
    p50: dict[tuple[str, int, str], float] = {}
    totals: dict[tuple[str, int], tuple[int, int]] = {}
    results: list[Result] = []
    headers = {"Api-Key": key}
    with servers.service(url, out / "logs" / "service-lists.log") as service:
        files: dict[tuple[str, int, str], str] = {}
        for route, _, route_path in ROUTES:
            for size in SIZES:
                first = _get(service.url, route_path.format(g=entity(size), n=size) + "", key)
                totals[route, size] = (first["_totalItems"], expected_total(route, size))
                for kind, path in paths(service.url, key, route_path, size, route).items():
                    file = folder / f"{route}-{size}-{kind.split()[0]}.txt"
                    file.write_text(path + "\n")
                    files[route, size, kind] = str(file)
        log(f"lists: p50 at one connection, {rounds} rounds of {seconds:g} s")
        for route, _, _ in ROUTES:
            for kind in KINDS:
                for round_number in range(rounds):
                    for size in SIZES:
                        name = f"lists {route} {kind} @{size}"
                        result = load.run(
                            name, service.url, Load("paths", (files[route, size, kind],)), headers=headers,
                            duration=seconds, conns=1, warmup=0.5 if round_number == 0 else 0.0, tool=tool,
                        )  # fmt: skip
                        if result.errors:
                            results.append(result)
                        value = (
                            result.p50_ms
                            if result.requests
                            else _timed(service.url, files[route, size, kind], key)
                        )
                        if (route, size, kind) not in p50 or value < p50[route, size, kind]:
                            p50[route, size, kind] = value
                log(f"  {route} {kind}: " + ", ".join(f"{p50[route, n, kind]:.2f} ms @{n:,}" for n in SIZES))
        connect = _connects(service, key, folder, seconds=seconds, rounds=rounds, tool=tool, log=log)
    return Measured(p50, totals, connect, results)


def _timed(base: str, file: str, key: str, times: int = 3) -> float:
    """The median of a few requests one after the other, for a request slower than a whole run."""
    path = Path(file).read_text().strip()
    spent = []
    for _ in range(times):
        started = time.perf_counter()
        _get(base, path, key)
        spent.append((time.perf_counter() - started) * 1000)
    return sorted(spent)[times // 2]


def _connects(
    service: servers.Server, key: str, folder: Path, *, seconds: float, rounds: int, tool: str,
    log: Callable[[str], None],
) -> dict[int, float]:  # fmt: skip
    best: dict[int, float] = {}
    files: dict[int, str] = {}
    for size in (10, 1_000_000):
        written = folder / f"connect-{size}.txt"
        written.write_text(f"/relation/parent/{entity(size)}/parents{size}?pageSize=10\n")
        files[size] = str(written)
    for round_number in range(rounds):
        for size, name in files.items():
            result = load.run(
                f"lists connect @{size}", service.url, Load("connect", (name,)), headers={"Api-Key": key},
                duration=seconds, conns=1, warmup=0.5 if round_number == 0 else 0.0, tool=tool,
            )  # fmt: skip
            best[size] = min(best.get(size, math.inf), result.p50_ms)
    log(f"  connect: {best[1_000_000]:.2f} ms into 1,000,000, {best[10]:.2f} ms into 10")
    return best


def table(measured: Measured) -> list[str]:
    """The size table: p50 per route, kind and size, the ratio 1,000,000 / 1,000, and the totals."""
    header = f"{'list (pageSize 100)':<40} {'kind':<15}" + "".join(f"{n:>12,}" for n in SIZES) + "  1M/1k"
    lines = [header, "-" * len(header)]
    for route, label, _ in ROUTES:
        for kind in KINDS:
            values = [measured.p50[route, n, kind] for n in SIZES]
            ratio = measured.p50[route, 1_000_000, kind] / measured.p50[route, 1_000, kind]
            cells = "".join(f"{value:>9.2f} ms" for value in values)
            lines.append(f"{label:<40} {kind:<15}{cells}  {ratio:5.2f}")
    exact = all(answered == expected for answered, expected in measured.totals.values())
    lines.append(f"totals exact on every list and size: {'yes' if exact else 'NO'}")
    for (route, size), (answered, expected) in measured.totals.items():
        if answered != expected:
            lines.append(f"  {route} @{size:,}: _totalItems {answered:,}, rows {expected:,}")
    big, small = measured.connect[1_000_000], measured.connect[10]
    lines.append(f"connect 1 into the 1,000,000-item child list {big:.2f} ms, into 10 items {small:.2f} ms")
    return lines


def targets(measured: Measured) -> list[str]:
    out = []

    def check(label: str, ok: bool, detail: str) -> None:
        out.append(f"  [{'met' if ok else 'NOT met'}] {label}: {detail}")

    for kind in ("page 1", "next from deep"):
        ratios = {
            route: measured.p50[route, 1_000_000, kind] / measured.p50[route, 1_000, kind]
            for route, _, _ in ROUTES
        }
        worst = max(ratios, key=lambda route: ratios[route])
        check(
            f"{kind} p50 at 1,000,000 <= 1.5 x at 1,000 (every route)",
            ratios[worst] <= 1.5,
            f"worst {worst} {ratios[worst]:.2f}",
        )
    exact = all(answered == expected for answered, expected in measured.totals.values())
    check("totals exact", exact, f"{len(measured.totals)} lists")
    ratio = measured.connect[1_000_000] / measured.connect[10]
    check("connect into 1,000,000 <= 1.5 x into 10 (1 connection)", ratio <= 1.5, f"{ratio:.2f}")
    return out


def chart(measured: Measured, path: Path) -> None:
    """p50 against list size per route (log-log), one panel per route, a line per kind: SVG by hand,
    so the benchmark needs no plotting library."""
    columns, width, height, pad = 3, 300, 220, 44
    colours = {"page 1": "#1f77b4", "next from deep": "#2ca02c", "deep ?page=": "#d62728"}
    values = [max(value, 0.01) for value in measured.p50.values()]
    low, high = math.log10(min(values) / 1.5), math.log10(max(values) * 1.5)
    x_low, x_high = math.log10(SIZES[0]), math.log10(SIZES[-1])
    parts = []
    rows = math.ceil(len(ROUTES) / columns)
    total_width, total_height = columns * width, rows * height + 40
    parts.append(
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total_width}" height="{total_height}" '
        f'font-family="sans-serif" font-size="11"><rect width="100%" height="100%" fill="white"/>'
    )
    for number, (route, label, _) in enumerate(ROUTES):
        left, top = (number % columns) * width, (number // columns) * height

        def x(size: float, left: int = left) -> float:
            return left + pad + (math.log10(size) - x_low) / (x_high - x_low) * (width - pad - 12)

        def y(ms: float, top: int = top) -> float:
            return top + 24 + (high - math.log10(max(ms, 0.01))) / (high - low) * (height - 24 - 30)

        parts.append(f'<text x="{left + pad}" y="{top + 14}" font-weight="bold">{_escape(label)}</text>')
        parts.append(
            f'<rect x="{left + pad}" y="{top + 24}" width="{width - pad - 12}" height="{height - 54}" '
            'fill="none" stroke="#999"/>'
        )
        for size in SIZES:
            parts.append(
                f'<text x="{x(size):.1f}" y="{top + height - 14}" text-anchor="middle">{_size(size)}</text>'
            )
        for exponent in range(math.ceil(low), math.floor(high) + 1):
            parts.append(
                f'<text x="{left + pad - 4}" y="{y(10**exponent) + 4:.1f}" text-anchor="end">'
                f"{10**exponent:g} ms</text>"
            )
        for kind, colour in colours.items():
            points = " ".join(f"{x(n):.1f},{y(measured.p50[route, n, kind]):.1f}" for n in SIZES)
            parts.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>')
            for n in SIZES:
                cx, cy = x(n), y(measured.p50[route, n, kind])
                parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3" fill="{colour}"/>')
    legend_y = rows * height + 24
    for number, (kind, colour) in enumerate(colours.items()):
        parts.append(
            f'<rect x="{pad + number * 160}" y="{legend_y - 9}" width="12" height="12" fill="{colour}"/>'
            f'<text x="{pad + number * 160 + 18}" y="{legend_y + 1}">{_escape(kind)}</text>'
        )
    parts.append(
        f'<text x="{total_width - 8}" y="{legend_y + 1}" text-anchor="end">p50 at one connection '
        "against list size (items), pageSize 100</text></svg>"
    )
    path.write_text("\n".join(parts) + "\n")


def _size(size: int) -> str:
    return f"{size // 1_000_000}M" if size >= 1_000_000 else f"{size // 1000}k" if size >= 1000 else str(size)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def run(
    url: str, out: Path, *, force: bool, seconds: float, rounds: int, tool: str, log: Callable[[str], None]
) -> tuple[list[str], list[str], Measured]:
    """Seed, measure, chart: the size table, its targets, and the measurements."""
    key = asyncio.run(seed_lists(url, force=force, log=log))
    measured = measure(url, key, out, seconds=seconds, rounds=rounds, tool=tool, log=log)
    chart(measured, out / "lists.svg")
    return table(measured), targets(measured), measured
