"""What a relation type is: its fields, Umbraco's id scheme, the built-ins, and its representation."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from service import messages
from service.fields import Fields
from service.hal import Links, iso

UNKNOWN = "Unknown"
OBJECT_TYPE = re.compile(r"[A-Z][A-Z0-9_]{0,99}")
CARDINALITIES = ("many", "one")
NAME_LIMIT = 255
FIELDS = (
    "alias",
    "name",
    "parentObjectType",
    "childObjectType",
    "isBidirectional",
    "isDependency",
    "cardinality",
)


def type_id(alias: str, name: str) -> uuid.UUID:
    """Umbraco's relation type ids: uuid3(NAMESPACE_URL, alias + "____" + name), fixed at creation."""
    return uuid.uuid3(uuid.NAMESPACE_URL, alias + "____" + name)


@dataclass(frozen=True)
class RelationTypeFields:
    alias: str
    name: str
    parent_object_type: str = UNKNOWN
    child_object_type: str = UNKNOWN
    is_bidirectional: bool = False
    is_dependency: bool = False
    cardinality: str = "many"


BUILTINS = (
    RelationTypeFields("relateDocumentOnCopy", "Relate Document On Copy", "DOCUMENT", "DOCUMENT", True),
    RelationTypeFields(
        "relateParentDocumentOnDelete", "Relate Parent Document On Delete", "DOCUMENT", "DOCUMENT"
    ),
    RelationTypeFields(
        "relateParentMediaFolderOnDelete", "Relate Parent Media Folder On Delete", "MEDIA", "MEDIA"
    ),
    RelationTypeFields("umbMedia", "Related Media", is_dependency=True),
    RelationTypeFields("umbDocument", "Related Document", is_dependency=True),
    RelationTypeFields("umbMember", "Related Member", is_dependency=True),
)


def object_type_problem(value: Any) -> str | None:
    if value == UNKNOWN or (isinstance(value, str) and OBJECT_TYPE.fullmatch(value)):
        return None
    return messages.OBJECT_TYPE_INVALID


def _object_type(fields: Fields, name: str, default: str) -> str:
    if not fields.present(name):
        return default
    value = fields.body[name]
    problem = object_type_problem(value)
    if problem:
        fields.fail(name, problem)
        return default
    return str(value)


def _cardinality(fields: Fields, default: str) -> str:
    if not fields.present("cardinality"):
        return default
    value = fields.body["cardinality"]
    if value not in CARDINALITIES:
        fields.fail("cardinality", messages.CARDINALITY_INVALID)
        return default
    return str(value)


def read_fields(body: dict[str, Any], *, current: RelationTypeFields | None = None) -> RelationTypeFields:
    """A create body (current is None) or a full/partial update of `current`; the alias is fixed."""
    fields = Fields(body, message=messages.RELATION_TYPE_INVALID, known=FIELDS)
    if current is None:
        alias = fields.alias("alias")
        name = fields.text("name", limit=NAME_LIMIT, required=True)
        current = RelationTypeFields(alias=alias, name=name)
    else:
        if fields.present("alias") and body["alias"] != current.alias:
            fields.fail("alias", messages.FIELD_IMMUTABLE)
        name = fields.text("name", limit=NAME_LIMIT, required=fields.present("name"), default=current.name)
    result = RelationTypeFields(
        alias=current.alias,
        name=name,
        parent_object_type=_object_type(fields, "parentObjectType", current.parent_object_type),
        child_object_type=_object_type(fields, "childObjectType", current.child_object_type),
        is_bidirectional=fields.boolean("isBidirectional", default=current.is_bidirectional),
        is_dependency=fields.boolean("isDependency", default=current.is_dependency),
        cardinality=_cardinality(fields, current.cardinality),
    )
    fields.check()
    return result


def from_row(row: Any) -> RelationTypeFields:
    return RelationTypeFields(
        alias=row["alias"],
        name=row["name"],
        parent_object_type=row["parent_object_type"],
        child_object_type=row["child_object_type"],
        is_bidirectional=row["is_bidirectional"],
        is_dependency=row["is_dependency"],
        cardinality=row["cardinality"],
    )


def describe(row: Any) -> dict[str, Any]:
    """The representation without `_links` (an export's line)."""
    return {
        "_id": str(row["type_id"]),
        "alias": row["alias"],
        "name": row["name"],
        "isBidirectional": row["is_bidirectional"],
        "isDependency": row["is_dependency"],
        "parentObjectType": row["parent_object_type"],
        "childObjectType": row["child_object_type"],
        "cardinality": row["cardinality"],
        "_createDate": iso(row["created_at"]),
        "_updateDate": iso(row["updated_at"]),
    }


def represent(links: Links, row: Any) -> dict[str, Any]:
    alias = row["alias"]
    return {
        **describe(row),
        "_links": {
            "self": {"href": links.relation_type(alias)},
            "relations": {"href": links.relations_of_type(alias)},
        },
    }
