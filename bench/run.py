"""`python -m bench`: seed, start the service and the bare handler, measure, print one table."""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import random
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson

from bench import feed, load, seed, servers, webhooks
from bench.load import Load, Result

ROOT = servers.ROOT
SAMPLE_PATHS = 20_000
# An edit answers with the list's first page: the same 10 items whatever the list's size, so that
# connecting into 10 and into 10,000 items compares the edits, not the answers' sizes.
LIST_ANSWER = "?pageSize=10"
SCALE_KEYS = 200
ROUNDS = 5


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--relations", type=int, default=1_000_000, help="size of the main data set")
    parser.add_argument(
        "--small-relations",
        type=int,
        default=10_000,
        help="size of the second data set (0: skip the comparison)",
    )
    parser.add_argument("--duration", type=float, default=10, help="seconds measured per route")
    parser.add_argument("--warmup", type=float, default=2, help="unrecorded seconds before each measurement")
    parser.add_argument("--conns", type=int, default=32, help="concurrent connections")
    parser.add_argument("--tool", choices=("auto", "wrk", "python"), default="auto", help="load generator")
    parser.add_argument("--only", default="", help="comma-separated route names to measure (default all)")
    parser.add_argument("--memory-requests", type=int, default=100_000, help="0 skips the memory phase")
    parser.add_argument("--reliability", type=float, default=15, help="seconds per load-test phase (0 skips)")
    parser.add_argument("--reseed", action="store_true", help="seed again even if the data set is there")
    parser.add_argument(
        "--out", type=Path, default=None, help="results folder (default bench-results/<time>)"
    )
    parser.add_argument("--bulk-relations", type=int, default=1_000_000, help="relations of the bulk phase")
    parser.add_argument("--bulk-lists", type=int, default=1_000, help="lists they are spread over")
    return parser.parse_args(argv)


def database_urls(relations: int, small: int) -> tuple[str, str | None]:
    """BENCH_DATABASE_URL (and a sibling database for the small data set), else the embedded server."""
    url = os.environ.get("BENCH_DATABASE_URL")
    if not url:
        from service import embedded

        url = embedded.start(ROOT / ".data" / "bench", database="relations_bench")
        small_url = (
            embedded.start(ROOT / ".data" / "bench", database="relations_bench_small") if small else None
        )
        return url, small_url
    if not small:
        return url, None
    parts = urlsplit(url)
    small_url = urlunsplit(parts._replace(path=parts.path.rstrip("/") + "_small"))
    try:
        asyncio.run(_create_database(url, parts.path.strip("/") + "_small"))
    except Exception as error:  # no CREATEDB right: the size comparison is skipped
        log(f"cannot create the small database ({error}); skipping the 1M vs 10k comparison")
        return url, None
    return url, small_url


async def _create_database(url: str, name: str) -> None:
    from service.schema import connect

    connection = await connect(url)
    try:
        if not await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


@dataclass
class Paths:
    """Files of request paths for load.lua, written from the seed layout."""

    folder: Path
    files: dict[str, str] = field(default_factory=dict)

    def write(self, name: str, lines: list[str]) -> str:
        path = self.folder / f"{name}.txt"
        path.write_text("\n".join(lines) + "\n")
        self.files[name] = str(path)
        return str(path)


