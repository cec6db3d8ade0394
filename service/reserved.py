"""The words the API's paths reserve: a relation type may not be called `type`, `parent`, `child`,
`related`, `referenced` (SPEC §5), nor any other literal segment of an API route's path, because
`/relation/{alias}` would then be shadowed by, or shadow, that route.

The set is not written by hand: `service.endpoint.api_route` adds the literal segments of every path it
declares, so a new route under `/relation/` reserves its words by being declared."""

from __future__ import annotations

_WORDS: set[str] = set()


def reserve(path: str) -> None:
    """The literal segments of `path` after its first (`/relation/type/{alias}` → `type`); only paths
    under `/relation/` share segments with an alias (`/webhook/{id}/deliveries` reserves nothing)."""
    if not path.startswith("/relation/"):
        return
    for segment in path.strip("/").split("/")[1:]:
        if segment and not segment.startswith("{"):
            _WORDS.add(segment.lower())


def is_reserved(word: str) -> bool:
    """Compared ignoring case: `Type` would read as `type` to every human and most clients."""
    return word.lower() in _WORDS


def words() -> frozenset[str]:
    return frozenset(_WORDS)
