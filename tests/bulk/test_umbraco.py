"""`relations import --umbraco DIR` (service/bulk/umbraco.py): Umbraco's three tables as CSV, in the
spellings SQL Server's and SQLite's tools write, mapped to the import's lines."""

from __future__ import annotations

from pathlib import Path

import httpx
import orjson
import pytest

from service.bulk.umbraco import UmbracoProblems, convert
from service.db import Database
from tests.bulk.helpers import export_of
from tests.test_cli import new_alias, relations

DOCUMENT = "C66BA18E-EAF3-4CFF-8A22-41B16D66A972"
MEDIA = "b796f64c-1f99-4ffb-b886-4bf4bc011a9c"
HOME, ABOUT, LOGO, NEWS = (
    "1d1f4e27-8c52-4a4e-9d0e-5a8a3c1e0001",
    "1d1f4e27-8c52-4a4e-9d0e-5a8a3c1e0002",
    "1d1f4e27-8c52-4a4e-9d0e-5a8a3c1e0003",
    "1d1f4e27-8c52-4a4e-9d0e-5a8a3c1e0004",
)
COPY_ID = "4cbeb612-e689-3563-b755-bf3ede295433"
RELATED_ID = "7e8a3a1c-7f1e-4a4a-9a55-2b0c4d6e0001"

NODES = f"""\ufeffid,uniqueId,parentId,level,path,sortOrder,trashed,nodeUser,text,nodeObjectType,createDate
1050,{{{HOME.upper()}}},-1,1,"-1,1050",0,0,-1,Home,{{{DOCUMENT}}},2024-05-01 10:00:00.000
1051,{ABOUT.upper()},1050,2,"-1,1050,1051",0,False,-1,"About, us",{DOCUMENT.lower()},2024-05-01 10:00:00.000
1060,{{{LOGO}}},-1,1,"-1,1060",0,True,NULL,Logo,{MEDIA},NULL
1052,{NEWS},1050,2,"-1,1050,1052",1,0,,News,{DOCUMENT},
"""
TYPES = f"""id,typeUniqueId,dual,parentObjectType,childObjectType,name,alias,isDependency
1,{{{COPY_ID.upper()}}},1,{{{DOCUMENT}}},{DOCUMENT.lower()},Relate Document On Copy,relateDocumentOnCopy,0
5,{RELATED_ID},False,NULL,,Related Things,relatedThings,True
"""
# ids out of file order: each list follows umbracoRelation.id
RELATIONS = """id,parentId,childId,relType,datetime,comment
12,1050,1052,5,2024-05-02 11:30:00.000,NULL
10,1050,1051,5,2024-05-01 10:00:00.000,first
11,1050,1060,5,2024-05-01 10:05:00,
3,1051,1052,1,NULL,"copied, with a comma"
"""


def write(folder: Path, *, relations_csv: str = RELATIONS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "umbracoNode.csv").write_text(NODES, encoding="utf-8")
    (folder / "umbracoRelationType.csv").write_text(TYPES, encoding="utf-8")
    (folder / "umbracoRelation.csv").write_text(relations_csv, encoding="utf-8")
    return folder


def test_convert_maps_every_spelling(tmp_path: Path) -> None:
    converted = convert(write(tmp_path))
    lines = [orjson.loads(line) for line in converted.lines]
    assert lines[0] == {
        "relationType": {
            "_id": COPY_ID,
            "alias": "relateDocumentOnCopy",
            "name": "Relate Document On Copy",
            "isBidirectional": True,
            "isDependency": False,
            "parentObjectType": "DOCUMENT",
            "childObjectType": "DOCUMENT",
            "cardinality": "many",
        }
    }
    assert lines[1]["relationType"] | {} == {
        "_id": RELATED_ID,
        "alias": "relatedThings",
        "name": "Related Things",
        "isBidirectional": False,
        "isDependency": True,
        "parentObjectType": "Unknown",
        "childObjectType": "Unknown",
        "cardinality": "many",
    }
    relations_ = [line["relation"] for line in lines[2:]]
    assert relations_ == [
        {
            "parentId": ABOUT,
            "childId": NEWS,
            "relationTypeAlias": "relateDocumentOnCopy",
            "comment": "copied, with a comma",
        },
        {
            "parentId": HOME,
            "childId": ABOUT,
            "relationTypeAlias": "relatedThings",
            "comment": "first",
            "_createDate": "2024-05-01T10:00:00Z",
        },
        {
            "parentId": HOME,
            "childId": LOGO,
            "relationTypeAlias": "relatedThings",
            "comment": "",
            "_createDate": "2024-05-01T10:05:00Z",
        },
        {
            "parentId": HOME,
            "childId": NEWS,
            "relationTypeAlias": "relatedThings",
            "comment": "",
            "_createDate": "2024-05-02T11:30:00Z",
        },
    ]
    assert converted.where("line 3") == "umbracoRelation.csv line 5"
    assert converted.where("line 1") == "umbracoRelationType.csv line 2"