def write_paths(folder: Path, relations: int, prefix: str) -> Paths:
    folder.mkdir(parents=True, exist_ok=True)
    paths = Paths(folder)
    rng = random.Random(7)
    main = seed.layouts(relations)[0]
    p20 = main.segment("p20")
    assert p20 is not None, "the data set is too small to have parents of 20"
    first_id, last_id = 1, main.relations - main.relations % 20  # main project's rows come first
    ids = [
        rng.randint(first_id, min(last_id, sum(s.rows for s in main.segments))) for _ in range(SAMPLE_PATHS)
    ]
    parents = [p20.parent(main.project, rng.randrange(p20.lists)) for _ in range(5_000)]
    children = [main.child(rng.randrange(main.child_pool)) for _ in range(5_000)]
    paths.write(f"{prefix}ids", [f"/relation/{i}" for i in ids])
    paths.write(f"{prefix}bare_ids", [f"/row/{i}" for i in ids])
    paths.write(f"{prefix}parents", [f"/relation/parent/{guid}" for guid in parents])
    paths.write(f"{prefix}bare_parents", [f"/parent/{guid}" for guid in parents])
    paths.write(f"{prefix}children", [f"/relation/child/{guid}?dependency=true" for guid in children])
    referenced = []
    for _ in range(1_000):
        chosen = [main.child(rng.randrange(main.child_pool)) for _ in range(50)]
        referenced.append("/relation/referenced?" + "&".join(f"id={guid}" for guid in chosen))
    paths.write(f"{prefix}referenced", referenced)
    # The size comparison: the same number of distinct keys at both sizes (as warm in the cache), so
    # that it compares how the queries scale with the table, not whether a working set fits in memory.
    few_parents = [
        p20.parent(main.project, n) for n in rng.sample(range(p20.lists), min(SCALE_KEYS, p20.lists))
    ]
    few_children = [
        main.child(n) for n in rng.sample(range(main.child_pool), min(SCALE_KEYS, main.child_pool))
    ]
    paths.write(f"{prefix}scale_parents", [f"/relation/parent/{guid}" for guid in few_parents])
    paths.write(
        f"{prefix}scale_children", [f"/relation/child/{guid}?dependency=true" for guid in few_children]
    )
    paths.write(
        f"{prefix}scale_referenced",
        [
            "/relation/referenced?" + "&".join(f"id={g}" for g in rng.sample(few_children, 50))
            for _ in range(SCALE_KEYS)
        ],
    )
    mixed = [
        line for name in ("ids", "parents", "children", "referenced") for line in _read(paths, prefix + name)
    ]
    paths.write(f"{prefix}reads", mixed)
    for kind, name in (("l10", "lists10"), ("l10000", "lists10000")):
        segment = main.segment(kind)
        if segment:
            paths.write(
                prefix + name,
                [
                    f"/relation/parent/{segment.parent(main.project, n)}/{segment.type_alias}{LIST_ANSWER}"
                    for n in range(segment.lists)
                ],
            )
    # PUT set: fresh parents, so each request replaces a list of (after the first) 1,000 new children.
    paths.write(
        prefix + "sets", [f"/relation/parent/{seed.named_guid(f'set:{n}')}/umbDocument" for n in range(200)]
    )
    return paths


def _read(paths: Paths, name: str) -> list[str]:
    return Path(paths.files[name]).read_text().splitlines()[:2_000]


