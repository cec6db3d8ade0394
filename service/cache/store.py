"""The cache's entries: answers by key, bounded by bytes, least recently used out first, each filed
under the project it belongs to and the tags it depends on, so that a change drops exactly the answers
it could alter (service/cache/tags.py says which)."""

from __future__ import annotations

import sys
from collections import OrderedDict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field

Tag = tuple[str, object]
# What an entry costs beyond its body, headers and key (each counted as the objects they are): the entry
# object, its tags, the dictionaries' slots and the index sets it is filed in (tests/cache/test_store.py
# checks with tracemalloc that the budget holds).
ENTRY_OVERHEAD = 900


@dataclass(frozen=True, eq=False, slots=True)
class Entry:
    """One answer as its handler made it: status 200, the body, and the headers (content-length and
    content-type included)."""

    project: str
    tags: frozenset[Tag]
    body: bytes
    headers: tuple[tuple[bytes, bytes], ...]
    size: int = field(default=0)

    @classmethod
    def of(
        cls, project: str, tags: frozenset[Tag], body: bytes, headers: Iterable[tuple[bytes, bytes]]
    ) -> Entry:
        raw = tuple(headers)
        size = ENTRY_OVERHEAD + sys.getsizeof(body) + sys.getsizeof(raw) + sum(map(_size, raw))
        return cls(project, tags, body, raw, size)


def cost(key: tuple[object, ...], entry: Entry) -> int:
    """The bytes an entry kept under `key` counts for."""
    return entry.size + _size(key)


def _size(parts: tuple[object, ...]) -> int:
    """A tuple of strings or bytes (a header, a key), as the objects it is made of."""
    return sys.getsizeof(parts) + sum(sys.getsizeof(part) for part in parts)


@dataclass
class Stats:
    hits: int = 0
    misses: int = 0
    evictions: int = 0
    dropped: int = 0


class Store:
    """Entries by key within `limit` bytes (an entry larger than an eighth of it is never kept)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.bytes = 0
        self.stats = Stats()
        self._entries: OrderedDict[Hashable, Entry] = OrderedDict()
        self._sizes: dict[Hashable, int] = {}
        self._by_tag: dict[tuple[str, Tag], set[Hashable]] = {}
        self._by_project: dict[str, set[Hashable]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable) -> Entry | None:
        entry = self._entries.get(key)
        if entry is None:
            self.stats.misses += 1
            return None
        self._entries.move_to_end(key)
        self.stats.hits += 1
        return entry

    def put(self, key: tuple[object, ...], entry: Entry) -> bool:
        size = cost(key, entry)
        if size > self.limit // 8:
            return False
        self._remove(key)
        self._entries[key] = entry
        self._sizes[key] = size
        self.bytes += size
        self._by_project.setdefault(entry.project, set()).add(key)
        for tag in entry.tags:
            self._by_tag.setdefault((entry.project, tag), set()).add(key)
        while self.bytes > self.limit:
            oldest = next(iter(self._entries))
            self._remove(oldest)
            self.stats.evictions += 1
        return True

    def drop(self, project: str, tags: Iterable[Tag]) -> None:
        """Every entry of `project` filed under any of `tags`."""
        for tag in tags:
            for key in list(self._by_tag.get((project, tag), ())):
                self._remove(key)
                self.stats.dropped += 1

    def drop_project(self, project: str) -> None:
        for key in list(self._by_project.get(project, ())):
            self._remove(key)
            self.stats.dropped += 1

    def clear(self) -> None:
        self.stats.dropped += len(self._entries)
        self._entries.clear()
        self._sizes.clear()
        self._by_tag.clear()
        self._by_project.clear()
        self.bytes = 0

    def _remove(self, key: Hashable) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        self.bytes -= self._sizes.pop(key)
        keys = self._by_project[entry.project]
        keys.discard(key)
        if not keys:
            del self._by_project[entry.project]
        for tag in entry.tags:
            filed = self._by_tag[(entry.project, tag)]
            filed.discard(key)
            if not filed:
                del self._by_tag[(entry.project, tag)]
