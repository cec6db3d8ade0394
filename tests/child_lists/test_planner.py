"""The pure planner (service/child_lists/planner.py): ordering rules, windows, local renumbering and the
`moved` count from range counts, against the reference model, without a database."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service import messages
from service.child_lists.bodies import Edit, Item, Position, read_patch
from service.child_lists.planner import (
    MIN_SPACING,
    Plan,
    Row,
    Window,
    WindowTooSmall,
    collapse,
    finish_moved,
    order_connect,
    plan_connect,
    plan_replace,
    plan_whole,
)
from service.errors import ValidationFailed
from service.relations.queries import POSITION_GAP
from tests.child_lists.model import ChildList, Refused

IDS = [uuid.UUID(int=n + 1) for n in range(100)]


def rows_of(positions: Sequence[int]) -> list[Row]:
    return [Row(id=n + 100, child=IDS[n], position=p) for n, p in enumerate(positions)]


def fake_window(
    rows: Sequence[Row],
    mentioned: set[uuid.UUID],
    focus: set[uuid.UUID],
    radius: int,
    start: int,
    end: int,
) -> Window:
    """What queries.window reads, from a list held in memory."""
    ordered = sorted(rows, key=lambda row: row.key)
    singles = [row for row in ordered if row.child in mentioned]
    runs: list[tuple[Sequence[Row], bool, bool]] = []
    if start:
        runs.append((ordered[:start], True, len(ordered) < start))
    if end:
        runs.append((ordered[-end:] if ordered else [], len(ordered) < end, True))
    for at, row in enumerate(ordered):
        if row.child in focus and row.child in mentioned:
            before, after = ordered[max(0, at - radius) : at], ordered[at + 1 : at + 1 + radius]
            runs.append(([*before, row, *after], len(before) < radius, len(after) < radius))
    return Window.from_runs(singles, runs)


def apply(rows: Sequence[Row], plan: Plan) -> list[Row]:
    """The stored list after the plan's writes."""
    by_id = {row.id: row for row in rows}
    for row_id in plan.deletes:
        del by_id[row_id]
    for row_id, position, _ in plan.updates:
        by_id[row_id] = Row(row_id, by_id[row_id].child, position)
    next_id = max([*by_id, 1000]) + 1
    for child, position, _ in plan.inserts:
        by_id[next_id] = Row(next_id, child, position)
        next_id += 1
    return sorted(by_id.values(), key=lambda row: row.key)


def counts_for(rows: Sequence[Row], plan: Plan) -> list[int]:
    """What queries.count_between answers (before the writes)."""
    return [sum(1 for row in rows if low < row.key < high) for low, high in plan.intervals]


def plan_as_service(
    rows: list[Row], items: list[Item], disconnect: list[uuid.UUID], strict: bool, add_only: bool = False
) -> Plan:
    """The route's way: a window around what is mentioned, the whole list when it is too small."""
    items = collapse(items)
    anchors = {item.position.anchor for item in items if item.position.anchor is not None}
    mentioned = {item.id for item in items} | set(disconnect) | anchors
    radius = len(items) + len(disconnect) + 2
    kinds = {item.position.kind for item in items}
    start = radius + 1 if "start" in kinds else 0
    end = radius + 1 if "end" in kinds or (anchors and not strict) else 0
    window = fake_window(rows, mentioned, anchors, radius, start, end)
    try:
        plan = plan_connect(window, items, disconnect, strict=strict, add_only=add_only)
    except WindowTooSmall:
        plan = plan_connect(Window.whole(rows), items, disconnect, strict=strict, add_only=add_only)
    return finish_moved(plan, counts_for(rows, plan))


def item(n: int, kind: str = "end", anchor: int | None = None, index: int = 0) -> Item:
    return Item(IDS[n], Position(kind, IDS[anchor] if anchor is not None else None), None, index)  # type: ignore[arg-type]


# --- rules ---


def test_identical_items_collapse_and_different_ones_are_refused() -> None:
    assert collapse([item(1), item(2), Item(IDS[1], index=2)]) == [item(1), item(2)]
    with pytest.raises(ValidationFailed) as refused:
        collapse([item(1), item(1, "start", index=1)])
    assert refused.value.errors == {"connect[1]": [messages.LIST_DUPLICATE_ITEM.format(id=IDS[1])]}


def test_self_anchor_is_refused_naming_the_id() -> None:
    with pytest.raises(ValidationFailed) as refused:
        collapse([item(3, "before", 3)])
    assert refused.value.errors == {
        "connect[0].position": [messages.LIST_SELF_ANCHOR.format(id=IDS[3], relation="before")]
    }


