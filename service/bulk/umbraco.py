"""Umbraco CMS's relations as the import's NDJSON lines: the tables `umbracoRelationType`,
`umbracoRelation` and `umbracoNode` exported as CSV with a header row and Umbraco's own column names,
as SQL Server's and SQLite's tools write them (GUIDs in either case, with or without braces; booleans
0/1 or True/False; datetimes such as `2024-05-01 10:00:00.000`; NULL as an empty field or `NULL`).

Node ids become their `uniqueId`, relation types keep `typeUniqueId` as `_id`, object-type GUIDs
become SPEC §4's names, `dual` becomes `isBidirectional`, and each list's order follows
`umbracoRelation.id`. Rows that cannot be mapped are reported with their file and line before any
line is produced, so nothing is stored. This runs in the CLI, not in a worker: the node map
(id → uniqueId) and the relations (to order them by id) are held in memory, about 200 bytes a row."""

from __future__ import annotations

import csv
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from service import messages
from service.bodies import parse_guid
from service.bulk.lines import MAX_PROBLEMS, relation_line, type_line
from service.fields import alias_problem
from service.hal import iso

RELATION_TYPES = "umbracoRelationType.csv"
RELATIONS = "umbracoRelation.csv"
NODES = "umbracoNode.csv"
NEEDED = {
    RELATION_TYPES: ("id", "typeUniqueId", "dual", "parentObjectType", "childObjectType", "name", "alias"),
    RELATIONS: ("id", "parentId", "childId", "relType", "datetime", "comment"),
    NODES: ("id", "uniqueId"),
}

# Umbraco's Constants.ObjectTypes (Umbraco.Core/Constants-ObjectTypes.cs) → SPEC §4's upper-snake names.
OBJECT_TYPES = {
    uuid.UUID(guid): name
    for guid, name in {
        "C66BA18E-EAF3-4CFF-8A22-41B16D66A972": "DOCUMENT",
        "B796F64C-1F99-4FFB-B886-4BF4BC011A9C": "MEDIA",
        "39EB0F98-B348-42A1-8662-E7EB18487560": "MEMBER",
        "A2CB7800-F571-4787-9638-BC48539A0EFB": "DOCUMENT_TYPE",
        "4EA4382B-2F5A-4C2B-9587-AE9B3CF3602E": "MEDIA_TYPE",
        "9B5416FB-E72F-45A9-A07B-5A9A2709CE43": "MEMBER_TYPE",
        "366E63B9-880F-4E13-A61C-98069B029728": "MEMBER_GROUP",
        "30A2A501-1978-4DDB-A57B-F7EFED43BA3C": "DATA_TYPE",
        "6FBDE604-4178-42CE-A10B-8A2600A2F07D": "TEMPLATE",
        "6EBEF410-03AA-48CF-A792-E1C1CB087ACA": "DOCUMENT_BLUEPRINT",
        "EA7D8624-4CFE-4578-A871-24AA946BF34D": "ROOT",
        "01BB7FF2-24DC-4C0C-95A2-C24EF72BBAC8": "RECYCLE_BIN",
        "CF3D8E34-1C1C-41E9-AE56-878B57B32113": "MEDIA_RECYCLE_BIN",
        "9F68DA4F-A3A8-44C2-8226-DCBD125E4840": "STYLESHEET",
        "10E2B09F-C28B-476D-B77A-AA686435E44A": "CONTENT_ITEM",
        "7A333C54-6F43-40A4-86A2-18688DC7E532": "CONTENT_ITEM_TYPE",
        "521231E3-8B37-469C-9F9D-51AFC91FEB7B": "DATA_TYPE_CONTAINER",
        "2F7A2769-6B0B-4468-90DD-AF42D64F7F16": "DOCUMENT_TYPE_CONTAINER",
        "42AEF799-B288-4744-9B10-BE144B73CDC4": "MEDIA_TYPE_CONTAINER",
    }.items()
}
UNKNOWN = "Unknown"
TRUE = frozenset({"1", "true"})
FALSE = frozenset({"0", "false"})