def test_unmappable_rows_name_their_file_and_line(tmp_path: Path) -> None:
    broken = RELATIONS + "13,1050,999,5,2024-05-01 10:00:00.000,\n14,1050,1051,7,,\n15,x,1051,5,,\n"
    with pytest.raises(UmbracoProblems) as raised:
        convert(write(tmp_path, relations_csv=broken))
    assert raised.value.problems == [
        "umbracoRelation.csv line 6: childId 999 is not an id of umbracoNode.csv.",
        "umbracoRelation.csv line 7: relType 7 is not an id of umbracoRelationType.csv.",
        "umbracoRelation.csv line 8: parentId 'x' is not an integer.",
    ]
    (tmp_path / "umbracoRelation.csv").write_text("id,parentId,childId,relType,comment\n1,2,3,4,\n")
    with pytest.raises(UmbracoProblems) as columns:
        convert(tmp_path)
    assert columns.value.problems == ["umbracoRelation.csv: the header lacks the column(s) datetime."]
    (tmp_path / "umbracoNode.csv").unlink()
    with pytest.raises(UmbracoProblems) as missing:
        convert(tmp_path)
    assert len(missing.value.problems) == 1
    assert missing.value.problems[0].startswith("umbracoNode.csv: not found in ")


async def test_cli_imports_an_umbraco_site(
    database_url: str, client: httpx.AsyncClient, db: Database, tmp_path: Path
) -> None:
    target = new_alias()
    run = await relations(
        database_url, "import", "--project", target, "--umbraco", str(write(tmp_path / "site"))
    )
    assert run.code == 0, run.err
    assert orjson.loads(run.out) == {
        "relationTypes": {"created": 1, "updated": 0, "unchanged": 1},
        "relations": {"created": 4, "updated": 0, "unchanged": 0},
    }
    lines = await export_of(client, db, target)
    related = [
        line["relation"]["childId"] for line in lines if line.get("relation", {}).get("parentId") == HOME
    ]
    assert related == [ABOUT, LOGO, NEWS], "the list follows umbracoRelation.id"
    kind = next(
        line["relationType"] for line in lines if line.get("relationType", {}).get("alias") == "relatedThings"
    )
    assert kind["_id"] == RELATED_ID and kind["isDependency"] is True


async def test_cli_reports_unmappable_rows_and_stores_nothing(
    database_url: str, db: Database, tmp_path: Path
) -> None:
    target = new_alias()
    broken = RELATIONS + "13,1050,999,5,,\n"
    run = await relations(
        database_url, "import", "--project", target, "--umbraco", str(write(tmp_path, relations_csv=broken))
    )
    assert run.code == 1
    assert "umbracoRelation.csv line 6: childId 999 is not an id of umbracoNode.csv." in run.err
    too_long = RELATIONS + f"13,1050,1050,5,,{'x' * 1001}\n"
    run = await relations(
        database_url, "import", "--project", target, "--umbraco", str(write(tmp_path, relations_csv=too_long))
    )
    assert run.code == 1
    assert "umbracoRelation.csv line 6: relation.comment: Must be at most 1000 characters." in run.err
    count = await db.fetchval("SELECT count(*) FROM relation WHERE project = $1", target)
    assert count == 0
