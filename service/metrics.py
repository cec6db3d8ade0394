"""Prometheus metrics at `/metrics`: requests and latency by method, route template and status, the
database pool, and the read cache.

Each worker process counts what it serves. With several workers (`relations serve --workers N`), set
PROMETHEUS_MULTIPROC_DIR to an empty folder the workers share (emptied before each start):
prometheus-client then keeps the values in files there and `/metrics`, whichever worker answers it,
adds up every worker's. Without it, each worker exposes its own numbers."""

from __future__ import annotations

import asyncio
import logging
import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service.cache.service import ReadCache
from service.db import Database

log = logging.getLogger("service.metrics")

# PROMETHEUS_MULTIPROC_DIR (Settings.metrics_dir), set by `configure` when the app is assembled.
_multiprocess_dir: str | None = None
POOL_REFRESH_SECONDS = 5
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"

REGISTRY = CollectorRegistry(auto_describe=True)
REQUESTS = Counter(
    "relations_http_requests",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "relations_http_request_duration_seconds",
    "Time from the request's arrival to the end of its response, by method, route template and status.",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)
POOL_SIZE = Gauge(
    "relations_db_pool_connections",
    "Open connections in the database pool (summed over live workers).",
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
POOL_IN_USE = Gauge(
    "relations_db_pool_connections_in_use",
    "Database pool connections currently lent to requests (summed over live workers).",
    registry=REGISTRY,
    multiprocess_mode="livesum",
)

CACHE_READS = Counter(
    "relations_cache_reads",
    "Cacheable reads by outcome: hit (answered from the worker's read cache), miss (read and kept), "
    "bypass (the cache was off, or not fresh enough for the read: its token or the lag bound).",
    ["outcome"],
    registry=REGISTRY,
)
CACHE_EVICTIONS = Counter(
    "relations_cache_evictions",
    "Read cache entries evicted to stay within RELATIONS_CACHE_BYTES.",
    registry=REGISTRY,
)
CACHE_BYTES = Gauge(
    "relations_cache_bytes",
    "Bytes held by the read cache (summed over live workers).",
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
CACHE_LAG = Gauge(
    "relations_cache_lag_seconds",
    "Time since the read cache's applied revision was current: its last complete poll of the change "
    "log (the largest over live workers); -1 while it is bypassed (following nothing).",
    registry=REGISTRY,
    multiprocess_mode="livemax",
)
_exported = {"hit": 0, "miss": 0, "bypass": 0, "evictions": 0}

# Label lookups cost more than the increments: keep each (method, route, status)'s children.
_series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}


def observe(method: str, route: str, status: int, seconds: float) -> None:
    if method not in KNOWN_METHODS:  # clients choose methods: keep the label (and this cache) bounded
        method = "other"
    key = (method, route, status)
    series = _series.get(key)
    if series is None:
        series = (REQUESTS.labels(method, route, str(status)), LATENCY.labels(method, route, str(status)))
        _series[key] = series
    series[0].inc()
    series[1].observe(seconds)


def refresh_pool(db: Database) -> None:
    size, in_use = db.pool_usage()
    POOL_SIZE.set(size)
    POOL_IN_USE.set(in_use)


def refresh_cache(cache: ReadCache) -> None:
    """The cache counts in plain integers on its hot path; they reach the counters here, as deltas."""
    stats = cache.store.stats
    counts = {"hit": stats.hits, "miss": stats.misses, "bypass": cache.bypassed, "evictions": stats.evictions}
    for name, count in counts.items():
        delta = count - _exported[name]
        if delta > 0:
            (CACHE_EVICTIONS if name == "evictions" else CACHE_READS.labels(name)).inc(delta)
            _exported[name] = count
    CACHE_BYTES.set(cache.store.bytes)
    lag = cache.follower.lag_seconds()
    CACHE_LAG.set(-1 if lag is None or not cache.enabled else lag)


def refresh(db: Database, cache: ReadCache) -> None:
    refresh_pool(db)
    refresh_cache(cache)


async def keep_current(db: Database, cache: ReadCache) -> None:
    """With several workers a scrape reaches one of them; each keeps its own figures current."""
    while True:
        refresh(db, cache)
        await asyncio.sleep(POOL_REFRESH_SECONDS)


def configure(multiprocess_dir: str | None) -> None:
    global _multiprocess_dir
    _multiprocess_dir = multiprocess_dir


def multiprocess_mode() -> bool:
    return _multiprocess_dir is not None


def exposition() -> bytes:
    if _multiprocess_dir is None:
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=_multiprocess_dir)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


def worker_stopped() -> None:
    """Drop this worker's live gauges from the shared files (multiprocess mode)."""
    if _multiprocess_dir is not None:
        multiprocess.mark_process_dead(os.getpid(), _multiprocess_dir)  # type: ignore[no-untyped-call]


async def metrics(request: Request) -> Response:
    refresh(request.app.state.db, request.app.state.read_cache)
    return Response(exposition(), media_type=CONTENT_TYPE_LATEST)


routes = [Route("/metrics", metrics, methods=["GET"], name="metrics")]