class UmbracoProblems(Exception):
    """Rows that cannot be mapped: each message names its file and line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems[:MAX_PROBLEMS]
        super().__init__("\n".join(self.problems))


@dataclass
class Export:
    """The lines to import, and where each came from (`origin[n - 1]` for line n), so the import's
    problems can be reported against the CSV files."""

    lines: list[bytes] = field(default_factory=list)
    origin: list[str] = field(default_factory=list)

    def add(self, line: bytes, origin: str) -> None:
        self.lines.append(line)
        self.origin.append(origin)

    def where(self, key: str) -> str:
        """`line N` of the import → `umbracoRelation.csv line M`."""
        number = int(key.removeprefix("line "))
        return self.origin[number - 1] if 0 < number <= len(self.origin) else key


def _null(value: str | None) -> bool:
    return value is None or value.strip() == "" or value.strip().upper() == "NULL"


class _Reader:
    def __init__(self, folder: Path, problems: list[str]) -> None:
        self.folder = folder
        self.problems = problems

    def rows(self, name: str) -> Iterator[tuple[int, dict[str, str | None]]]:
        """(line, row by lower-case column name); BOMs (SQL Server) and header case are forgiven. A
        missing file or column ends the conversion at once (every row would be reported otherwise)."""
        path = self.folder / name
        if not path.is_file():
            raise UmbracoProblems([messages.UMBRACO_FILE_MISSING.format(file=name, folder=self.folder)])
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = [column.strip().lower() for column in next(reader, [])]
            missing = [column for column in NEEDED[name] if column.lower() not in header]
            if missing:
                columns = ", ".join(missing)
                raise UmbracoProblems([messages.UMBRACO_COLUMNS.format(file=name, columns=columns)])
            for values in reader:
                if values:
                    yield reader.line_num, dict(zip(header, values, strict=False))

    def fail(self, name: str, line: int, column: str, value: Any, expected: str) -> None:
        self.problems.append(
            messages.UMBRACO_VALUE.format(file=name, line=line, column=column, value=value, expected=expected)
        )

    def integer(self, name: str, line: int, row: dict[str, str | None], column: str) -> int | None:
        value = row.get(column.lower())
        try:
            return int(str(value).strip())
        except ValueError:
            self.fail(name, line, column, value, "an integer")
            return None

    def guid(self, name: str, line: int, row: dict[str, str | None], column: str) -> uuid.UUID | None:
        value = row.get(column.lower())
        found = parse_guid(value)
        if found is None:
            self.fail(name, line, column, value, "a GUID")
        return found

    def boolean(self, name: str, line: int, row: dict[str, str | None], column: str) -> bool:
        value = row.get(column.lower())
        if _null(value):
            return False
        lowered = str(value).strip().lower()
        if lowered not in TRUE | FALSE:
            self.fail(name, line, column, value, "0, 1, True or False")
        return lowered in TRUE

    def moment(self, name: str, line: int, row: dict[str, str | None], column: str) -> str | None:
        value = row.get(column.lower())
        if _null(value):
            return None
        try:
            moment = datetime.fromisoformat(str(value).strip())
        except ValueError:
            self.fail(name, line, column, value, "a date and time such as 2024-05-01 10:00:00.000")
            return None
        # Umbraco writes the server's local time without a zone; it is taken as UTC.
        return iso(moment if moment.tzinfo else moment.replace(tzinfo=UTC))

    def object_type(self, name: str, line: int, row: dict[str, str | None], column: str) -> str:
        value = row.get(column.lower())
        if _null(value):
            return UNKNOWN
        guid = self.guid(name, line, row, column)
        return OBJECT_TYPES.get(guid, UNKNOWN) if guid else UNKNOWN


def convert(folder: Path) -> Export:
    """The import's lines for an Umbraco export in `folder`; raises UmbracoProblems."""
    problems: list[str] = []
    read = _Reader(folder, problems)
    out = Export()

    nodes: dict[int, str] = {}
    for line, row in read.rows(NODES):
        node_id, unique = read.integer(NODES, line, row, "id"), read.guid(NODES, line, row, "uniqueId")
        if node_id is not None and unique is not None:
            nodes[node_id] = str(unique)

    aliases: dict[int, str] = {}
    for line, row in read.rows(RELATION_TYPES):
        type_number = read.integer(RELATION_TYPES, line, row, "id")
        type_id = read.guid(RELATION_TYPES, line, row, "typeUniqueId")
        alias = (row.get("alias") or "").strip()
        if alias_problem(alias):
            read.fail(RELATION_TYPES, line, "alias", alias, "a relation type alias the registry accepts")
        represented = {
            "_id": str(type_id),
            "alias": alias,
            "name": (row.get("name") or "").strip(),
            "isBidirectional": read.boolean(RELATION_TYPES, line, row, "dual"),
            "isDependency": read.boolean(RELATION_TYPES, line, row, "isDependency"),
            "parentObjectType": read.object_type(RELATION_TYPES, line, row, "parentObjectType"),
            "childObjectType": read.object_type(RELATION_TYPES, line, row, "childObjectType"),
            "cardinality": "many",
        }
        if type_number is not None:
            aliases[type_number] = alias
        out.add(type_line(represented), f"{RELATION_TYPES} line {line}")

    relations: list[tuple[int, int, dict[str, Any]]] = []
    for line, row in read.rows(RELATIONS):
        if len(problems) >= MAX_PROBLEMS:
            break
        relation_id = read.integer(RELATIONS, line, row, "id")
        parent, child = (read.integer(RELATIONS, line, row, column) for column in ("parentId", "childId"))
        type_number = read.integer(RELATIONS, line, row, "relType")
        for column, node in (("parentId", parent), ("childId", child)):
            if node is not None and node not in nodes:
                problems.append(
                    messages.UMBRACO_NO_NODE.format(file=RELATIONS, line=line, column=column, value=node)
                )
        if type_number is not None and type_number not in aliases:
            problems.append(messages.UMBRACO_NO_TYPE.format(file=RELATIONS, line=line, value=type_number))
        comment = row.get("comment")
        created = read.moment(RELATIONS, line, row, "datetime")
        if problems or relation_id is None or parent is None or child is None or type_number is None:
            continue
        represented = {
            "parentId": nodes[parent],
            "childId": nodes[child],
            "relationTypeAlias": aliases[type_number],
            "comment": "" if _null(comment) else comment,
        }
        if created is not None:
            represented["_createDate"] = created
        relations.append((relation_id, line, represented))
    if problems:
        raise UmbracoProblems(problems)
    relations.sort(key=lambda found: found[0])
    for _, line, represented in relations:
        out.add(relation_line(represented), f"{RELATIONS} line {line}")
    return out
