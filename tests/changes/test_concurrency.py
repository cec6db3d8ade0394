"""Many clients create, edit and delete while a consumer follows the feed with `wait`: at the end the
consumer has seen every acknowledged change exactly once and nothing else, in commit order (an
operation acknowledged before another began comes first; a list's versions only grow)."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.conftest import Project, guid

CLIENTS = 8
OPERATIONS = 20
LISTS = 3
CHANGES = "/relation/changes"


@dataclass
class Done:
    """An acknowledged operation: when it ran, and the events it must have produced."""

    started: float
    ended: float
    events: list[tuple[Any, ...]]


@dataclass
class World:
    project: Project
    lists: list[str] = field(default_factory=lambda: [guid() for _ in range(LISTS)])
    done: list[Done] = field(default_factory=list)


def signature(event: dict[str, Any]) -> tuple[Any, ...]:
    data = event["data"]
    if event["type"] == "list.reordered":
        return ("list.reordered", data["parentId"], data["etag"])
    if event["type"] == "relation.updated":
        return ("relation.updated", data["_id"], data["comment"])
    return (event["type"], data.get("_id"))


async def client_run(http: httpx.AsyncClient, world: World, seed: int) -> None:
    chance = random.Random(seed)
    headers = world.project.headers
    mine: list[int] = []
    for step in range(OPERATIONS):
        roll = chance.random()
        started = time.monotonic()
        events: list[tuple[Any, ...]] = []
        if roll < 0.35 or not mine:
            body = {"parentId": guid(), "childId": guid(), "relationTypeAlias": "umbDocument"}
            response = await http.post("/relation", json=body, headers=headers)
            assert response.status_code == 201, response.text
            mine.append(response.json()["_id"])
            events.append(("relation.created", mine[-1]))
        elif roll < 0.5:
            comment = f"client {seed} step {step}"
            response = await http.put(f"/relation/{mine[-1]}", json={"comment": comment}, headers=headers)
            assert response.status_code == 200, response.text
            events.append(("relation.updated", mine[-1], comment))
        elif roll < 0.6:
            gone = mine.pop(chance.randrange(len(mine)))
            response = await http.delete(f"/relation/{gone}", headers=headers)
            assert response.status_code == 200, response.text
            events.append(("relation.deleted", gone))
        elif roll < 0.65:
            # A duplicate is refused: it must leave no event.
            taken = (await http.get(f"/relation/{mine[-1]}", headers=headers)).json()
            body = {key: taken[key] for key in ("parentId", "childId", "relationTypeAlias")}
            response = await http.post("/relation", json=body, headers=headers)
            assert response.status_code == 422
        else:
            parent = chance.choice(world.lists)
            path = f"/relation/parent/{parent}/umbDocument?pageSize=1000"
            listed = (await http.get(path, headers=headers)).json()["_embedded"]["relations"]
            if listed and chance.random() < 0.5:
                # Move a member to the start (another client may have moved or removed it meanwhile).
                child = chance.choice(listed)["childId"]
                item = {"id": child, "position": {"start": True}}
                response = await http.patch(path, json={"connect": [item]}, headers=headers)
            else:
                child = guid()
                response = await http.patch(path, json={"connect": [child]}, headers=headers)
            assert response.status_code == 200, response.text
            body = response.json()
            changes = body["_changes"]
            if changes["added"]:
                events.append(("list.added", parent, child))
            if changes["moved"]:
                events.append(("list.reordered", parent, response.headers["ETag"]))
        world.done.append(Done(started, time.monotonic(), events))


async def consume(
    http: httpx.AsyncClient, world: World, cursor: str, writers: asyncio.Task[Any]
) -> list[Any]:
    seen: list[dict[str, Any]] = []
    while True:
        finished = writers.done()
        response = await http.get(
            CHANGES, params={"since": cursor, "wait": "1"}, headers=world.project.headers
        )
        assert response.status_code == 200, response.text
        page = response.json()
        seen += page["_embedded"]["changes"]
        cursor = page["cursor"]
        if finished and not page["_embedded"]["changes"]:
            return seen


async def test_a_follower_sees_every_acknowledged_change_once_in_commit_order(
    client: httpx.AsyncClient, project: Project
) -> None:
    world = World(project)
    cursor = (await client.get(CHANGES, params={"since": "now"}, headers=project.headers)).json()["cursor"]
    writers = asyncio.ensure_future(asyncio.gather(*(client_run(client, world, n) for n in range(CLIENTS))))
    seen = await consume(client, world, cursor, writers)
    await writers

    ids = [event["id"] for event in seen]
    assert len(ids) == len(set(ids)), "an event was delivered twice"
    place: dict[tuple[Any, ...], int] = {}
    for index, event in enumerate(seen):
        key = signature(event)
        assert key not in place, f"{key} twice"
        place[key] = index
    # List additions: the connected child's relation.created, one per acknowledged addition per list.
    added_per_list: dict[str, int] = {}
    for done in world.done:
        for expected in done.events:
            if expected[0] == "list.added":
                added_per_list[expected[1]] = added_per_list.get(expected[1], 0) + 1
    created_in_lists = {
        parent: sum(1 for e in seen if e["type"] == "relation.created" and e["data"]["parentId"] == parent)
        for parent in world.lists
    }
    added_children = {key[2] for done in world.done for key in done.events if key[0] == "list.added"}
    seen_children = {
        e["data"]["childId"]
        for e in seen
        if e["type"] == "relation.created" and e["data"]["parentId"] in world.lists
    }
    assert added_children == seen_children, "a list addition was lost"
    assert created_in_lists == {parent: added_per_list.get(parent, 0) for parent in world.lists}

    expected_keys = {key for done in world.done for key in done.events if key[0] != "list.added"}
    seen_keys = {
        key
        for key in place
        if not (key[0] == "relation.created" and seen[place[key]]["data"]["parentId"] in world.lists)
    }
    assert seen_keys == expected_keys, "the feed holds other events than the acknowledged ones"

    # Commit order: an operation acknowledged before another began comes first in the feed.
    timed = [(done, [place[key] for key in done.events if key in place]) for done in world.done]
    for earlier, earlier_places in timed:
        for later, later_places in timed:
            if earlier.ended < later.started and earlier_places and later_places:
                assert max(earlier_places) < min(later_places)
    # Each list's versions grow in feed order.
    for parent in world.lists:
        versions = [
            int(e["data"]["etag"].strip('"').split("-")[1], 16)
            for e in seen
            if e["type"] == "list.reordered" and e["data"]["parentId"] == parent
        ]
        assert versions == sorted(versions) and len(versions) == len(set(versions))
