"""The ordering rules of SPEC §6 as pure functions: no I/O, so they are tested without a database.

A list is stored as gapped integer positions (ties broken by relation id). An edit is planned on a
`Window`: the rows the request mentions plus runs of their neighbours, with what is known about the gaps
between them (a gap is "known" when no stored row lies inside it). New members take the midpoint of a
known gap; when a gap has closed, only a local run of known rows is renumbered. When the window does not
reach far enough, `WindowTooSmall` asks the caller to plan again on the whole list.

The plan is a plain value: the writes (inserts, position/comment updates, deletes) and the change
counts. `moved` needs, for a partial window, how many unseen rows lie between some keys:
`Plan.intervals` names those ranges and `finish_moved(plan, counts)` gives the plan with the count.

The rules that need the whole list — `set`, and every edit of a cardinality-one list — are
`plan_whole`'s."""

from __future__ import annotations

import bisect
import itertools
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from service import messages
from service.child_lists.bodies import END, Edit, Item, Position
from service.errors import ValidationFailed
from service.relations.queries import POSITION_GAP

# Renumbering spreads a run until its members are at least this far apart, so it is rarely repeated.
MIN_SPACING = POSITION_GAP >> 3
SAFE_POSITION = 1 << 62
Key = tuple[int, int]


@dataclass(frozen=True)
class Row:
    """A stored member: relation id, child and position."""

    id: int
    child: uuid.UUID
    position: int

    @property
    def key(self) -> Key:
        return (self.position, self.id)


@dataclass(frozen=True)
class Window:
    """Known rows in list order; `gaps[i]` says the gap before `rows[i]` (`gaps[len]`: after the last)
    is known to hold no other row, `gaps[0]`/`gaps[-1]` reaching the list's start/end."""

    rows: tuple[Row, ...]
    gaps: tuple[bool, ...]

    @classmethod
    def whole(cls, rows: Sequence[Row]) -> Window:
        return cls(tuple(rows), (True,) * (len(rows) + 1))

    @classmethod
    def from_runs(cls, singles: Iterable[Row], runs: Iterable[tuple[Sequence[Row], bool, bool]]) -> Window:
        """`runs`: consecutive rows of the list each, with whether the run starts at the list's start
        and ends at its end."""
        by_id = {row.id: row for row in singles}
        adjacent: set[tuple[int, int]] = set()
        at_start = at_end = False
        for run, starts, ends in runs:
            ordered = sorted(run, key=lambda row: row.key)
            by_id.update((row.id, row) for row in ordered)
            adjacent.update((a.id, b.id) for a, b in itertools.pairwise(ordered))
            at_start = at_start or starts
            at_end = at_end or ends
        rows = sorted(by_id.values(), key=lambda row: row.key)
        gaps = [at_start]
        gaps += [(a.id, b.id) in adjacent for a, b in itertools.pairwise(rows)]
        gaps.append(at_end)
        if not rows:
            gaps = [at_start and at_end]
        return cls(tuple(rows), tuple(gaps))

    @property
    def complete(self) -> bool:
        return all(self.gaps)


class WindowTooSmall(Exception):
    """The plan needs rows outside the window: plan again on the whole list."""


@dataclass(frozen=True)
class Unseen:
    """What finishing `moved` needs when the window was partial: the moved rows' old and new keys,
    the known rows' ranks before and after, and the key ranges whose unseen rows must be counted."""

    intervals: tuple[tuple[Key, Key], ...]
    window_keys: tuple[Key, ...]
    olds: Mapping[int, Key]
    news: Mapping[int, Key]
    rank_old: Mapping[int, int]
    rank_new: Mapping[int, int]
    known_changed: frozenset[int]


@dataclass(frozen=True)
class Plan:
    inserts: list[tuple[uuid.UUID, int, str]] = field(default_factory=list)
    updates: list[tuple[int, int, str | None]] = field(default_factory=list)  # id, position, comment
    deletes: list[int] = field(default_factory=list)
    added: int = 0
    removed: int = 0
    moved: int = 0
    unseen: Unseen | None = None  # `moved` is final when None

    @property
    def intervals(self) -> tuple[tuple[Key, Key], ...]:
        """Open key ranges whose stored rows must be counted (before the writes) to finish `moved`."""
        return self.unseen.intervals if self.unseen else ()

    @property
    def changes(self) -> dict[str, int]:
        return {"added": self.added, "removed": self.removed, "moved": self.moved}


# --- validation of a request's items (needs no list) ---


