"""A relation's representation and the fields of its bodies."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from service import messages
from service.fields import Fields, alias_problem
from service.hal import Links, iso

COMMENT_LIMIT = 1000
CREATE_FIELDS = ("parentId", "childId", "relationTypeAlias", "comment")
# Heartcore's representation fields are accepted (and ignored) in a PUT body, so a client may send
# back what it read; parentId, childId and relationTypeAlias must then be unchanged.
UPDATE_FIELDS = (*CREATE_FIELDS, "_id", "_createDate", "_links")


@dataclass(frozen=True)
class NewRelation:
    parent: uuid.UUID
    child: uuid.UUID
    type_alias: str
    comment: str


def read_new(body: dict[str, Any]) -> NewRelation:
    fields = Fields(body, message=messages.RELATION_INVALID, known=CREATE_FIELDS)
    parent = fields.guid("parentId")
    child = fields.guid("childId")
    type_alias = body.get("relationTypeAlias")
    if type_alias is None:
        fields.fail("relationTypeAlias", messages.FIELD_REQUIRED)
    elif alias_problem(type_alias):
        fields.fail("relationTypeAlias", messages.RELATION_TYPE_UNKNOWN.format(alias=str(type_alias)[:100]))
    comment = fields.text("comment", limit=COMMENT_LIMIT)
    fields.check()
    assert parent is not None and child is not None
    return NewRelation(parent, child, str(type_alias), comment)


# The fields of a PUT body that must equal the stored ones, by column.
IMMUTABLE_FIELDS = (("parentId", "parent"), ("childId", "child"), ("relationTypeAlias", "type_alias"))


@dataclass(frozen=True)
class Update:
    """A PUT's body: the new comment (None keeps the stored one) and, by column, the values of the
    immutable fields it names, which the stored ones must equal."""

    comment: str | None
    expected: dict[str, Any]


def read_update(body: dict[str, Any], current: Any = None) -> Update:
    """The update a PUT body asks for. With `current` (the stored relation), a named field that differs
    is refused here; without, the update's statement checks it (queries.update_comment)."""
    fields = Fields(body, message=messages.RELATION_INVALID, known=UPDATE_FIELDS)
    expected: dict[str, Any] = {}
    for name, column in IMMUTABLE_FIELDS:
        if not fields.present(name):
            continue
        given = fields.guid(name) if name != "relationTypeAlias" else body[name]
        if not isinstance(given, uuid.UUID | str) or (current is not None and given != current[column]):
            fields.fail(name, messages.FIELD_IMMUTABLE)
        expected[column] = given
    # Absent keeps the comment; an explicit null clears it (a PUT that says "no comment").
    cleared = "comment" in body and body["comment"] is None
    comment = None
    if cleared:
        comment = ""
    elif fields.present("comment"):
        comment = fields.text("comment", limit=COMMENT_LIMIT)
    fields.check()
    return Update(comment, expected)


def represent_page(links: Links, rows: Sequence[Any]) -> list[dict[str, Any]]:
    """Relations as HAL, a page at once: the link prefix and each type's link are built once per page
    (an edit's answer and every list carry up to a page of them)."""
    relation_prefix = links.href("relations:get", id="")
    type_links: dict[str, dict[str, str]] = {}
    items = []
    for row in rows:
        alias = row["type_alias"]
        type_link = type_links.get(alias)
        if type_link is None:
            type_link = type_links[alias] = {"href": links.relation_type(alias)}
        relation_id = row["id"]
        items.append(
            {
                "_id": relation_id,
                "parentId": str(row["parent"]),
                "childId": str(row["child"]),
                "relationTypeAlias": alias,
                "comment": row["comment"],
                "_createDate": iso(row["created_at"]),
                "_links": {"self": {"href": f"{relation_prefix}{relation_id}"}, "relationType": type_link},
            }
        )
    return items


def represent(links: Links, row: Any) -> dict[str, Any]:
    return represent_page(links, [row])[0]
