"""The store: least recently used out first, within its bytes; drops by tag and by project."""

from __future__ import annotations

import gc
import tracemalloc
import uuid

import pytest

from service.cache.store import Entry, Store, cost

HEADERS = ((b"content-type", b"application/hal+json"), (b"content-length", b"512"), (b"vary", b"Accept"))


def entry(project: str = "p", *tags: tuple[str, object], size: int = 512) -> Entry:
    return Entry.of(project, frozenset(tags), bytes(size), HEADERS)


def test_get_and_put_count_hits_and_misses() -> None:
    store = Store(1 << 20)
    assert store.get("a") is None
    kept = entry()
    assert store.put("a", kept)
    assert store.get("a") is kept
    assert (store.stats.hits, store.stats.misses) == (1, 1)


def test_the_least_recently_used_goes_first() -> None:
    one = cost("a", entry())
    store = Store(one * 8)
    for key in "abcdefgh":
        assert store.put(key, entry())
    store.get("a")  # b is now the oldest
    store.put("i", entry())
    assert store.get("b") is None
    assert all(store.get(key) is not None for key in "acdefghi")
    assert store.stats.evictions == 1
    assert store.bytes <= store.limit


def test_an_entry_larger_than_an_eighth_is_not_kept() -> None:
    store = Store(64 * 1024)
    assert not store.put("big", entry(size=9 * 1024))
    assert store.get("big") is None
    assert store.bytes == 0


def test_drop_takes_every_entry_under_a_tag_of_that_project_only() -> None:
    store = Store(1 << 20)
    parent = uuid.uuid4()
    store.put("list", entry("p", ("parent", parent)))
    store.put("related", entry("p", ("parent", parent), ("child", parent)))
    store.put("other", entry("p", ("parent", uuid.uuid4())))
    store.put("elsewhere", entry("q", ("parent", parent)))
    store.drop("p", [("parent", parent)])
    assert store.get("list") is None and store.get("related") is None
    assert store.get("other") is not None and store.get("elsewhere") is not None


def test_drop_project_and_clear() -> None:
    store = Store(1 << 20)
    store.put("a", entry("p", ("id", 1)))
    store.put("b", entry("q", ("id", 1)))
    store.drop_project("p")
    assert store.get("a") is None and store.get("b") is not None
    store.clear()
    assert len(store) == 0 and store.bytes == 0
    store.put("c", entry("p", ("id", 1)))  # the indexes were emptied with it
    store.drop("p", [("id", 1)])
    assert len(store) == 0


def test_replacing_a_key_keeps_the_count_right() -> None:
    store = Store(1 << 20)
    store.put("a", entry())
    store.put("a", entry(size=100))
    assert len(store) == 1
    assert store.bytes == cost("a", entry(size=100))


def answers(kind: str, number: int) -> tuple[str, Entry]:
    """A key and an entry as the service keeps them: objects of their own, as a request's are."""
    guid = uuid.uuid4()
    accept = ("application/hal+json", "*/*", "application/json")[number % 3]
    if kind == "parent list":  # one tag, larger bodies, link headers
        path, tags, size = f"/relation/parent/{guid}", [("parent", guid)], 200 + number % 1500
    elif kind == "relation":  # one tag, small bodies (the most numerous)
        path, tags, size = f"/relation/{number}", [("id", number)], 300
    elif kind == "related":  # two tags
        path, tags, size = f"/relation/related/{guid}", [("parent", guid), ("child", guid)], 400
    else:  # several answers under one tag: the same relation asked for as three representations
        path, tags, size = f"/relation/{number // 3}", [("id", number // 3)], 300
    key = f"project-a\0{path}\0pageSize=20\0{accept}\0http\0h:80".encode().decode()
    body = b"x" * size
    headers = [
        (b"content-length", str(len(body)).encode()),
        (b"content-type", "application/hal+json".encode("latin-1")),
        (b"etag", f'"{number}"'.encode()),
    ]
    if kind == "parent list":
        headers.append((b"link", f"</relation/parent/{guid}?cursor=abcdef>; rel=next".encode()))
    return key, Entry.of("project-a", frozenset(tags), body, headers)


@pytest.mark.parametrize("kind", ["parent list", "relation", "related", "representations"])
def test_the_memory_it_takes_stays_within_its_limit(kind: str) -> None:
    """Filled far past its limit, the store holds no more than the limit, as tracemalloc counts it."""
    limit = 2 * 1024 * 1024
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        store = Store(limit)
        for number in range(30_000):  # far more than fit
            store.put(*answers(kind, number))
        gc.collect()
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert store.stats.evictions > 0
    assert store.bytes <= limit
    assert used <= limit, f"{used} bytes allocated for a store of {limit}"
    assert used >= 0.75 * limit, f"{used} bytes allocated: the budget overstates entries by a third"


def test_a_kept_answer_gets_its_content_length_back() -> None:
    _, kept = answers("relation", 7)
    assert all(name != b"content-length" for name, _ in kept.headers)
    assert (b"content-length", b"300") in kept.response_headers()


def test_a_tag_with_several_answers_drops_them_all_and_files_one_again() -> None:
    store = Store(1 << 20)
    for accept in ("a", "b", "c"):
        store.put(accept, entry("p", ("id", 1)))
    store.get("a")
    store.put("x", entry("p", ("id", 2)))
    store.drop("p", [("id", 1)])
    assert len(store) == 1 and store.get("x") is not None
    store.put("a", entry("p", ("id", 1)))
    store.put("b", entry("p", ("id", 1)))
    store.put("b", entry("p", ("id", 9)))  # b moves to another tag: one key left under id 1
    store.drop("p", [("id", 1)])
    assert store.get("a") is None
    assert store.get("b") is not None and store.get("x") is not None
    store.drop("p", [("id", 9)])
    assert store.get("b") is None and len(store) == 1
