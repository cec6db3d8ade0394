"""service/cursors.py and the cursor links of every list route (SPEC §8): a walk by `next` sees each
list exactly as one big page does, `prev` walks back the same pages, the links are also a `Link`
header, and a cursor that is not this list's is 400."""

from __future__ import annotations

import asyncio
import random
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from service import messages
from service.cursors import Cursors, Position
from service.errors import BadRequest
from tests.conftest import MakeProject, Project, error_of, guid

ALIAS = "walk"


def test_a_cursor_reads_back_what_was_made() -> None:
    cursors = Cursors(b"s" * 32)
    position = Position(False, 7, ("umbMedia", -(1 << 63), 12))
    made = cursors.make("scope", position)
    assert re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", made)
    assert cursors.read("scope", made, (str, int, int)) == position


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: "garbage", messages.CURSOR_MALFORMED.format(name="cursor")),
        (lambda c: c[:-3], messages.CURSOR_MALFORMED.format(name="cursor")),
        (lambda c: c[: len(c) // 2], messages.CURSOR_MALFORMED.format(name="cursor")),
        (
            lambda c: "A" + c[1:] if c[0] != "A" else "B" + c[1:],
            messages.CURSOR_FOREIGN.format(name="cursor"),
        ),
        (lambda c: c.replace(".", ".A", 1)[:-1], messages.CURSOR_FOREIGN.format(name="cursor")),
        (lambda c: c + "é", messages.CURSOR_MALFORMED.format(name="cursor")),
        (lambda c: "!!.!!", messages.CURSOR_MALFORMED.format(name="cursor")),
        (lambda c: c * 40, messages.CURSOR_MALFORMED.format(name="cursor")),
    ],
)
def test_a_changed_cursor_is_refused(change: Any, message: str) -> None:
    cursors = Cursors(b"s" * 32)
    made = cursors.make("scope", Position(True, 2, (5,)))
    with pytest.raises(BadRequest) as refused:
        cursors.read("scope", change(made), (int,))
    assert refused.value.message == message


def test_a_cursor_is_bound_to_its_scope_key_and_shape() -> None:
    cursors = Cursors(b"s" * 32)
    made = cursors.make("scope", Position(True, 2, (5,)))
    for other, shape, reader in (
        ("other scope", (int,), cursors),
        ("scope", (int,), Cursors(b"t" * 32)),
    ):
        with pytest.raises(BadRequest) as refused:
            reader.read(other, made, shape)
        assert refused.value.message == messages.CURSOR_FOREIGN.format(name="cursor")
    # Signed content of another shape (a list whose keys changed form) is malformed, not trusted.
    with pytest.raises(BadRequest):
        cursors.read("scope", made, (str, int))


@dataclass
class Lists:
    project: Project
    parent: str
    child: str
    paths: dict[str, str]


async def post(client: httpx.AsyncClient, project: Project, parent: str, child: str, alias: str) -> None:
    body = {"parentId": parent, "childId": child, "relationTypeAlias": alias}
    response = await client.post("/relation", json=body, headers=project.headers)
    assert response.status_code == 201, response.text


@pytest.fixture
async def lists(client: httpx.AsyncClient, project: Project) -> Lists:
    """One parent and one child with lists of 5 to 12 items on every route."""
    kind = {"alias": ALIAS, "name": "Walk", "isBidirectional": True, "isDependency": True}
    assert (await client.post("/relation/type", json=kind, headers=project.headers)).status_code == 201
    parent, child = guid(), guid()
    for _ in range(5):
        await post(client, project, parent, guid(), ALIAS)
        await post(client, project, parent, guid(), "umbMedia")
        await post(client, project, guid(), child, ALIAS)
        await post(client, project, guid(), child, "relateParentDocumentOnDelete")
        await post(client, project, guid(), parent, ALIAS)  # the child side of `related`
    await post(client, project, parent, parent, ALIAS)  # a self-relation: once in `related`
    paths = {
        "type": f"/relation/{ALIAS}",
        "parent": f"/relation/parent/{parent}",
        "parent-of-type": f"/relation/parent/{parent}?relationType=umbMedia",
        "child": f"/relation/child/{child}",
        "child-of-type": f"/relation/child/{child}?relationType={ALIAS}",
        "child-dependency": f"/relation/child/{child}?dependency=true",
        "related": f"/relation/related/{parent}",
        "related-of-type": f"/relation/related/{parent}?relationType={ALIAS}",
        "types": "/relation/type",
        "child-list": f"/relation/parent/{parent}/{ALIAS}",
    }
    return Lists(project, parent, child, paths)