def _fail(field_name: str, message: str) -> ValidationFailed:
    return ValidationFailed(messages.RELATION_INVALID, errors={field_name: [message]})


def collapse(items: Sequence[Item], key: str = "connect") -> list[Item]:
    """Identical items collapse into the first; the same id with another position or comment → 422;
    an item placed before/after itself → 422."""
    first: dict[uuid.UUID, Item] = {}
    for item in items:
        if item.position.anchor == item.id:
            raise _fail(
                f"{key}[{item.index}].position",
                messages.LIST_SELF_ANCHOR.format(id=item.id, relation=item.position.kind),
            )
        seen = first.get(item.id)
        if seen is None:
            first[item.id] = item
        elif seen != item:
            raise _fail(f"{key}[{item.index}]", messages.LIST_DUPLICATE_ITEM.format(id=item.id))
    return list(first.values())


def first_of_each(items: Sequence[Item]) -> list[Item]:
    """A repeated id keeps its first place (set)."""
    first: dict[uuid.UUID, Item] = {}
    for item in items:
        first.setdefault(item.id, item)
    return list(first.values())


def order_connect(
    items: Sequence[Item], present: Callable[[uuid.UUID], bool], *, strict: bool, key: str = "connect"
) -> list[Item]:
    """The order in which connect items apply: an item whose anchor is not in the list but connected
    later applies after that anchor's item; the others keep their place. A missing anchor → 422, or
    (not strict) the item goes to the end; anchors of new items in a cycle → 422."""
    by_id = {item.id: item for item in items}
    done: set[uuid.UUID] = set()
    ordered: list[Item] = []

    def visit(item: Item, path: list[uuid.UUID]) -> None:
        if item.id in done:
            return
        anchor = item.position.anchor
        if anchor is None or present(anchor):
            pass
        elif anchor in by_id:
            if anchor in path:
                cycle = [*path[path.index(anchor) :], item.id]
                names = ", ".join(f"'{guid}'" for guid in dict.fromkeys(cycle))
                raise _fail(key, messages.LIST_ANCHOR_CYCLE.format(ids=names))
            visit(by_id[anchor], [*path, item.id])
        elif strict:
            raise _fail(
                f"{key}[{item.index}].position",
                messages.LIST_ANCHOR_MISSING.format(id=item.id, relation=item.position.kind, anchor=anchor),
            )
        else:
            item = replace(item, position=END)
        done.add(item.id)
        ordered.append(item)

    for item in items:
        visit(item, [])
    return ordered


# --- the list being edited ---


class _Entry:
    __slots__ = ("child", "comment", "position", "row")

    def __init__(self, child: uuid.UUID, row: Row | None) -> None:
        self.child = child
        self.row = row
        self.position = row.position if row else 0
        self.comment: str | None = None

    @property
    def key(self) -> Key:
        return (self.position, self.row.id if self.row else 0)


class _List:
    """The known part of the list while an edit is applied step by step."""

    def __init__(self, window: Window) -> None:
        self.entries = [_Entry(row.child, row) for row in window.rows]
        self.gaps = list(window.gaps)
        self.by_child = {entry.child: entry for entry in self.entries}

    def index(self, entry: _Entry) -> int:
        found = bisect.bisect_left(self.entries, entry.key, key=lambda other: other.key)
        assert self.entries[found] is entry
        return found

    def remove(self, entry: _Entry) -> None:
        at = self.index(entry)
        self.gaps[at] = self.gaps[at] and self.gaps[at + 1]
        del self.gaps[at + 1]
        del self.entries[at]
        del self.by_child[entry.child]

    def place_of(self, position: Position) -> int:
        if position.kind == "start":
            return 0
        if position.kind == "end":
            return len(self.entries)
        assert position.anchor is not None
        at = self.index(self.by_child[position.anchor])
        return at if position.kind == "before" else at + 1

    def insert(self, at: int, entry: _Entry, *, keep_position: bool) -> None:
        if not self.gaps[at]:
            raise WindowTooSmall()
        low = self.entries[at - 1].position if at > 0 else None
        high = self.entries[at].position if at < len(self.entries) else None
        fits = (low is None or low < entry.position) and (high is None or entry.position < high)
        if not (keep_position and fits):
            spread = _spread(low, high, 1, minimum=1)
            if spread is None:
                self._renumber(at, entry)
                return
            entry.position = spread[0]
        self.entries.insert(at, entry)
        self.gaps.insert(at, True)
        self.by_child[entry.child] = entry

    def _renumber(self, at: int, entry: _Entry) -> None:
        """Spread a run of known entries around `at` (and the new one) over a wider range."""
        first, stop = at, at
        toggle = True
        while True:
            low = self.entries[first - 1].position if first > 0 else None
            high = self.entries[stop].position if stop < len(self.entries) else None
            spread = _spread(low, high, stop - first + 1, minimum=MIN_SPACING)
            if spread is not None:
                break
            can_left = first > 0 and self.gaps[first - 1]
            can_right = stop < len(self.entries) and self.gaps[stop + 1]
            if not (can_left or can_right):
                raise WindowTooSmall()
            if can_left and (toggle or not can_right):
                first -= 1
            else:
                stop += 1
            toggle = not toggle
        run = [*self.entries[first:at], entry, *self.entries[at:stop]]
        for member, position in zip(run, spread, strict=True):
            member.position = position
        self.entries.insert(at, entry)
        self.gaps.insert(at, True)
        self.by_child[entry.child] = entry


