"""service/bodies.py and service/fields.py: GUID spellings, aliases, per-field errors."""

from __future__ import annotations

import uuid

import pytest

from service import messages
from service.bodies import parse_guid
from service.errors import ValidationFailed
from service.fields import Fields, alias_problem

GUID = uuid.UUID("af3e08fc-fb90-4c78-b11c-c1a0cf43bd31")


@pytest.mark.parametrize(
    "text",
    [
        "af3e08fc-fb90-4c78-b11c-c1a0cf43bd31",
        "AF3E08FC-FB90-4C78-B11C-C1A0CF43BD31",
        "{af3e08fc-fb90-4c78-b11c-c1a0cf43bd31}",
        "af3e08fcfb904c78b11cc1a0cf43bd31",
    ],
)
def test_guid_spellings(text: str) -> None:
    assert parse_guid(text) == GUID


@pytest.mark.parametrize(
    "value", ["", "nope", "af3e08fc-fb90-4c78-b11c-c1a0cf43bd3", 5, None, "a" * 1000, "é" * 32]
)
def test_not_guids(value: object) -> None:
    assert parse_guid(value) is None


@pytest.mark.parametrize(
    ("alias", "problem"),
    [
        ("relateDocumentOnCopy", None),
        ("a.b-c_d9", None),
        ("parent", messages.ALIAS_RESERVED.format(alias="parent")),
        ("Referenced", messages.ALIAS_RESERVED.format(alias="Referenced")),
        ("9lives", messages.ALIAS_INVALID),
        ("", messages.ALIAS_INVALID),
        ("a:b", messages.ALIAS_INVALID),
        (None, messages.ALIAS_INVALID),
    ],
)
def test_alias_problem(alias: object, problem: str | None) -> None:
    assert alias_problem(alias) == problem


def test_fields_collects_every_problem_once() -> None:
    fields = Fields({"a": "x", "b": 3, "zzz": 1}, message="m", known=("a", "b", "c"))
    assert fields.guid("a") is None
    assert fields.text("b", limit=5) == ""
    fields.guid("c")
    with pytest.raises(ValidationFailed) as raised:
        fields.check()
    assert raised.value.errors == {
        "zzz": [messages.FIELD_UNKNOWN],
        "a": [messages.FIELD_NOT_GUID],
        "b": [messages.FIELD_NOT_STRING],
        "c": [messages.FIELD_REQUIRED],
    }
    assert raised.value.body()["error"]["details"] == {"errors": raised.value.errors}
