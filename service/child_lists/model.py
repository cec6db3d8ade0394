"""A child list's representation: a HAL page of relations (as `relations.model.represent` renders each
one), built for a whole page at once because an edit's answer carries up to a page of them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from service.db import Record
from service.hal import Links


def _timestamp(moment: Any) -> str:
    """`hal.iso`'s `2026-11-23T10:00:00Z`, without strftime's cost (a tenth of a page's rendering)."""
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
        f"T{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}Z"
    )


def represent_page(links: Links, rows: Sequence[Record]) -> list[dict[str, Any]]:
    if not rows:
        return []
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
                "_createDate": _timestamp(row["created_at"]),
                "_links": {
                    "self": {"href": f"{relation_prefix}{relation_id}"},
                    "relationType": type_link,
                },
            }
        )
    return items
