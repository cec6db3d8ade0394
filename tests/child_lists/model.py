"""A plain-Python reference of SPEC §6's rules on a Python list, written apart from the service (no
windows, no positions: just list.insert and list.remove), for the state-machine test to compare with.

Items are given as the request's JSON: a GUID string, or {"id", "position"?, "comment"?}."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class Refused(Exception):
    """The edit must be refused with `status` and change nothing."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def _parse(raw: Any) -> tuple[str, tuple[str, str | None], str | None]:
    """(id, (where, anchor), comment); ids are compared lower-case."""
    if isinstance(raw, str):
        return raw.lower(), ("end", None), None
    where: tuple[str, str | None] = ("end", None)
    position = raw.get("position")
    if position:
        ((kind, value),) = position.items()
        where = (kind, value.lower() if isinstance(value, str) else None)
    return raw["id"].lower(), where, raw.get("comment")


@dataclass
class ChildList:
    one: bool = False
    children: list[str] = field(default_factory=list)
    comments: dict[str, str] = field(default_factory=dict)

    def _changes(self, before: list[str]) -> dict[str, int]:
        after = self.children
        kept_before = [c for c in before if c in after]
        kept_after = [c for c in after if c in before]
        return {
            "added": len([c for c in after if c not in before]),
            "removed": len([c for c in before if c not in after]),
            "moved": len([c for c in kept_before if kept_before.index(c) != kept_after.index(c)]),
        }

    def _validated(self, raw_items: list[Any]) -> list[tuple[str, tuple[str, str | None], str | None]]:
        """Self-anchors and conflicting repeats refused; identical repeats dropped (first kept)."""
        seen: dict[str, tuple[Any, ...]] = {}
        kept = []
        for raw in raw_items:
            item = _parse(raw)
            child, (kind, anchor), _ = item
            if kind in ("before", "after") and anchor == child:
                raise Refused(422)
            if child in seen:
                if seen[child] != item:
                    raise Refused(422)
                continue
            seen[child] = item
            kept.append(item)
        return kept

    def _put(self, child: str, comment: str | None) -> None:
        if comment is not None:
            self.comments[child] = comment
        elif child not in self.comments:
            self.comments[child] = ""

    def _drop(self, child: str) -> None:
        self.children.remove(child)
        del self.comments[child]

    def connect(self, raw_items: list[Any], disconnect: list[str], strict: bool = True) -> dict[str, int]:
        before = list(self.children)
        saved = dict(self.comments)
        try:
            items = self._validated(raw_items)
            gone = {child.lower() for child in disconnect}
            if self.one:
                if raw_items:  # the last id given wins (a member keeps its comment unless one is given)
                    child, _, comment = _parse(raw_items[-1])
                    self.children = [child]
                    self.comments = {child: comment if comment is not None else saved.get(child, "")}
                else:
                    for child in [c for c in self.children if c in gone]:
                        self._drop(child)
                return self._changes(before)
            # An id both disconnected and connected stays a member (same relation) and is placed anew.
            reconnected = {item[0] for item in items}
            for child in [c for c in self.children if c in gone]:
                self.children.remove(child)
                if child not in reconnected:
                    del self.comments[child]
            self._apply(self._in_order(items, strict))
            return self._changes(before)
        except Refused:
            self.children, self.comments = before, saved
            raise

    def _in_order(self, items: list[Any], strict: bool) -> list[Any]:
        """Strapi's order: an item whose anchor is new in this request comes right after that anchor's
        item (recursively); missing anchors refused, or sent to the end when not strict."""
        ids = {item[0]: item for item in items}
        out: list[Any] = []
        placed: set[str] = set()
        for item in items:
            chain = [item]
            while True:
                child, (_kind, anchor), comment = chain[-1]
                if anchor is None or anchor in self.children or anchor in placed:
                    break
                if anchor not in ids:
                    if strict:
                        raise Refused(422)
                    chain[-1] = (child, ("end", None), comment)
                    break
                if ids[anchor] in chain:
                    raise Refused(422)
                chain.append(ids[anchor])
            for link in reversed(chain):
                if link[0] not in placed:
                    placed.add(link[0])
                    out.append(link)
        return out

    def _apply(self, items: list[Any]) -> None:
        for child, (kind, anchor), comment in items:
            if child in self.children:
                self.children.remove(child)
            if kind == "start":
                at = 0
            elif kind == "end":
                at = len(self.children)
            elif kind == "before":
                at = self.children.index(anchor)
            else:
                at = self.children.index(anchor) + 1
            self.children.insert(at, child)
            self._put(child, comment)

    def set(self, raw_items: list[Any]) -> dict[str, int]:
        before = list(self.children)
        parsed = [_parse(raw) for raw in raw_items]
        if any(where != ("end", None) for _, where, _ in parsed) or any(
            isinstance(raw, dict) and raw.get("position") is not None for raw in raw_items
        ):
            raise Refused(422)
        firsts: dict[str, str | None] = {}
        for child, _, comment in parsed:
            firsts.setdefault(child, comment)
        wanted = list(firsts.items())
        if self.one:
            wanted = [(parsed[-1][0], parsed[-1][2])] if parsed else []
        old_comments = dict(self.comments)
        self.children = [child for child, _ in wanted]
        self.comments = {}
        for child, comment in wanted:
            self.comments[child] = comment if comment is not None else old_comments.get(child, "")
        return self._changes(before)

    def add(self, raw_items: list[Any], strict: bool = True) -> dict[str, int]:
        before = list(self.children)
        saved = dict(self.comments)
        items = self._validated(raw_items)
        if self.one:
            if len(items) > 1:
                raise Refused(422)
            if items and self.children and self.children != [items[0][0]]:
                raise Refused(422)
            if items and not self.children:
                self.children.append(items[0][0])
                self._put(items[0][0], items[0][2])
            return self._changes(before)
        fresh = [item for item in items if item[0] not in self.children]
        try:
            self._apply(self._in_order(fresh, strict))
        except Refused:
            self.children, self.comments = before, saved
            raise
        return self._changes(before)

    def remove(self, ids: list[str]) -> dict[str, int]:
        before = list(self.children)
        for child in {c.lower() for c in ids}:
            if child in self.children:
                self._drop(child)
        return self._changes(before)

    def clear(self) -> dict[str, int]:
        before = list(self.children)
        self.children, self.comments = [], {}
        return self._changes(before)