def lists_available(base_url: str, headers: dict[str, str], path: str) -> bool:
    """Whether the ordered-list routes (SPEC §6) are served: GET of a list answers 200."""
    request = urllib.request.Request(base_url + path, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return bool(response.status == 200)
    except urllib.error.HTTPError:
        return False


@dataclass
class Row:
    route: str
    result: Result | None
    reference: str = "bare PK"
    note: str = ""


def fmt_table(rows: list[Row], references: dict[str, Result]) -> str:
    header = f"{'route':<44} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'ratio':>6}  vs"
    lines = [header, "-" * len(header)]
    for row in rows:
        if row.result is None:
            lines.append(f"{row.route:<44} {'—':>8} {'':>8} {'':>8} {'':>7} {'':>6}  {row.note}")
            continue
        r = row.result
        ref = references.get(row.reference)
        ratio = f"{r.rps / ref.rps:.2f}" if ref and ref is not r else "1.00" if ref is r else ""
        lines.append(
            f"{row.route:<44} {r.rps:>8.0f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f} {r.errors:>7} {ratio:>6}  "
            f"{row.reference if ref is not r else ''}{'  ' + row.note if row.note else ''}"
        )
    return "\n".join(lines)


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
        self.out: Path = args.out or ROOT / "bench-results" / stamp
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "raw").mkdir(exist_ok=True)
        self.only = {name.strip() for name in args.only.split(",") if name.strip()}
        self.results: list[Result] = []
        self.extra: dict[str, Any] = {}

    def wanted(self, name: str) -> bool:
        return not self.only or name in self.only

    def measure(
        self, name: str, url: str, what: Load, headers: dict[str, str], *, conns: int | None = None,
        duration: float | None = None,
    ) -> Result:  # fmt: skip
        result = load.run(
            name,
            url,
            what,
            headers=headers,
            duration=duration or self.args.duration,
            conns=conns or self.args.conns,
            warmup=self.args.warmup,
            tool=self.args.tool,
        )
        (self.out / "raw" / f"{name.replace('/', '_')}.txt").write_text(result.raw or str(result.as_dict()))
        self.results.append(result)
        log(f"  {name}: {result.rps:.0f} req/s, p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms, "
            f"errors {result.errors}")  # fmt: skip
        return result

    def alternate(self, pairs: list[tuple[str, str, Load, dict[str, str]]]) -> list[Result]:
        """Each (name, url, load, headers) at one connection, in ROUNDS short alternating runs; each
        side keeps its lowest p50, so bursts of other work on a shared machine hit both sides alike."""
        best: dict[str, Result] = {}
        seconds = max(self.args.duration / 5, 2)
        for round_number in range(ROUNDS):
            for name, url, what, headers in pairs:
                warmup = self.args.warmup if round_number == 0 else 0.0
                result = load.run(name, url, what, headers=headers, duration=seconds, conns=1, warmup=warmup,
                                  tool=self.args.tool)  # fmt: skip
                (self.out / "raw" / f"{name}.{round_number}.txt").write_text(
                    result.raw or str(result.as_dict())
                )
                if name not in best or result.p50_ms < best[name].p50_ms:
                    best[name] = result
        for name, *_ in pairs:
            self.results.append(best[name])
            log(f"  {name}: best p50 of {ROUNDS} rounds {best[name].p50_ms:.2f} ms")
        return [best[name] for name, *_ in pairs]

    def rounds(self, runs: list[tuple[str, str, Load, dict[str, str]]]) -> list[Result]:
        """Each (name, url, load, headers) at full concurrency in ROUNDS alternating runs of a fifth of
        the duration; each keeps its best round, so bursts of other work on a shared machine hit all
        alike and the ratios between them hold within the run."""
        best: dict[str, Result] = {}
        seconds = max(self.args.duration / ROUNDS, 2)
        for round_number in range(ROUNDS):
            for name, url, what, headers in runs:
                warmup = self.args.warmup if round_number == 0 else 0.0
                result = load.run(name, url, what, headers=headers, duration=seconds, conns=self.args.conns,
                                  warmup=warmup, tool=self.args.tool)  # fmt: skip
                (self.out / "raw" / f"{name}.{round_number}.txt").write_text(
                    result.raw or str(result.as_dict())
                )
                if name not in best or result.rps > best[name].rps:
                    best[name] = result
        for name, *_ in runs:
            self.results.append(best[name])
            log(f"  {name}: best of {ROUNDS} rounds {best[name].rps:.0f} req/s")
        return [best[name] for name, *_ in runs]

    def sizes(
        self, service: servers.Server, headers: dict[str, str], paths: Paths, small_url: str,
        small_paths: Paths, small_keys: dict[str, str], logs: Path,
    ) -> tuple[dict[str, Result], dict[str, Result]]:  # fmt: skip
        """p50 of the parent, child-dependency and referenced reads on both data sets."""
        log("latency at one connection: large vs small data set")
        small_headers = {"Api-Key": small_keys[seed.MAIN_PROJECT]}
        large: dict[str, Result] = {}
        small: dict[str, Result] = {}
        with servers.service(small_url, logs / "service-small.log") as other:
            for name in ("parents", "children", "referenced"):
                big, little = self.alternate(
                    [
                        (f"{name}@{self.args.relations}", service.url,
                         Load("paths", (paths.files["scale_" + name],)), headers),
                        (f"{name}@{self.args.small_relations}", other.url,
                         Load("paths", (small_paths.files["small_scale_" + name],)), small_headers),
                    ]
                )  # fmt: skip
                large[name], small[name] = big, little
        return large, small

    def single_connects(
        self, service: servers.Server, headers: dict[str, str], files: dict[str, str]
    ) -> tuple[dict[str, Result], dict[str, Result]]:
        """One connect at a time into a 10,000-item list and into a 10-item list (at 32 connections
        the few 10,000-item lists are also a queue: their edits are serialised)."""
        log("latency at one connection: connect into 10,000 vs into 10 items")
        big, little = self.alternate(
            [
                ("connect@10000", service.url, Load("connect", (files["lists10000"],)), headers),
                ("connect@10", service.url, Load("connect", (files["lists10"],)), headers),
            ]
        )
        return {"connect": big}, {"connect": little}

    def memory(self, server: servers.Server, what: Load, headers: dict[str, str]) -> dict[str, Any]:
        """RSS of a fresh worker after half of `--memory-requests` and after all of them."""
        target = self.args.memory_requests
        served, rss, rate = 0, {}, 1000.0
        log(f"memory: {target:,} requests of the mixed load")
        checkpoints = [target // 2, target]
        while checkpoints:
            left = checkpoints[0] - served
            seconds = max(1, min(10, round(left / rate)))
            chunk = load.run("memory", server.url, what, headers=headers, duration=seconds, warmup=0,
                             conns=self.args.conns, tool=self.args.tool)  # fmt: skip
            served += chunk.requests
            rate = max(chunk.rps, 1.0)
            if served >= checkpoints[0]:
                rss[checkpoints.pop(0)] = (served, server.rss_kb())
        (half_n, half_kb), (full_n, full_kb) = rss[target // 2], rss[target]
        return {
            "requests_half": half_n,
            "rss_half_mb": half_kb / 1024,
            "requests": full_n,
            "rss_mb": full_kb / 1024,
            "growth_mb": (full_kb - half_kb) / 1024,
        }


def pgbouncer_rows(
    bench: Bench, url: str, files: dict[str, str], headers: dict[str, str], logs: Path
) -> list[Row]:
    """The by-id read and the create through pgbouncer in transaction pooling mode
    (RELATIONS_PGBOUNCER=transaction: no statement cache), against the same run's direct figures."""
    from tests import pgbouncer

    if pgbouncer.binary() is None:
        log("no pgbouncer installed: skipping the pgbouncer rows")
        return []
    log("through pgbouncer (transaction pooling)")
    rows: list[Row] = []
    mode = {"RELATIONS_PGBOUNCER": "transaction"}
    with (
        pgbouncer.running(url) as through,
        servers.service(through, logs / "service-pgbouncer.log", extra=mode) as pooled,
    ):
        for name, label, what in (
            ("pgbouncer-id", "GET /relation/{id} via pgbouncer", Load("paths", (files["ids"],))),
            ("pgbouncer-post", "POST /relation via pgbouncer", Load("post", ("umbDocument",))),
        ):
            if bench.wanted(name):
                rows.append(Row(f"{name}: {label}", bench.measure(name, pooled.url, what, headers)))
    return rows


def lists_url() -> str:
    """The size section's database: BENCH_DATABASE_URL's sibling `<name>_lists`, else embedded."""
    url = os.environ.get("BENCH_DATABASE_URL")
    if not url:
        from service import embedded

        return embedded.start(ROOT / ".data" / "bench", database="relations_bench_lists")
    parts = urlsplit(url)
    name = parts.path.strip("/") + "_lists"
    asyncio.run(_create_database(url, name))
    return urlunsplit(parts._replace(path="/" + name))


def lists_section(args: argparse.Namespace, bench: Bench) -> tuple[list[str], list[str]]:
    """The size table (issue 12) and its targets; the chart goes to the results folder."""
    from bench import lists

    (bench.out / "logs").mkdir(exist_ok=True)
    table, met, measured = lists.run(
        lists_url(), bench.out, force=args.reseed, seconds=max(args.duration / 10, 1), rounds=ROUNDS,
        tool=args.tool, log=log,
    )  # fmt: skip
    bench.results.extend(measured.results)
    lines = [
        "",
        f"p50 at 1 connection (best of {ROUNDS}), lists of {', '.join(f'{n:,}' for n in lists.SIZES)}",
        *table,
    ]
    lines.append(f"chart: {bench.out / 'lists.svg'}")
    return lines, met


BULK = "bulk"


def bulk_phase(bench: Bench, url: str) -> list[str]:
    from bench import bulk

    result = bulk.run(
        url, bench.out, relations=bench.args.bulk_relations, lists=bench.args.bulk_lists, log=log
    )
    bench.extra["bulk"] = result
    (bench.out / "bulk.json").write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    return bulk.summary(result)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    bench = Bench(args)
    started = time.monotonic()
    if bench.only == {"lists"}:
        lines, met = lists_section(args, bench)
        report = "\n".join([*lines, "", "targets (issue 12):", *met])
        print(report, flush=True)
        (bench.out / "table.txt").write_text(report + "\n")
        return 1 if any(r.errors for r in bench.results) else 0
    if bench.only == {BULK}:  # runs alone: it needs none of the seeded data
        url, _ = database_urls(args.relations, 0)
        report = "\n".join(bulk_phase(bench, url))
        print(report, flush=True)
        (bench.out / "table.txt").write_text(report + "\n")
        return 0
    url, small_url = database_urls(args.relations, args.small_relations)
    keys = asyncio.run(seed.seed(url, args.relations, force=args.reseed, log=log))
    small_keys = (
        asyncio.run(seed.seed(small_url, args.small_relations, force=args.reseed, log=log))
        if small_url
        else {}
    )
    paths = write_paths(bench.out / "paths", args.relations, "")
    small_paths = write_paths(bench.out / "paths", args.small_relations, "small_") if small_url else None
    headers = {"Api-Key": keys[seed.MAIN_PROJECT]}
    from service.db import split_url

    dsn, options = split_url(url)
    logs = bench.out / "logs"
    logs.mkdir(exist_ok=True)
    rows: list[Row] = []
    refs: dict[str, Result] = {}
    feed_lag: dict[str, Any] = {}
    webhook_lag: dict[str, Any] = {}
    files = paths.files

    def route(name: str, server: servers.Server, what: Load, reference: str = "bare PK", **kw: Any) -> None:
        if bench.wanted(name.split(":")[0]):
            rows.append(Row(name, bench.measure(name, server.url, what, headers, **kw), reference))

    log("measuring the bare handler and the service")
    with (
        servers.bare(dsn, options.get("host"), seed.MAIN_PROJECT, logs / "bare.log") as bare,
        servers.service(url, logs / "service.log") as service,
    ):
        has_lists = "lists10" in files and lists_available(service.url, headers, _read(paths, "lists10")[0])
        scale: dict[str, Result] = {}
        small_scale: dict[str, Result] = {}
        if small_url and small_paths and bench.wanted("scale"):
            scale, small_scale = bench.sizes(
                service, headers, paths, small_url, small_paths, small_keys, logs
            )
        if has_lists and "lists10000" in files and bench.wanted("connect1"):
            one = bench.single_connects(service, headers, files)
            scale.update(one[0])
            small_scale.update(one[1])
        refs["bare PK"] = bench.measure("bare PK", bare.url, Load("paths", (files["bare_ids"],)), {})
        rows.append(Row("bare: GET /row/{id} (1 PK SELECT)", refs["bare PK"]))
        refs["bare list"] = bench.measure("bare list", bare.url, Load("paths", (files["bare_parents"],)), {})
        rows.append(Row("bare: GET /parent/{guid} (20 rows)", refs["bare list"], "bare list"))
        route("id: GET /relation/{id}", service, Load("paths", (files["ids"],)))
        if bench.wanted("id-limited"):
            # What a rate limit costs: the bare handler, GET by id and GET by id through a key whose
            # budget is too large to refuse, in alternating rounds (the ratios are within one run).
            log("GET /relation/{id} with and without a rate limit, alternating with the bare handler")
            ids = Load("paths", (files["ids"],))
            bare_pk, plain, limited = bench.rounds(
                [
                    ("limit-bare", bare.url, Load("paths", (files["bare_ids"],)), {}),
                    ("limit-off", service.url, ids, headers),
                    ("limit-on", service.url, ids, {"Api-Key": keys[seed.LIMITED_KEY]}),
                ]
            )
            refs["bare PK, rounds"] = bare_pk
            rows.append(Row("id-limited: bare PK, alternating rounds", bare_pk, "bare PK, rounds"))
            rows.append(Row("id-limited: GET /relation/{id}, no limit", plain, "bare PK, rounds"))
            rows.append(Row("id-limited: GET /relation/{id}, limit on", limited, "bare PK, rounds"))
        route(
            "parent: GET /relation/parent/{guid} (20)",
            service,
            Load("paths", (files["parents"],)),
            "bare list",
        )
        route("child: GET /relation/child/{g}?dependency", service, Load("paths", (files["children"],)))
        route("referenced: GET /relation/referenced (50 ids)", service, Load("paths", (files["referenced"],)))
        route("post: POST /relation", service, Load("post", ("umbDocument",)))
        if has_lists:
            route("connect10: PATCH connect 1 into 10 items", service, Load("connect", (files["lists10"],)))
            if "lists10000" in files:
                route(
                    "connect10k: PATCH connect 1 into 10,000",
                    service,
                    Load("connect", (files["lists10000"],)),
                )
            route("set: PUT set of 1,000 items", service, Load("set", (files["sets"], "1000")))
            if bench.wanted("jsonapi"):
                # The same lists of 10 read as HAL and as JSON:API linkage, one after the other.
                lists10 = Load("paths", (files["lists10"],))
                refs["list HAL"] = bench.measure("list HAL", service.url, lists10, headers)
                rows.append(Row("jsonapi: GET list of 10 as HAL", refs["list HAL"], "list HAL"))
                json_api = {**headers, "Accept": "application/vnd.api+json"}
                linkage = bench.measure("list JSON:API", service.url, lists10, json_api)
                rows.append(Row("jsonapi: GET list of 10 as JSON:API", linkage, "list HAL"))
        else:
            missing = ("connect10: PATCH connect 1 into 10 items", "connect10k: PATCH connect 1 into 10,000")
            for name in (*missing, "set: PUT set of 1,000 items"):
                rows.append(Row(name, None, note="ordered-list routes not served"))
        lists_arg = files["lists10"] if has_lists else "-"
        mixed = Load("mixed", (files["reads"], lists_arg))
        route("mixed: 70% GET/20% POST/10% PATCH, 32 conns", service, mixed)
        # The read cache under writes to what it holds: 90 % GET by id, 10 % PUT a comment on one.
        route("mix90: 90% GET /relation/{id}, 10% PUT comment", service, Load("mix90", (files["ids"],)))
        if bench.wanted("feed"):
            log("change feed: a long-polling consumer during the mixed load")
            feed_lag = feed.lag(
                service.url, headers, lambda: bench.measure("feed: mixed load", service.url, mixed, headers)
            )
            log(f"  feed lag: {feed_lag}")
        if bench.wanted("webhook"):
            log("webhooks: commit-to-receiver lag of one webhook during the mixed load")
            webhook_lag = webhooks.lag(
                service.url,
                {"Api-Key": webhook_key(url)},
                headers,
                lambda: bench.measure("webhook: mixed load", service.url, mixed, headers),
                (dsn, options),
            )
            log(f"  webhook lag: {webhook_lag}")
        if bench.wanted("logcost"):
            log("change log: POST /relation with its triggers on and off, alternating")
            logged, unlogged = feed.log_cost(
                dsn,
                options,
                lambda name: bench.measure(name, service.url, Load("post", ("umbDocument",)), headers),
            )
            rows.append(Row("logcost: POST, change log on", logged, "post unlogged"))
            rows.append(Row("logcost: POST, change log off", unlogged, "post unlogged"))
            refs["post unlogged"] = unlogged
        contention: dict[str, Any] = {}
        if has_lists and bench.wanted("contention"):
            from bench import contention as contention_test

            contention = contention_test.run(service.url, keys[seed.MAIN_PROJECT], keys[seed.LOAD_PROJECT])
            log(f"  {contention['summary'][0]}")
    if bench.wanted("pgbouncer-id") or bench.wanted("pgbouncer-post"):
        rows.extend(pgbouncer_rows(bench, url, files, headers, logs))
    memory: dict[str, Any] = {}
    reliability: dict[str, Any] = {}
    if (args.memory_requests and bench.wanted("memory")) or (
        args.reliability and bench.wanted("reliability")
    ):
        with servers.service(url, logs / "service-memory.log") as fresh:
            if args.memory_requests and bench.wanted("memory"):
                memory = bench.memory(fresh, Load("mixed", (files["reads"], lists_arg)), headers)
                log(f"  memory: {memory}")
            if args.reliability and bench.wanted("reliability"):
                from bench import reliability as reliability_test

                reliability = reliability_test.run(
                    fresh.url,
                    url,
                    keys[seed.LOAD_PROJECT],
                    seconds=args.reliability,
                    lists=has_lists,
                    log=log,
                )
    size_lines, size_targets = lists_section(args, bench) if bench.wanted("lists") else ([], [])
    table = fmt_table(rows, refs)
    lines = [
        f"# {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, nproc {os.cpu_count()}, "
        f"{args.relations:,} relations, {results_tool(bench.results)} -c{args.conns} -d{args.duration:g}s "
        f"(+{args.warmup:g}s warm-up), 1 worker each",
        table,
    ]
    if scale and small_scale:
        lines.append("")
        lines.append(
            f"p50 at 1 connection (best of {ROUNDS}) {args.relations:>10,} {args.small_relations:>10,}  ratio"
        )
        for name, label in (
            ("parents", "parent (20)"),
            ("children", "child?dependency"),
            ("referenced", "referenced (50 ids)"),
        ):
            if name in scale and name in small_scale:
                big, small_p50 = scale[name].p50_ms, small_scale[name].p50_ms
                lines.append(f"  {label:<30} {big:>7.2f} ms {small_p50:>7.2f} ms  {big / small_p50:.2f}")
        if "connect" in scale:
            big, small_p50 = scale["connect"].p50_ms, small_scale["connect"].p50_ms
            lines.append(
                f"  {'connect 1, into 10,000 / 10':<30} {big:>7.2f} ms {small_p50:>7.2f} ms"
                f"  {big / small_p50:.2f}"
            )
    lines.extend(size_lines)
    if memory:
        lines.append("")
        lines.append(
            f"memory: worker RSS {memory['rss_mb']:.1f} MB after {memory['requests']:,} requests, "
            f"{memory['rss_half_mb']:.1f} MB after {memory['requests_half']:,}: "
            f"growth {memory['growth_mb']:+.1f} MB"
        )
    if reliability:
        lines.append("")
        lines.extend(reliability["summary"])
    if feed_lag:
        lines.append("")
        lines.append(
            f"change feed: {feed_lag['events']:,} events to a long-polling consumer during the mixed load "
            f"({feed_lag['load_rps']:.0f} req/s), {feed_lag['polls']:,} polls, "
            f"{feed_lag['duplicates']} repeated; "
            f"commit-to-consumer lag p50 {feed_lag['p50_ms']:.1f} ms, p99 {feed_lag['p99_ms']:.1f} ms, "
            f"max {feed_lag['max_ms']:.1f} ms"
        )
        quiet = feed_lag["quiet"]
        lines.append(
            f"change feed without load ({quiet['events']} POSTs, one every 20 ms): lag p50 "
            f"{quiet['p50_ms']:.1f} ms, p99 {quiet['p99_ms']:.1f} ms; from the POST's answer p50 "
            f"{quiet['ack_p50_ms']:.1f} ms, p99 {quiet['ack_p99_ms']:.1f} ms; "
            f"{quiet['duplicates']} repeated, "
            f"{quiet['missing']} missing"
        )
    if contention:
        lines.append("")
        lines.extend(contention["summary"])
    if webhook_lag:
        lines.append("")
        lines.append(
            f"webhooks: {webhook_lag['deliveries']:,} deliveries to a receiver on 127.0.0.1 during the mixed "
            f"load ({webhook_lag['load_rps']:.0f} req/s), {webhook_lag['duplicates']} repeated, signature "
            f"{'verified' if webhook_lag['verified'] else 'not checked'}; commit-to-receiver lag p50 "
            f"{webhook_lag['p50_ms']:.1f} ms, p99 {webhook_lag['p99_ms']:.1f} ms, "
            f"max {webhook_lag['max_ms']:.1f} ms; single changes with the service idle: "
            f"{webhook_lag['idle_deliveries']} deliveries, lag p50 {webhook_lag['idle_p50_ms']:.1f} ms, "
            f"max {webhook_lag['idle_max_ms']:.1f} ms"
        )
        steps = ", ".join(f"{name} {ms:.1f}" for name, ms in webhook_lag["stages_p50_ms"].items())
        lines.append(
            f"  where a delivery's time went (p50 of each step, ms, from the delivery rows): {steps}"
        )
    lines.append("")
    lines.extend(targets(rows, refs, scale, small_scale, memory))
    if size_targets:
        lines.extend(["targets (issue 12):", *size_targets])
    if feed_lag:
        lines.extend(feed_targets(feed_lag))
    if bench.wanted(BULK):
        lines.append("")
        lines.extend(bulk_phase(bench, url))
    if webhook_lag:
        value = webhook_lag["p50_ms"]
        lines.append(f"  [{'met' if value <= 100 else 'NOT met'}] webhook lag p50 <= 100 ms: {value:.1f} ms")
    report = "\n".join(lines)
    print(report, flush=True)
    (bench.out / "table.txt").write_text(report + "\n")
    (bench.out / "results.json").write_bytes(
        orjson.dumps(
            {
                "args": {k: str(v) for k, v in vars(args).items()},
                "results": [r.as_dict() for r in bench.results],
                "memory": memory,
                "reliability": {k: v for k, v in reliability.items() if k != "summary"},
                "feed": feed_lag,
                "webhook": webhook_lag,
            },
            option=orjson.OPT_INDENT_2,
        )
    )
    log(f"raw results in {bench.out} ({time.monotonic() - started:.0f} s)")
    quiet_feed = feed_lag.get("quiet", {})
    failed = (
        reliability.get("ok") is False
        or contention.get("ok") is False
        or any(r.errors for r in bench.results if r.name != "memory")
        or bool(feed_lag.get("duplicates") or quiet_feed.get("duplicates") or quiet_feed.get("missing"))
    )
    return 1 if failed else 0


def webhook_key(url: str) -> str:
    """A key of the main project with `webhooks:write` (a database seeded earlier has keys without it)."""
    from service.cli import with_db
    from service.projects.service import create_key

    async def make(db: Any) -> str:
        return (await create_key(db, project=seed.MAIN_PROJECT, scopes=["webhooks:write"], name="bench")).key

    key: str = asyncio.run(with_db(url, make))
    return key


def feed_targets(lag: dict[str, Any]) -> list[str]:
    out = ["targets (issue 13):"]
    for label, value, limit in (("feed lag p50", lag["p50_ms"], 20), ("feed lag p99", lag["p99_ms"], 200)):
        out.append(f"  [{'met' if value <= limit else 'NOT met'}] {label} <= {limit} ms: {value:.1f} ms")
    return out


def results_tool(results: list[Result]) -> str:
    return "wrk -t1" if results and results[0].tool == "wrk" else "python load generator"


def targets(
    rows: list[Row], refs: dict[str, Result], scale: dict[str, Result], small: dict[str, Result],
    memory: dict[str, Any],
) -> list[str]:  # fmt: skip
    by_name = {row.route.split(":")[0]: row.result for row in rows if row.result}
    out = ["targets (issue 7):"]

    def check(label: str, ok: bool, detail: str) -> None:
        out.append(f"  [{'met' if ok else 'NOT met'}] {label}: {detail}")

    pk, lst = refs.get("bare PK"), refs.get("bare list")
    if (one := by_name.get("id")) and pk:
        check("GET /relation/{id} >= 0.8 x bare req/s", one.rps >= 0.8 * pk.rps, f"{one.rps / pk.rps:.2f}")
        check(
            "GET /relation/{id} p99 < 2 x bare p99",
            one.p99_ms < 2 * pk.p99_ms,
            f"{one.p99_ms / pk.p99_ms:.2f}",
        )
    rounds = {row.route: row.result for row in rows if row.result and row.route.startswith("id-limited:")}
    limited = rounds.get("id-limited: GET /relation/{id}, limit on")
    plain = rounds.get("id-limited: GET /relation/{id}, no limit")
    if limited and plain and (bare := refs.get("bare PK, rounds")):
        check(
            "GET /relation/{id} with a rate limit >= 0.8 x bare req/s (alternating rounds)",
            limited.rps >= 0.8 * bare.rps,
            f"{limited.rps / bare.rps:.2f} ({limited.rps / plain.rps:.2f} x without a limit)",
        )
    if (parent := by_name.get("parent")) and lst:
        check(
            "GET parent (20) >= 0.8 x bare 20-row", parent.rps >= 0.8 * lst.rps, f"{parent.rps / lst.rps:.2f}"
        )
    # Issue 16 (the read cache): past the one-query ceiling, with a short tail, also under writes.
    for name, reference, label in (("id", pk, "GET /relation/{id}"), ("parent", lst, "GET parent (20)")):
        if (read := by_name.get(name)) and reference:
            ratio = read.rps / reference.rps
            check(f"{label} >= 1.2 x its bare handler (read cache)", ratio >= 1.2, f"{ratio:.2f}")
            tail = read.p99_ms / reference.p99_ms
            check(f"{label} p99 < 1.5 x its bare handler's", tail < 1.5, f"{tail:.2f}")
    if (mix := by_name.get("mix90")) and pk:
        reads = 0.9 * mix.rps
        check("reads of the 90/10 mix >= 1.0 x bare PK req/s", reads >= pk.rps, f"{reads / pk.rps:.2f}")
    if (post := by_name.get("post")) and pk:
        check("POST /relation >= 0.4 x bare", post.rps >= 0.4 * pk.rps, f"{post.rps / pk.rps:.2f}")
    for name in ("parents", "children", "referenced"):
        if name in scale and name in small:
            ratio = scale[name].p50_ms / small[name].p50_ms
            check(f"{name} p50 at 1M / at 10k <= 1.2 (1 connection)", ratio <= 1.2, f"{ratio:.2f}")
    if "connect" in scale and "connect" in small:
        ratio = scale["connect"].p50_ms / small["connect"].p50_ms
        check("connect into 10,000 p50 <= 2 x into 10 (1 connection)", ratio <= 2, f"{ratio:.2f}")
    if memory:
        check("worker RSS < 120 MB after 100k", memory["rss_mb"] < 120, f"{memory['rss_mb']:.1f} MB")
        check("RSS growth 50k->100k < 5 MB", memory["growth_mb"] < 5, f"{memory['growth_mb']:+.1f} MB")
    return out