def _spread(low: int | None, high: int | None, count: int, *, minimum: int) -> list[int] | None:
    """`count` increasing positions strictly between `low` and `high` (None: the list's start/end),
    at least `minimum` apart, or None when they do not fit."""
    if low is None and high is None:
        return [POSITION_GAP * (n + 1) for n in range(count)]
    if low is None:
        assert high is not None
        positions = [high - POSITION_GAP * (count - n) for n in range(count)]
    elif high is None:
        positions = [low + POSITION_GAP * (n + 1) for n in range(count)]
    else:
        step = (high - low) // (count + 1)
        if step < minimum:
            return None
        positions = [low + step * (n + 1) for n in range(count)]
    if positions[0] < -SAFE_POSITION or positions[-1] > SAFE_POSITION:
        return None
    return positions


# --- plans ---


def plan_connect(
    window: Window,
    items: Sequence[Item],
    disconnect: Iterable[uuid.UUID],
    *,
    strict: bool,
    add_only: bool,
    key: str = "connect",
) -> Plan:
    """Strapi's connect/disconnect (or, `add_only`, an add: members already present are skipped).
    `window` holds every mentioned child that is in the list."""
    state = _List(window)
    detached: dict[uuid.UUID, _Entry] = {}
    for child in disconnect:
        entry = state.by_child.get(child)
        if entry is not None:
            state.remove(entry)
            detached[child] = entry
    if add_only:
        items = [item for item in items if item.id not in state.by_child]
    moved: list[_Entry] = []
    for item in order_connect(items, lambda child: child in state.by_child, strict=strict, key=key):
        entry = state.by_child.get(item.id)
        if entry is not None:
            state.remove(entry)
        else:
            entry = detached.pop(item.id, None) or _Entry(item.id, None)
        if entry.row is not None:
            moved.append(entry)
        if item.comment is not None:
            entry.comment = item.comment
        state.insert(state.place_of(item.position), entry, keep_position=entry.row is not None)
    moved_count, unseen = _count_moved(window, state.entries, moved)
    return replace(_writes(state.entries, detached.values()), moved=moved_count, unseen=unseen)


def plan_replace(rows: Sequence[Row], items: Sequence[Item]) -> Plan:
    """The whole list becomes `items` in that order (`rows`: the whole list as stored)."""
    by_child = {row.child: row for row in rows}
    wanted = {item.id for item in items}
    entries: list[_Entry] = []
    for number, item in enumerate(items):
        entry = _Entry(item.id, by_child.get(item.id))
        entry.position = POSITION_GAP * (number + 1)
        entry.comment = item.comment
        entries.append(entry)
    dropped = [_Entry(row.child, row) for row in rows if row.child not in wanted]
    stayers_before = [row.child for row in rows if row.child in wanted]
    stayers_after = [item.id for item in items if item.id in by_child]
    moved = sum(a != b for a, b in zip(stayers_before, stayers_after, strict=True))
    return replace(_writes(entries, dropped), moved=moved)


def _writes(entries: Sequence[_Entry], dropped: Iterable[_Entry]) -> Plan:
    inserts: list[tuple[uuid.UUID, int, str]] = []
    updates: list[tuple[int, int, str | None]] = []
    for entry in entries:
        if entry.row is None:
            inserts.append((entry.child, entry.position, entry.comment or ""))
        elif entry.position != entry.row.position or entry.comment is not None:
            updates.append((entry.row.id, entry.position, entry.comment))
    deletes = [entry.row.id for entry in dropped if entry.row is not None]
    return Plan(inserts, updates, deletes, added=len(inserts), removed=len(deletes))