def test_anchor_connected_later_applies_first() -> None:
    # 1 after 2 (new, later in the array); 3 has no anchor and keeps its place relative to 1's chain.
    items = [item(1, "after", 2, 0), item(3, index=1), item(2, index=2)]
    ordered = order_connect(items, lambda child: False, strict=True)
    assert [i.id for i in ordered] == [IDS[2], IDS[1], IDS[3]]


def test_anchor_already_in_the_list_keeps_the_item_in_place() -> None:
    items = [item(1, "after", 2, 0), item(2, "start", index=1)]
    ordered = order_connect(items, lambda child: child == IDS[2], strict=True)
    assert [i.id for i in ordered] == [IDS[1], IDS[2]]


def test_cycle_is_refused_naming_the_ids() -> None:
    items = [item(1, "after", 2, 0), item(2, "before", 3, 1), item(3, "after", 1, 2)]
    with pytest.raises(ValidationFailed) as refused:
        order_connect(items, lambda child: False, strict=True)
    (message,) = refused.value.errors["connect"]
    assert message == messages.LIST_ANCHOR_CYCLE.format(ids=f"'{IDS[1]}', '{IDS[2]}', '{IDS[3]}'")


def test_missing_anchor_is_refused_or_appended() -> None:
    with pytest.raises(ValidationFailed) as refused:
        order_connect([item(1, "before", 9)], lambda child: False, strict=True)
    assert refused.value.errors == {
        "connect[0].position": [
            messages.LIST_ANCHOR_MISSING.format(id=IDS[1], relation="before", anchor=IDS[9])
        ]
    }
    (relaxed,) = order_connect([item(1, "before", 9)], lambda child: False, strict=False)
    assert relaxed.position == Position("end")


def test_set_body_with_a_position_is_refused() -> None:
    with pytest.raises(ValidationFailed) as refused:
        read_patch({"set": [{"id": str(IDS[1]), "position": {"start": True}}]})
    assert refused.value.errors == {"set[0].position": [messages.LIST_POSITION_NOT_ALLOWED]}


# --- positions ---