def keys(body: dict[str, Any]) -> list[Any]:
    return [item.get("_id", item.get("alias")) for item in next(iter(body["_embedded"].values()))]


async def get(client: httpx.AsyncClient, project: Project, href: str) -> dict[str, Any]:
    response = await client.get(href, headers=project.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    links = dict(re.findall(r'<([^>]+)>; rel="(\w+)"', response.headers["link"]))
    found = {rel: href for href, rel in links.items()}
    for rel in ("next", "prev"):
        assert found.get(rel) == body["_links"].get(rel, {}).get("href")
    assert found["first"].startswith("http://testserver/relation/")
    return body


def joined(path: str, query: str) -> str:
    return f"{path}{'&' if '?' in path else '?'}{query}"


EXPECTED_SIZES = {
    "type": 16,
    "parent": 11,
    "parent-of-type": 5,
    "child": 10,
    "child-of-type": 5,
    "child-dependency": 5,
    "related": 16,
    "related-of-type": 11,
    "types": 7,
    "child-list": 6,
}


@pytest.mark.parametrize("route", list(EXPECTED_SIZES))
async def test_next_walks_the_list_and_prev_walks_back(
    client: httpx.AsyncClient, lists: Lists, route: str
) -> None:
    path = lists.paths[route]
    whole = await get(client, lists.project, joined(path, "pageSize=1000"))
    assert whole["_totalItems"] == EXPECTED_SIZES[route] == len(keys(whole))
    pages = [await get(client, lists.project, joined(path, "pageSize=2"))]
    while "next" in pages[-1]["_links"]:
        pages.append(await get(client, lists.project, pages[-1]["_links"]["next"]["href"]))
    assert [key for page in pages for key in keys(page)] == keys(whole)
    assert [page["_page"] for page in pages] == list(range(1, len(pages) + 1))
    assert {page["_totalItems"] for page in pages} == {whole["_totalItems"]}
    assert {page["_totalPages"] for page in pages} == {len(pages)}
    assert "prev" not in pages[0]["_links"]
    back = [pages[-1]]
    while "prev" in back[-1]["_links"]:
        back.append(await get(client, lists.project, back[-1]["_links"]["prev"]["href"]))
    assert [keys(page) for page in reversed(back)] == [keys(page) for page in pages]
    assert [page["_page"] for page in reversed(back)] == list(range(1, len(pages) + 1))
    # ?page= agrees, and a page link's next is the cursor step after it
    third = await get(client, lists.project, joined(path, "page=3&pageSize=2"))
    assert keys(third) == keys(pages[2])
    if len(pages) > 3:
        assert keys(await get(client, lists.project, third["_links"]["next"]["href"])) == keys(pages[3])
    else:
        assert "next" not in third["_links"]


async def test_related_is_the_parent_side_then_the_child_side(
    client: httpx.AsyncClient, lists: Lists
) -> None:
    body = await get(client, lists.project, joined(lists.paths["related"], "pageSize=1000"))
    items = body["_embedded"]["relations"]
    sides = ["parent" if item["parentId"] == lists.parent else "child" for item in items]
    assert sides == ["parent"] * 11 + ["child"] * 5
    parent_side = [(item["relationTypeAlias"], item["_id"]) for item in items[:11]]
    assert [alias for alias, _ in parent_side] == sorted(alias for alias, _ in parent_side)
    child_ids = [item["_id"] for item in items[11:]]
    assert child_ids == sorted(child_ids)


async def test_the_cursor_and_page_agree_with_a_changed_page_size(
    client: httpx.AsyncClient, lists: Lists
) -> None:
    first = await get(client, lists.project, joined(lists.paths["parent"], "pageSize=2"))
    cursor = first["_links"]["next"]["href"].split("cursor=")[1].split("&")[0]
    response = await client.get(
        f"{lists.paths['parent']}?cursor={cursor}&pageSize=3", headers=lists.project.headers
    )
    assert response.status_code == 400
    assert error_of(response) == {
        "code": "BadRequest",
        "message": messages.CURSOR_FOREIGN.format(name="cursor"),
    }


async def test_bad_cursors_are_400_on_every_route(
    client: httpx.AsyncClient, lists: Lists, make_project: MakeProject
) -> None:
    other = await make_project()
    cursors: dict[str, str] = {}
    for route, path in lists.paths.items():
        first = await get(client, lists.project, joined(path, "pageSize=2"))
        cursors[route] = first["_links"]["next"]["href"].split("cursor=")[1].split("&")[0]
    # The same paths in another project (its type of the same alias included).
    kind = {"alias": ALIAS, "name": "Walk"}
    assert (await client.post("/relation/type", json=kind, headers=other.headers)).status_code == 201
    routes = list(lists.paths)
    for number, route in enumerate(routes):
        path = lists.paths[route]
        cursor = cursors[route]
        foreign = cursors[routes[(number + 1) % len(routes)]]
        cases = [
            (lists.project, "garbage", messages.CURSOR_MALFORMED.format(name="cursor")),
            (lists.project, "", messages.CURSOR_MALFORMED.format(name="cursor")),
            (lists.project, cursor[:-4], messages.CURSOR_MALFORMED.format(name="cursor")),
            (lists.project, cursor.split(".")[0], messages.CURSOR_MALFORMED.format(name="cursor")),
            (lists.project, foreign, messages.CURSOR_FOREIGN.format(name="cursor")),
            (other, cursor, messages.CURSOR_FOREIGN.format(name="cursor")),
        ]
        for owner, given, message in cases:
            response = await client.get(joined(path, f"cursor={given}&pageSize=2"), headers=owner.headers)
            assert response.status_code == 400, (route, given, response.text)
            assert error_of(response) == {"code": "BadRequest", "message": message}
        # another page size
        response = await client.get(
            joined(path, f"cursor={cursor}&pageSize=5"), headers=lists.project.headers
        )
        assert response.status_code == 400 and error_of(response)[
            "message"
        ] == messages.CURSOR_FOREIGN.format(name="cursor")


async def test_a_filter_is_part_of_the_list(client: httpx.AsyncClient, lists: Lists) -> None:
    first = await get(client, lists.project, joined(lists.paths["child"], "pageSize=2"))
    cursor = first["_links"]["next"]["href"].split("cursor=")[1].split("&")[0]
    response = await client.get(
        f"{lists.paths['child-dependency']}&cursor={cursor}&pageSize=2", headers=lists.project.headers
    )
    assert response.status_code == 400


async def test_a_cursor_past_a_deleted_tail_answers_an_empty_page(
    client: httpx.AsyncClient, lists: Lists
) -> None:
    path = lists.paths["child-list"]
    first = await get(client, lists.project, joined(path, "pageSize=4"))
    rest = await get(client, lists.project, first["_links"]["next"]["href"])
    for item in rest["_embedded"]["relations"]:
        deleted = await client.delete(f"/relation/{item['_id']}", headers=lists.project.headers)
        assert deleted.status_code == 200
    empty = await get(client, lists.project, first["_links"]["next"]["href"])
    assert empty["_embedded"]["relations"] == [] and empty["_totalItems"] == 4
    assert "next" not in empty["_links"] and "prev" not in empty["_links"]


async def test_an_edit_answers_with_cursor_links_of_the_list(client: httpx.AsyncClient, lists: Lists) -> None:
    path = lists.paths["child-list"]
    response = await client.patch(
        f"{path}?pageSize=2", json={"connect": [guid()]}, headers=lists.project.headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["_totalItems"] == 7 and "prev" not in body["_links"]
    assert 'rel="next"' in response.headers["link"]
    following = await get(client, lists.project, body["_links"]["next"]["href"])
    assert following["_page"] == 2 and len(following["_embedded"]["relations"]) == 2


async def walk(client: httpx.AsyncClient, project: Project, href: str, rel: str, during: Any) -> list[str]:
    """The child ids met following `rel` from `href`, running `during()` alongside every step."""
    seen: list[str] = []
    while href:
        body, _ = await asyncio.gather(get(client, project, href), during())
        items = body["_embedded"]["relations"]
        seen.extend(item["childId"] for item in (items if rel == "next" else reversed(items)))
        href = body["_links"].get(rel, {}).get("href")
    return seen


async def test_a_walk_under_concurrent_writes_never_repeats_nor_skips(
    client: httpx.AsyncClient, project: Project
) -> None:
    """500 children; while a client walks them 25 at a time, others insert at the start, delete and
    move. Every item there throughout (and never moved) is met exactly once, forward and back; new
    items at most once. Moved items may be met where they were and where they went (their key, the
    position, changed), so the list by type, ordered by id that a move leaves alone, is walked too."""
    parent = guid()
    initial = [guid() for _ in range(500)]
    path = f"/relation/parent/{parent}/umbDocument"
    assert (await client.put(path, json=initial, headers=project.headers)).status_code == 200
    rng = random.Random(12)
    volatile = rng.sample(initial, 150)
    deleted, moved, added = volatile[:75], volatile[75:], []
    stable = set(initial) - set(volatile)

    async def write() -> None:
        new = guid()
        added.append(new)
        connect = [{"id": new, "position": {"start": True}}]
        if moved:
            connect.append(
                {
                    "id": moved[len(added) % len(moved)],
                    "position": rng.choice([{"start": True}, {"end": True}]),
                }
            )
        response = await client.patch(path, json={"connect": connect}, headers=project.headers)
        assert response.status_code == 200, response.text
        if deleted:
            gone = deleted.pop()
            response = await client.patch(path, json={"disconnect": [gone]}, headers=project.headers)
            assert response.status_code == 200

    for rel in ("next", "prev"):
        start = f"{path}?pageSize=25"
        if rel == "prev":  # from the list's last page
            last = await get(client, project, start)
            while "next" in last["_links"]:
                last = await get(client, project, last["_links"]["next"]["href"])
            start = last["_links"]["self"]["href"]
        deleted[:] = volatile[:75] if rel == "next" else []
        seen = await walk(client, project, start, rel, write)
        counted = Counter(seen)
        assert stable <= set(seen), len(stable - set(seen))
        repeated = {child for child, times in counted.items() if times > 1}
        assert not repeated - set(moved), repeated
    # The list by type (oldest first): a move changes no key, so nothing at all repeats.
    by_type = await walk_type(client, project, write)
    assert len(by_type) == len(set(by_type))
    assert stable <= set(by_type)


async def walk_type(client: httpx.AsyncClient, project: Project, during: Any) -> list[str]:
    seen: list[str] = []
    href: str | None = "/relation/umbDocument?pageSize=25"
    while href:
        body, _ = await asyncio.gather(get(client, project, href), during())
        seen.extend(item["childId"] for item in body["_embedded"]["relations"])
        href = body["_links"].get("next", {}).get("href")
    return seen
