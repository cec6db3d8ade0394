"""The benchmark's own pieces (no benchmark runs here): wrk's output is read right, the seed layout adds
up, and the guids the load scripts compute are the ones the seed SQL writes."""

from __future__ import annotations

import math

from bench import seed
from bench.load import parse_wrk
from service.db import Database

WRK_OUTPUT = """Running 10s test @ http://127.0.0.1:8000
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     7.01ms    3.20ms  61.00ms   90.00%
    Req/Sec     4.66k   300.00     5.00k    70.00%
  Latency Distribution
     50%    6.37ms
     75%    8.00ms
     90%   10.00ms
     99%    1.21s
  46600 requests in 10.00s, 20.00MB read
  Non-2xx or 3xx responses: 12
  Socket errors: connect 0, read 2, write 0, timeout 1
Requests/sec:   4660.00
Transfer/sec:      2.00MB
""".replace("1.21s", "1.21s ")  # wrk pads some latencies with a trailing space


def test_wrk_output_is_read() -> None:
    result = parse_wrk("x", WRK_OUTPUT)
    assert (result.requests, result.seconds, result.rps) == (46600, 10.0, 4660.0)
    assert (result.p50_ms, result.p99_ms) == (6.37, 1210.0)
    assert result.errors == 15


def test_wrk_output_without_latencies_gives_nan() -> None:
    result = parse_wrk("x", WRK_OUTPUT.replace("     50%    6.37ms\n", ""))
    assert math.isnan(result.p50_ms)


def test_layout_of_a_million() -> None:
    layouts = seed.layouts(1_000_000)
    main = layouts[0]
    assert main.project == seed.MAIN_PROJECT and main.relations == 700_000
    sizes = {s.kind: (s.lists, s.size) for s in main.segments}
    assert sizes == {
        "l10000": (7, 10_000),
        "l1000": (70, 1_000),
        "l100": (700, 100),
        "l10": (7_000, 10),
        "p20": (21_000, 20),
    }
    assert sum(s.rows for layout in layouts for s in layout.segments) == 1_000_000


async def test_guids_match_the_seed_sql(db: Database) -> None:
    name = "bench:p20:42"
    assert await db.fetchval("SELECT md5($1)::uuid", name) == seed.named_guid(name)
    assert seed.project_layout("bench", 700_000).segment("p20") is not None