def _count_moved(
    window: Window, final: Sequence[_Entry], moved: Sequence[_Entry]
) -> tuple[int, Unseen | None]:
    """`moved`: members present before and after whose index among those members changed — or, for a
    partial window, what `finish_moved` needs to count it.

    Known stayers' indices are compared directly; rows outside the window ("unseen") keep their keys,
    so an unseen row's index changes only through the moved entries that jumped over it, and a moved
    entry's index changes also by the unseen rows it jumped over: both need the number of unseen rows
    between consecutive old/new keys of the moved entries, which `Plan.intervals` asks for."""
    if not moved:
        return 0, None
    stayer_ids = {entry.row.id for entry in final if entry.row is not None}
    old_order = [row.id for row in window.rows if row.id in stayer_ids]
    rank_old = {row_id: n for n, row_id in enumerate(old_order)}
    rank_new = {row.id: n for n, row in enumerate(entry.row for entry in final if entry.row is not None)}
    olds = {entry.row.id: entry.row.key for entry in moved if entry.row is not None}
    news = {entry.row.id: entry.key for entry in moved if entry.row is not None}
    known_changed = frozenset(row_id for row_id in rank_old if rank_old[row_id] != rank_new[row_id])
    if window.complete:
        return len(known_changed), None
    bounds = sorted({*olds.values(), *news.values()})
    unseen = Unseen(
        intervals=tuple(itertools.pairwise(bounds)),
        window_keys=tuple(sorted(row.key for row in window.rows)),
        olds=olds,
        news=news,
        rank_old=rank_old,
        rank_new=rank_new,
        known_changed=known_changed,
    )
    return 0, unseen


def finish_moved(plan: Plan, counts: Sequence[int]) -> Plan:
    """The plan with `moved` counted, given the stored rows in each of `plan.intervals` (counted
    before the writes)."""
    state = plan.unseen
    if state is None:
        return plan
    unseen = [
        count - (bisect.bisect_left(state.window_keys, high) - bisect.bisect_right(state.window_keys, low))
        for (low, high), count in zip(state.intervals, counts, strict=True)
    ]
    total = 0
    for n, (low, _high) in enumerate(state.intervals):
        # Moved entries that were before these unseen rows, minus those that are now before them.
        shift = sum(new <= low for new in state.news.values()) - sum(
            old <= low for old in state.olds.values()
        )
        if shift:
            total += unseen[n]
    changed = set(state.known_changed)
    for row_id, old in state.olds.items():
        new = state.news[row_id]
        low, high = min(old, new), max(old, new)
        jumped = sum(unseen[n] for n, (a, b) in enumerate(state.intervals) if low <= a and b <= high)
        delta = state.rank_new[row_id] - state.rank_old[row_id] + (jumped if new > old else -jumped)
        if delta:
            changed.add(row_id)
        else:
            changed.discard(row_id)
    return replace(plan, moved=total + len(changed), unseen=None)


# --- edits planned on the whole list ---


def plan_whole(rows: Sequence[Row], edit: Edit, *, one: bool, alias: str) -> Plan:
    """`set` (a repeated id keeps its first place), and every edit of a cardinality-one list (`one`),
    planned on the whole list as stored (`rows`), which such a list keeps short:
    - set keeps only the last id given;
    - add of more than one child → 422; add of a child while another is the member → 422 (the member
      stays when it is the one added);
    - connect: the last id given wins; with none, disconnect removes."""
    items: list[Item]
    if edit.kind == "set":
        items = first_of_each(edit.items)
        if one:
            items = items and [edit.items[-1]]
    elif edit.kind == "add":
        items = collapse(edit.items, edit.source)
        if len(items) > 1:
            raise _fail(edit.source, messages.LIST_ONE_ADD_SEVERAL.format(alias=alias, count=len(items)))
        present = [Item(row.child) for row in rows]
        if items and present and all(item.id != items[0].id for item in present):
            raise _fail(edit.source, messages.CARDINALITY_ONE_TAKEN.format(alias=alias))
        items = present or items
    else:  # connect on a cardinality-one list
        collapse(edit.items, edit.source)
        gone = set(edit.disconnect)
        last = edit.items[-1] if edit.items else None
        items = (
            [Item(last.id, comment=last.comment)]
            if last
            else [Item(r.child) for r in rows if r.child not in gone]
        )
    return plan_replace(rows, items)
