"""Reading the three body forms (service/child_lists/bodies.py)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from service import messages
from service.child_lists.bodies import (
    MAX_ITEMS,
    Edit,
    Item,
    Position,
    read_delete,
    read_json_api,
    read_patch,
    read_post,
    read_put,
)
from service.errors import BadRequest, ValidationFailed

A = uuid.UUID("6f9619ff-8b86-d011-b42d-00c04fc964ff")
B = uuid.UUID("0e984725-c51c-4bf4-9960-e1c80e27aba0")


def test_shorthand_and_longhand_connect() -> None:
    edit = read_patch(
        {
            "connect": [
                "{6F9619FF-8B86-D011-B42D-00C04FC964FF}",
                {"id": str(B), "position": {"before": str(A).upper()}, "comment": "c"},
            ],
            "disconnect": [{"id": str(B)}, str(A)],
            "options": {"strict": False},
        }
    )
    assert edit == Edit(
        "connect",
        (Item(A), Item(B, Position("before", A), "c", 1)),
        (B, A),
        strict=False,
    )


@pytest.mark.parametrize(
    ("position", "expected"),
    [
        ({"start": True}, Position("start")),
        ({"end": True}, Position("end")),
        ({"after": str(A)}, Position("after", A)),
        ({"before": str(A)}, Position("before", A)),
        (None, Position("end")),
    ],
)
def test_positions(position: Any, expected: Position) -> None:
    (item,) = read_patch({"connect": [{"id": str(B), "position": position}]}).items
    assert item.position == expected


@pytest.mark.parametrize(
    "position",
    [{"start": False}, {"start": True, "end": True}, {"before": "x"}, {"middle": True}, "start", []],
)
def test_bad_positions_are_422(position: Any) -> None:
    with pytest.raises(ValidationFailed) as refused:
        read_patch({"connect": [{"id": str(B), "position": position}]})
    assert refused.value.errors == {"connect[0].position": [messages.LIST_POSITION_INVALID]}


def test_bare_arrays_and_set() -> None:
    assert read_patch([str(A)]) == Edit("set", (Item(A),), source="set")
    assert read_put({"set": [str(A)]}) == Edit("set", (Item(A),), source="set")
    assert read_post([str(A)]) == Edit("add", (Item(A),), source="items")
    assert read_delete([str(A), {"id": str(B)}]) == Edit("remove", disconnect=(A, B), source="items")
    assert read_delete(None) == Edit("clear")


@pytest.mark.parametrize(
    ("reader", "body", "message"),
    [
        (read_patch, {"set": [], "disconnect": []}, messages.LIST_SET_WITH_CONNECT),
        (read_patch, {"connect": {}}, messages.LIST_NOT_ARRAY.format(key="connect")),
        (read_patch, 3, messages.LIST_BODY_SHAPE),
        (read_patch, {"connect": [], "options": {"strict": 1}}, messages.LIST_OPTIONS_SHAPE),
        (read_put, {"set": None}, messages.LIST_NOT_ARRAY.format(key="set")),
        (read_post, "x", messages.LIST_POST_SHAPE),
        (read_delete, {"ids": []}, messages.LIST_DELETE_SHAPE),
    ],
)
def test_shapes_are_400(reader: Any, body: Any, message: str) -> None:
    with pytest.raises(BadRequest) as refused:
        reader(body)
    assert refused.value.message == message


def test_unknown_keys_are_400_naming_the_key() -> None:
    with pytest.raises(BadRequest) as refused:
        read_patch({"connect": [], "sort": 1})
    assert refused.value.message.startswith(messages.LIST_KEY_UNKNOWN.format(key="sort"))


def test_item_values_are_422_by_place() -> None:
    with pytest.raises(ValidationFailed) as refused:
        read_patch({"connect": [str(A), 7, {"id": "nope", "comment": 5, "x": 1}], "disconnect": ["bad"]})
    assert refused.value.errors == {
        "connect[1]": [messages.LIST_ITEM_INVALID],
        "connect[2].x": [messages.FIELD_UNKNOWN],
        "connect[2].id": [messages.FIELD_NOT_GUID],
        "connect[2].comment": [messages.FIELD_NOT_STRING],
        "disconnect[0]": [messages.FIELD_NOT_GUID],
    }


def test_more_than_the_limit_is_422() -> None:
    with pytest.raises(ValidationFailed) as refused:
        read_patch({"connect": [str(A)] * 600, "disconnect": [str(B)] * 401})
    limit = [messages.LIST_TOO_MANY_ITEMS.format(limit=MAX_ITEMS)]
    assert refused.value.errors == {"connect": limit, "disconnect": limit}


def test_json_api_documents() -> None:
    many = read_json_api("POST", {"data": [{"type": "articles", "id": str(A)}], "meta": {}})
    assert (many.kind, many.items, many.types, many.single) == ("add", (Item(A),), ("articles",), False)
    one = read_json_api("PATCH", {"data": {"type": "person", "id": str(B)}})
    assert (one.kind, one.items, one.single) == ("set", (Item(B),), True)
    empty = read_json_api("PATCH", {"data": None})
    assert (empty.items, empty.single) == ((), True)
    removed = read_json_api("DELETE", {"data": [{"type": "t", "id": str(A)}]})
    assert (removed.kind, removed.disconnect) == ("remove", (A,))
    with pytest.raises(BadRequest):
        read_json_api("POST", {"items": []})
    with pytest.raises(ValidationFailed) as refused:
        read_json_api("POST", {"data": [{"id": str(A)}, {"type": 3, "id": "x"}]})
    assert refused.value.errors == {
        "data[0].type": [messages.FIELD_REQUIRED],
        "data[1].type": [messages.FIELD_NOT_STRING],
        "data[1].id": [messages.FIELD_NOT_GUID],
    }
