"""The cache's entries: answers by key, bounded by bytes, least recently used out first, each filed
under the project it belongs to and the tags it depends on, so that a change drops exactly the answers
it could alter (service/cache/tags.py says which)."""

from __future__ import annotations

import sys
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

Tag = tuple[str, object]
# What an entry costs beyond its body, headers and key (each counted as the objects they are): the entry
# object, its tags, the dictionaries' slots and the index sets it is filed in (tests/cache/test_store.py
# checks with tracemalloc that the budget holds, also for entries with several tags).
ENTRY_OVERHEAD = 760
TAG_OVERHEAD = 160  # each tag besides the first: its tuple, and its key's place in an index set
CONTENT_LENGTH = b"content-length"


@dataclass(frozen=True, eq=False, slots=True)
class Entry:
    """One answer as its handler made it: status 200, the body, and the headers but content-length
    (which `response_headers` puts back: the body's length)."""

    project: str
    tags: tuple[Tag, ...]
    body: bytes
    headers: tuple[tuple[bytes, bytes], ...]
    size: int = field(default=0)
    # A write's answer kept for a read: the writing transaction, whose own change does not drop it.
    xid: int | None = None

    @classmethod
    def of(
        cls,
        project: str,
        tags: Iterable[Tag],
        body: bytes,
        headers: Iterable[tuple[bytes, bytes]],
        *,
        xid: int | None = None,
    ) -> Entry:
        kept = tuple(tags)
        raw = tuple(header for header in headers if header[0] != CONTENT_LENGTH)
        size = (
            ENTRY_OVERHEAD
            + TAG_OVERHEAD * max(len(kept) - 1, 0)
            + sys.getsizeof(body)
            + sys.getsizeof(raw)
            + sum(map(_size, raw))
        )
        return cls(project, kept, body, raw, size, xid)

    def response_headers(self) -> list[tuple[bytes, bytes]]:
        return [(CONTENT_LENGTH, str(len(self.body)).encode()), *self.headers]


def cost(key: str, entry: Entry) -> int:
    """The bytes an entry kept under `key` counts for."""
    return entry.size + sys.getsizeof(key)


def _size(parts: tuple[object, ...]) -> int:
    """A tuple of strings or bytes (a header), as the objects it is made of."""
    return sys.getsizeof(parts) + sum(sys.getsizeof(part) for part in parts)


@dataclass
class Stats:
    hits: int = 0
    misses: int = 0
    evictions: int = 0
    dropped: int = 0


class Store:
    """Entries by key within `limit` bytes (an entry larger than an eighth of it is never kept).

    Each (project, tag) files the keys that depend on it: the key itself while there is one (most
    tags, a relation's id, have one answer), a set once there are more."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.bytes = 0
        self.stats = Stats()
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self._by_tag: dict[tuple[str, Tag], str | set[str]] = {}
        self._by_project: dict[str, set[str]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> Entry | None:
        entry = self._entries.get(key)
        if entry is None:
            self.stats.misses += 1
            return None
        self._entries.move_to_end(key)
        self.stats.hits += 1
        return entry

    def put(self, key: str, entry: Entry) -> bool:
        size = cost(key, entry)
        if size > self.limit // 8:
            return False
        self._remove(key)
        self._entries[key] = entry
        self.bytes += size
        self._by_project.setdefault(entry.project, set()).add(key)
        for tag in entry.tags:
            index = (entry.project, tag)
            filed = self._by_tag.get(index)
            if filed is None:
                self._by_tag[index] = key
            elif isinstance(filed, set):
                filed.add(key)
            elif filed != key:
                self._by_tag[index] = {filed, key}
        while self.bytes > self.limit:
            oldest = next(iter(self._entries))
            self._remove(oldest)
            self.stats.evictions += 1
        return True

    def drop(self, project: str, tags: Iterable[Tag], *, spare: int | None = None) -> None:
        """Every entry of `project` filed under any of `tags`, but those kept from the answer of the
        transaction `spare` (its own change, which they already show)."""
        for tag in tags:
            filed = self._by_tag.get((project, tag))
            for key in list(filed) if isinstance(filed, set) else [filed] if filed else []:
                if spare is not None and self._entries[key].xid == spare:
                    continue
                self._remove(key)
                self.stats.dropped += 1

    def drop_project(self, project: str) -> None:
        for key in list(self._by_project.get(project, ())):
            self._remove(key)
            self.stats.dropped += 1

    def clear(self) -> None:
        self.stats.dropped += len(self._entries)
        self._entries.clear()
        self._by_tag.clear()
        self._by_project.clear()
        self.bytes = 0

    def _remove(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        self.bytes -= cost(key, entry)
        keys = self._by_project[entry.project]
        keys.discard(key)
        if not keys:
            del self._by_project[entry.project]
        for tag in entry.tags:
            index = (entry.project, tag)
            filed = self._by_tag[index]
            if isinstance(filed, set):
                filed.discard(key)
                if len(filed) == 1:
                    self._by_tag[index] = next(iter(filed))
            else:
                del self._by_tag[index]
