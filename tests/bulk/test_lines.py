"""Reading an upload's lines without a database (service/bulk/lines.py): numbering across chunks,
blank and CRLF lines, over-long lines, the staging rows, the type lines."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service import messages
from service.bulk.lines import MAX_LINE_BYTES, LineReader
from tests.bulk.helpers import ndjson, relation, relation_type

PARENT, CHILD = "af3e08fc-fb90-4c78-b11c-c1a0cf43bd31", "e0c5f0e5-c1f0-4422-9ac0-6dbb536e8eb5"


def read(*chunks: bytes) -> LineReader:
    reader = LineReader()
    rows = [row for chunk in chunks for row in reader.feed(chunk)]
    rows += reader.finish()
    reader.rows = rows  # type: ignore[attr-defined]
    return reader


def test_a_relation_line_becomes_a_staging_row() -> None:
    body = ndjson(relation(PARENT, CHILD, comment="hi", _createDate="2026-11-23T10:00:00Z"))
    reader = read(body)
    created = datetime(2026, 11, 23, 10, tzinfo=UTC)
    assert reader.rows == [(1, "umbDocument", uuid.UUID(PARENT), uuid.UUID(CHILD), "hi", created)]
    assert not reader.problems and reader.lines == 1


# Values of each relation field that the fast path takes, that only the general path takes (other GUID
# spellings, a null comment) and that are problems.
FIELD_VALUES = {
    "parentId": [
        PARENT,
        PARENT.upper(),
        "{" + PARENT + "}",
        PARENT.replace("-", ""),
        " " + PARENT,
        "x",
        7,
        None,
    ],
    "childId": [CHILD, CHILD[:-1] + "g", ["a"]],
    "relationTypeAlias": ["umbDocument", "relation", "no spaces", "", 3],
    "comment": ["", "hi", None, "x" * 1000, "x" * 1001, "a\x00b", 1.5],
    "_createDate": ["2026-11-23T10:00:00Z", "2026-11-23 10:00:00+02:00", "2026-11-23", "soon", 5, None],
    "_id": [1, 0, -3, 2**70, 1.0, True, "4", None],
    "_links": [{"self": {"href": "/relation/1"}}, None, []],
    "extra": ["unknown"],
}


@given(
    st.fixed_dictionaries(
        {}, optional={name: st.sampled_from(values) for name, values in FIELD_VALUES.items()}
    )
)
def test_the_fast_path_reads_a_line_as_the_general_path_does(body: dict[str, object]) -> None:
    general = LineReader()
    general._fast = lambda raw: None  # type: ignore[method-assign]
    line = json.dumps({"relation": body}).encode() + b"\n"  # orjson writes no integer past 64 bits
    fast = read(line)
    assert fast.rows == general.feed(line) and fast.problems.found == general.problems.found


def test_any_spelling_of_a_guid() -> None:
    for spelling in (PARENT.upper(), "{" + PARENT + "}", PARENT.replace("-", "")):
        (row,) = read(ndjson(relation(spelling, CHILD))).rows
        assert str(row[2]) == PARENT


@given(st.lists(st.integers(min_value=1, max_value=300), max_size=8))
def test_lines_are_numbered_whatever_the_chunks(cuts: list[int]) -> None:
    body = ndjson(relation(PARENT, CHILD), "", "{nope", relation(CHILD, PARENT)).replace(b"\n", b"\r\n", 1)
    chunks, start = [], 0
    for cut in sorted(set(cuts)):
        chunks.append(body[start:cut])
        start = cut
    chunks.append(body[start:])
    reader = read(*chunks)
    assert [row[0] for row in reader.rows] == [1, 4]
    assert reader.problems.found == [(3, messages.LINE_NOT_JSON)]
    assert reader.lines == 4


def test_a_last_line_without_newline_counts() -> None:
    reader = read(ndjson(relation(PARENT, CHILD)).rstrip(b"\n"))
    assert len(reader.rows) == 1 and reader.lines == 1


@pytest.mark.parametrize("extra", [10, 200_000])  # ends in the chunk that passes the limit, or later
def test_an_over_long_line_is_one_problem_and_the_next_lines_still_count(extra: int) -> None:
    long = b'{"relation": "' + b"x" * (MAX_LINE_BYTES + extra) + b'"}\n'
    chunks = [long[i : i + 65536] for i in range(0, len(long), 65536)]
    reader = read(ndjson(relation(PARENT, CHILD)), *chunks, ndjson(relation(CHILD, PARENT)))
    assert reader.problems.found == [(2, messages.LINE_TOO_LONG.format(limit=MAX_LINE_BYTES))]
    assert [row[0] for row in reader.rows] == [1, 3]


def test_type_lines_are_kept_with_their_line() -> None:
    type_id = str(uuid.uuid4())
    reader = read(
        ndjson(relation(PARENT, CHILD), relation_type("tags", "Tags", _id=type_id, cardinality="one"))
    )
    line = reader.types["tags"]
    assert line.line == 2 and str(line.type_id) == type_id and line.fields.cardinality == "one"
    assert line.created_at is None


def test_problems_keep_the_first_hundred_by_line() -> None:
    reader = read(b"x\n" * 150)
    assert reader.problems.full
    errors = reader.problems.error().errors
    assert list(errors) == [f"line {n}" for n in range(1, 101)]