def test_insert_takes_the_midpoint_and_writes_one_row() -> None:
    rows = rows_of([POSITION_GAP * (n + 1) for n in range(5)])
    plan = plan_as_service(rows, [item(10, "before", 3)], [], strict=True)
    assert plan.inserts == [(IDS[10], POSITION_GAP * 3 + POSITION_GAP // 2, "")]
    assert plan.updates == [] and plan.deletes == []


def test_closed_gap_renumbers_a_local_run_only() -> None:
    # Forty rows one apart in the middle of a sparse list: inserting among them renumbers a few rows.
    positions = [POSITION_GAP * n for n in range(1, 21)] + [POSITION_GAP * 21 + n for n in range(40)]
    positions += [POSITION_GAP * n for n in range(30, 40)]
    rows = rows_of(positions)
    plan = plan_connect(Window.whole(rows), [item(90, "after", 40)], [], strict=True, add_only=False)
    after = apply(rows, plan)
    assert [row.child for row in after].index(IDS[90]) == 41
    assert 0 < len(plan.updates) < 40
    keys = [row.position for row in after]
    assert keys == sorted(set(keys))
    moved_apart = sorted(p for _, p, _ in plan.updates)
    assert all(b - a >= MIN_SPACING for a, b in itertools.pairwise(moved_apart))


def test_window_too_small_is_reported() -> None:
    rows = rows_of([n for n in range(10)])  # no gaps at all
    window = fake_window(rows, {IDS[5]}, {IDS[5]}, 1, 0, 0)
    with pytest.raises(WindowTooSmall):
        plan_connect(window, [item(50, "before", 5)], [], strict=True, add_only=False)


def test_replace_counts_changes() -> None:
    rows = rows_of([POSITION_GAP * (n + 1) for n in range(4)])
    plan = plan_replace(rows, [Item(IDS[3]), Item(IDS[1]), Item(IDS[9])])
    assert plan.changes == {"added": 1, "removed": 2, "moved": 2}


# --- the window planner against the model ---

positions_strategy = st.one_of(st.just("gapped"), st.just("dense"), st.just("ties"), st.just("mixed"))


def make_positions(kind: str, size: int, draw: Any) -> list[int]:
    if kind == "gapped":
        return [POSITION_GAP * (n + 1) for n in range(size)]
    if kind == "dense":
        return list(range(size))
    if kind == "ties":
        return sorted(draw(st.lists(st.integers(0, 5), min_size=size, max_size=size)))
    return sorted(draw(st.lists(st.integers(-(1 << 30), 1 << 30), min_size=size, max_size=size, unique=True)))


@st.composite
def scenarios(draw: Any) -> tuple[list[Row], list[Item], list[uuid.UUID], bool, bool]:
    size = draw(st.integers(0, 40))
    rows = rows_of(make_positions(draw(positions_strategy), size, draw))
    pool = st.integers(0, min(size + 6, len(IDS) - 1))
    where = st.one_of(
        st.just(("end", None)),
        st.just(("start", None)),
        st.tuples(st.sampled_from(["before", "after"]), pool),
    )
    raw = draw(st.lists(st.tuples(pool, where), max_size=6))
    items = [item(n, kind, anchor, index) for index, (n, (kind, anchor)) in enumerate(raw)]
    gone = [IDS[n] for n in draw(st.lists(pool, max_size=4))]
    return rows, items, gone, draw(st.booleans()), draw(st.booleans())


def as_json(one: Item) -> Any:
    body: dict[str, Any] = {"id": str(one.id)}
    if one.position.kind in ("before", "after"):
        body["position"] = {one.position.kind: str(one.position.anchor)}
    else:
        body["position"] = {one.position.kind: True}
    return body


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_window_plan_matches_the_model(
    scenario: tuple[list[Row], list[Item], list[uuid.UUID], bool, bool],
) -> None:
    rows, items, gone, strict, add_only = scenario
    if add_only:
        gone = []
    model = ChildList(
        children=[str(row.child) for row in rows], comments={str(row.child): "" for row in rows}
    )
    try:
        if add_only:
            expected = model.add([as_json(one) for one in items], strict)
        else:
            expected = model.connect([as_json(one) for one in items], [str(g) for g in gone], strict)
    except Refused:
        with pytest.raises(ValidationFailed):
            plan_as_service(rows, items, gone, strict, add_only)
        return
    plan = plan_as_service(rows, items, gone, strict, add_only)
    after = apply(rows, plan)
    assert [str(row.child) for row in after] == model.children
    assert plan.changes == expected
    # Every position the plan writes is a place of its own (ties only where the stored list had them).
    written = {position for _, position, _ in plan.inserts} | {position for _, position, _ in plan.updates}
    taken = [row.position for row in after]
    assert all(taken.count(position) == 1 for position in written)


# --- cardinality one (plan_whole), without HTTP ---


def test_one_set_keeps_the_last_id() -> None:
    rows = rows_of([POSITION_GAP])
    plan = plan_whole(rows, Edit("set", (item(2), item(3))), one=True, alias="t")
    assert [child for child, _, _ in plan.inserts] == [IDS[3]]
    assert plan.deletes == [rows[0].id]


def test_one_add_of_several_or_of_another_is_refused() -> None:
    with pytest.raises(ValidationFailed) as several:
        plan_whole([], Edit("add", (item(1), item(2)), source="items"), one=True, alias="t")
    assert several.value.errors == {"items": [messages.LIST_ONE_ADD_SEVERAL.format(alias="t", count=2)]}
    taken = rows_of([POSITION_GAP])
    with pytest.raises(ValidationFailed) as other:
        plan_whole(taken, Edit("add", (item(5),), source="items"), one=True, alias="t")
    assert other.value.errors == {"items": [messages.CARDINALITY_ONE_TAKEN.format(alias="t")]}
    same = plan_whole(taken, Edit("add", (item(0),), source="items"), one=True, alias="t")
    assert same.changes == {"added": 0, "removed": 0, "moved": 0}


def test_one_connect_takes_the_last_or_disconnects() -> None:
    rows = rows_of([POSITION_GAP])
    replaced = plan_whole(rows, Edit("connect", (item(4), item(6))), one=True, alias="t")
    assert replaced.changes == {"added": 1, "removed": 1, "moved": 0}
    assert [child for child, _, _ in replaced.inserts] == [IDS[6]]
    removed = plan_whole(rows, Edit("connect", disconnect=(IDS[0],)), one=True, alias="t")
    assert removed.changes == {"added": 0, "removed": 1, "moved": 0}


def test_many_set_keeps_the_first_place_of_a_repeated_id() -> None:
    plan = plan_whole([], Edit("set", (item(1), item(2), item(1))), one=False, alias="t")
    assert [child for child, _, _ in plan.inserts] == [IDS[1], IDS[2]]
