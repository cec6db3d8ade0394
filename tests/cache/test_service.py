"""The read cache through the API: what it answers, what drops it, and that every check still runs."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from service.cache import queries as cache_queries
from service.cache.follower import BULK_CHANGES, CATCH_UP_PAGES, PAGE, RECENT_DROPS, Follower
from service.cache.store import Store
from service.projects.service import create_key
from service.rate_limits.policy import RatePolicy
from service.schema import connect
from tests.cache.helpers import Worker, worker
from tests.conftest import MakeProject, Project, guid, new_project

LAG_MS = 50


@pytest.fixture
async def one(database_url: str) -> AsyncIterator[Worker]:
    async with worker(database_url, replica_max_lag_ms=LAG_MS) as found:
        yield found


async def create(
    http: httpx.AsyncClient, project: Project, parent: str, child: str | None = None
) -> dict[str, Any]:
    body = {"parentId": parent, "childId": child or guid(), "relationTypeAlias": "umbDocument"}
    response = await http.post("/relation", json=body, headers=project.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_a_second_read_is_answered_from_the_cache_as_the_first(one: Worker, project: Project) -> None:
    parent = guid()
    created = await create(one.http, project, parent)
    await one.settled(project.alias)
    paths = [
        f"/relation/{created['_id']}",
        f"/relation/parent/{parent}",
        f"/relation/parent/{parent}/umbDocument",
    ]
    for path in paths:
        first = await one.http.get(path, headers=project.headers)
        hits = one.cache.store.stats.hits
        second = await one.http.get(path, headers=project.headers)
        assert one.cache.store.stats.hits == hits + 1, path
        assert second.status_code == first.status_code == 200
        assert second.content == first.content
        assert second.headers.get("etag") == first.headers.get("etag")
        assert second.headers["content-type"] == first.headers["content-type"]


async def test_a_worker_sees_its_own_writes_at_once(one: Worker, project: Project) -> None:
    parent = guid()
    created = await create(one.http, project, parent)
    by_id = f"/relation/{created['_id']}"
    for path in (by_id, f"/relation/parent/{parent}", f"/relation/child/{created['childId']}"):
        await one.http.get(path, headers=project.headers)  # kept
    updated = await one.http.put(by_id, json={"comment": "after"}, headers=project.headers)
    assert updated.status_code == 200
    assert (await one.http.get(by_id, headers=project.headers)).json()["comment"] == "after"
    second = await create(one.http, project, parent)
    listed = (await one.http.get(f"/relation/parent/{parent}", headers=project.headers)).json()
    assert [item["_id"] for item in listed["_embedded"]["relations"]] == [created["_id"], second["_id"]]
    listing = f"/relation/parent/{parent}/umbDocument"
    before = (await one.http.get(listing, headers=project.headers)).json()
    assert before["_totalItems"] == 2
    moved = await one.http.put(listing, json=[second["childId"], created["childId"]], headers=project.headers)
    assert moved.status_code == 200
    after = (await one.http.get(listing, headers=project.headers)).json()
    assert [item["childId"] for item in after["_embedded"]["relations"]] == [
        second["childId"],
        created["childId"],
    ]
    assert (await one.http.delete(by_id, headers=project.headers)).status_code == 200
    assert (await one.http.get(by_id, headers=project.headers)).status_code == 404
    child_list = (await one.http.get(f"/relation/child/{created['childId']}", headers=project.headers)).json()
    assert child_list["_totalItems"] == 0


async def test_a_write_of_another_worker_is_seen_with_its_token_and_within_the_bound(
    database_url: str, project: Project
) -> None:
    async with (
        worker(database_url, replica_max_lag_ms=LAG_MS) as writer,
        worker(database_url, replica_max_lag_ms=LAG_MS) as reader,
    ):
        parent = guid()
        created = await create(writer.http, project, parent)
        by_id = f"/relation/{created['_id']}"
        for _ in range(100):  # until the create's drop has passed and an answer is kept
            assert (await reader.http.get(by_id, headers=project.headers)).json()["comment"] == ""
            if reader.cache.store.stats.hits:
                break
            await asyncio.sleep(0.01)
        assert reader.cache.store.stats.hits >= 1
        for round_ in range(5):
            written = await writer.http.put(by_id, json={"comment": f"v{round_}"}, headers=project.headers)
            token = written.headers["relations-revision"]
            seen = await reader.http.get(by_id, headers={**project.headers, "Relations-Min-Revision": token})
            assert seen.json()["comment"] == f"v{round_}"
        await writer.http.put(by_id, json={"comment": "last"}, headers=project.headers)
        await asyncio.sleep(LAG_MS / 1000)
        assert (await reader.http.get(by_id, headers=project.headers)).json()["comment"] == "last"


async def test_a_write_outside_the_service_drops_what_it_changed(one: Worker, project: Project) -> None:
    parent = guid()
    created = await create(one.http, project, parent)
    path = f"/relation/parent/{parent}"
    await one.http.get(path, headers=project.headers)
    await one.http.get(path, headers=project.headers)
    connection = await connect(one.app.state.settings.database_url)
    try:
        await connection.execute("UPDATE relation SET comment = 'by hand' WHERE id = $1", created["_id"])
        token = await connection.fetchval(
            "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::bigint"
        )
    finally:
        await connection.close()
    headers = {**project.headers, "Relations-Min-Revision": f"{token:X}"}
    assert (await one.http.get(path, headers=headers)).json()["_embedded"]["relations"][0][
        "comment"
    ] == "by hand"
    await asyncio.sleep(LAG_MS / 1000)
    assert (await one.http.get(path, headers=project.headers)).json()["_embedded"]["relations"][0][
        "comment"
    ] == ("by hand")


async def test_a_move_past_the_service_drops_both_lists(one: Worker, project: Project) -> None:
    """An UPDATE that moves a relation to another parent (a repair script) is logged as its delete and
    its create: the old parent's list and the new one's are both dropped."""
    old, new = guid(), guid()
    created = await create(one.http, project, old)
    await create(one.http, project, new)
    await one.settled(project.alias)
    paths = {parent: f"/relation/parent/{parent}" for parent in (old, new)}
    for path in [*paths.values()] * 2:
        await one.http.get(path, headers=project.headers)
    connection = await connect(one.app.state.settings.database_url)
    try:
        await connection.execute(
            "UPDATE relation SET parent = $2 WHERE id = $1", created["_id"], uuid.UUID(new)
        )
        token = await connection.fetchval(
            "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::bigint"
        )
    finally:
        await connection.close()
    headers = {**project.headers, "Relations-Min-Revision": f"{token:X}"}
    assert (await one.http.get(paths[old], headers=headers)).json()["_totalItems"] == 0
    assert (await one.http.get(paths[new], headers=headers)).json()["_totalItems"] == 2
    by_id = await one.http.get(f"/relation/{created['_id']}", headers=headers)
    assert by_id.json()["parentId"] == new


@pytest.mark.parametrize("polls_held", [True, False])
async def test_a_put_s_answer_is_kept_for_the_relation_s_get(
    one: Worker, project: Project, database_url: str, monkeypatch: pytest.MonkeyPatch, polls_held: bool
) -> None:
    """A comment change answers the relation as its GET does: the GET on that worker is a hit with the
    new comment, byte for byte what the handler answers, also once the poll has seen the change
    (before the answer was kept, or after: its polls held back meanwhile); a later change by another
    writer drops it."""
    created = await create(one.http, project, guid())
    path = f"/relation/{created['_id']}"
    await one.settled(project.alias)
    held = asyncio.Event()
    poll = cache_queries.poll

    async def held_back(*args: Any, **kwargs: Any) -> Any:
        await held.wait()
        return await poll(*args, **kwargs)

    if polls_held:
        monkeypatch.setattr(cache_queries, "poll", held_back)
    changed = await one.http.put(path, json={"comment": "kept"}, headers=project.headers)
    assert changed.status_code == 200
    held.set()
    await one.settled(project.alias)  # the poll has applied the PUT's own change
    hits = one.cache.store.stats.hits
    got = await one.http.get(path, headers=project.headers)
    assert one.cache.store.stats.hits == hits + 1
    assert got.json()["comment"] == "kept"
    async with worker(database_url, cache_bytes=0) as off:
        handled = await off.http.get(path, headers=project.headers)
    assert got.content == handled.content

    def comparable(response: httpx.Response) -> dict[str, str]:
        return {
            name: value for name, value in response.headers.items() if name not in ("x-request-id", "date")
        }

    assert comparable(got) == comparable(handled)
    connection = await connect(one.app.state.settings.database_url)
    try:
        await connection.execute("UPDATE relation SET comment = 'later' WHERE id = $1", created["_id"])
    finally:
        await connection.close()
    await one.settled(project.alias)
    assert (await one.http.get(path, headers=project.headers)).json()["comment"] == "later"


async def test_one_projects_entries_never_answer_another(one: Worker, make_project: MakeProject) -> None:
    first, second = await make_project(), await make_project()
    parent = guid()
    created = await create(one.http, first, parent)
    for _ in range(2):
        assert (await one.http.get(f"/relation/{created['_id']}", headers=first.headers)).status_code == 200
        assert (await one.http.get(f"/relation/parent/{parent}", headers=first.headers)).json()[
            "_totalItems"
        ] == 1
    assert (await one.http.get(f"/relation/{created['_id']}", headers=second.headers)).status_code == 404
    assert (await one.http.get(f"/relation/parent/{parent}", headers=second.headers)).json()[
        "_totalItems"
    ] == 0


async def test_a_cached_answer_still_passes_every_check(one: Worker, project: Project) -> None:
    created = await create(one.http, project, guid())
    path = f"/relation/{created['_id']}"
    assert (await one.http.get(path, headers=project.headers)).status_code == 200
    assert (await one.http.get(path, headers={"Api-Key": "not-a-key"})).status_code == 401
    writer_only = await project.key("relations:write")
    assert (await one.http.get(path, headers={"Api-Key": writer_only})).status_code == 403
    other = {**project.headers, "Umb-Project-Alias": "another-project"}
    assert (await one.http.get(path, headers=other)).status_code == 403
    limited = await create_key(
        project.db, project=project.alias, scopes=["relations:read"], rate_limit=RatePolicy(1, 1)
    )
    answers = [(await one.http.get(path, headers={"Api-Key": limited.key})).status_code for _ in range(3)]
    assert answers[0] == 200 and 429 in answers
    bad_token = {**project.headers, "Relations-Min-Revision": "not/a/token"}
    assert (await one.http.get(path, headers=bad_token)).status_code == 400


async def test_the_cache_empties_and_is_bypassed_while_the_listening_connection_is_down(
    one: Worker, project: Project
) -> None:
    parent = guid()
    created = await create(one.http, project, parent)
    await one.settled(project.alias)
    path = f"/relation/{created['_id']}"
    await one.http.get(path, headers=project.headers)
    assert len(one.cache.store) >= 1
    listener = one.app.state.changes_listener
    connection = await connect(one.app.state.settings.database_url)
    try:
        mine = await listener.fetchval("SELECT pg_backend_pid()")
        await connection.execute("SELECT pg_terminate_backend($1)", mine)
        for _ in range(500):
            if not one.cache.follower.ready:
                break
            await asyncio.sleep(0.01)
        assert not one.cache.follower.ready
        assert len(one.cache.store) == 0
        bypassed = one.cache.bypassed
        # While it is down a write elsewhere is still seen: every read goes to the database.
        await connection.execute("UPDATE relation SET comment = 'while down' WHERE id = $1", created["_id"])
        if not one.cache.follower.ready:
            assert (await one.http.get(path, headers=project.headers)).json()["comment"] == "while down"
            assert one.cache.bypassed > bypassed
    finally:
        await connection.close()
    await one.ready()
    hits = one.cache.store.stats.hits
    for _ in range(100):  # used again once it follows (a fill may meet the last drop first)
        assert (await one.http.get(path, headers=project.headers)).json()["comment"] == "while down"
        if one.cache.store.stats.hits > hits:
            break
        await asyncio.sleep(0.01)
    assert one.cache.store.stats.hits > hits


async def test_a_fill_is_kept_only_if_nothing_it_depends_on_was_dropped_meanwhile() -> None:
    class Quiet:
        def observe(self, callback: object) -> None:
            pass

    follower = Follower(Store(1 << 20), Quiet(), max_lag_ms=100)  # type: ignore[arg-type]
    mine = frozenset({("parent", "a")})
    assert follower.ticket() is None  # not following yet: nothing read now is kept
    follower.ready = True
    ticket = follower.ticket()
    assert follower.current("p", mine, ticket)
    follower.drop_project("q")  # another project
    follower.drop("p", frozenset({("parent", "b"), ("id", 3)}))  # other tags of this one
    assert follower.current("p", mine, ticket)
    follower.drop("p", frozenset({("parent", "a"), ("id", 4)}))
    assert not follower.current("p", mine, ticket)
    assert follower.current("p", frozenset({("id", 5)}), ticket)
    follower.drop_project("p")  # the project whole
    assert not follower.current("p", frozenset({("id", 5)}), ticket)
    later = follower.ticket()
    assert follower.current("p", mine, later)
    follower.drop("p", mine, xid=42)  # a transaction's own change does not stop its answer …
    assert follower.current("p", mine, later, xid=42)
    follower.drop("p", mine, xid=43)  # … another one's does
    assert not follower.current("p", mine, later, xid=42)


async def test_a_bulk_write_drops_its_project_whole(own_database: str) -> None:
    """A poll that meets BULK_CHANGES changes of one project drops that project's entries once, whole:
    an entry none of the changes touched is gone too; another project's stays, and so does the
    project's after a smaller write. Far more changes empty the cache and skip them. (In a database
    of its own: the shared one's change log would keep its ten thousand events.)"""
    async with worker(own_database, replica_max_lag_ms=LAG_MS) as one:
        project, other = [await new_project(one.app.state.db, alias) for alias in ("bulk", "bystander")]
        mine = f"/relation/{(await create(one.http, project, guid()))['_id']}"
        theirs = f"/relation/{(await create(one.http, other, guid()))['_id']}"
        await one.settled(project.alias)

        async def hit(path: str, headers: dict[str, str]) -> bool:
            hits = one.cache.store.stats.hits
            assert (await one.http.get(path, headers=headers)).status_code == 200
            return one.cache.store.stats.hits > hits

        async def write(count: int) -> None:
            connection = await connect(own_database)
            try:
                await connection.execute(
                    "INSERT INTO relation (project, type_alias, parent, child, position)"
                    " SELECT $1, 'umbDocument', gen_random_uuid(), gen_random_uuid(), 1"
                    " FROM generate_series(1, $2)",
                    project.alias,
                    count,
                )
            finally:
                await connection.close()
            await one.settled(project.alias)

        for path, headers in ((mine, project.headers), (theirs, other.headers)):
            await hit(path, headers)  # filled
            assert await hit(path, headers)
        await write(BULK_CHANGES - 1)
        assert await hit(mine, project.headers)  # a smaller write drops only what it touched
        await write(BULK_CHANGES)
        assert not await hit(mine, project.headers)
        assert await hit(theirs, other.headers)
        # So many changes that the poll would page through CATCH_UP_PAGES pages: the cache empties
        # (the other project's entry too) and follows again from the end of the log, at once.
        assert await hit(mine, project.headers)
        await write(CATCH_UP_PAGES * PAGE + 1)
        await one.ready()
        assert not await hit(theirs, other.headers)
        assert await hit(theirs, other.headers)


def test_a_fill_older_than_the_drops_remembered_is_not_kept() -> None:
    class Quiet:
        def observe(self, callback: object) -> None:
            pass

    follower = Follower(Store(1 << 20), Quiet(), max_lag_ms=100)  # type: ignore[arg-type]
    follower.ready = True
    ticket = follower.ticket()
    for number in range(RECENT_DROPS):
        follower.drop("q", frozenset({("id", number)}))
    assert follower.current("p", frozenset({("id", 1)}), ticket)  # each of them still known
    follower.drop("q", frozenset({("id", -1)}))
    assert not follower.current("p", frozenset({("id", 1)}), ticket)  # one was forgotten


async def test_the_metrics_show_hits_misses_bytes_and_lag(one: Worker, project: Project) -> None:
    created = await create(one.http, project, guid())
    await one.settled(project.alias)
    for _ in range(3):
        await one.http.get(f"/relation/{created['_id']}", headers=project.headers)
    text = (await one.http.get("/metrics")).text
    values = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line.startswith("relations_cache") and " " in line
    }
    assert values['relations_cache_reads_total{outcome="hit"}'] >= 2
    assert values['relations_cache_reads_total{outcome="miss"}'] >= 1
    assert values["relations_cache_bytes"] > 0
    assert 0 <= values["relations_cache_lag_seconds"] < 60
    assert "relations_cache_evictions_total" in values


async def test_off_with_zero_bytes(database_url: str, project: Project) -> None:
    async with worker(database_url, cache_bytes=0) as off:
        created = await create(off.http, project, guid())
        for _ in range(2):
            assert (
                await off.http.get(f"/relation/{created['_id']}", headers=project.headers)
            ).status_code == 200
        assert off.cache.store.stats.hits == 0 and len(off.cache.store) == 0


def test_tags_of_a_relation_change() -> None:
    from service.cache import tags

    parent, child = uuid.uuid4(), uuid.uuid4()
    row = {"kind": "relation.deleted", "relation_id": 7, "type_alias": "a", "parent": parent, "child": child}
    assert tags.touched(row) == {("id", 7), ("parent", parent), ("child", child), ("type", "a")}
    moved = {
        "kind": "list.reordered",
        "relation_id": None,
        "type_alias": "a",
        "parent": parent,
        "child": None,
    }
    assert tags.touched(moved) == {("parent", parent), ("type", "a")}
    assert tags.touched({**row, "kind": "relationType.updated"}) is None


async def test_a_write_that_names_its_tags_drops_just_those_before_it_answers(
    one: Worker, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the cache's polls held back, a comment change is still seen at once on its worker (its
    handler named the tags it touched), and an entry it did not touch is still answered."""
    first, other = await create(one.http, project, guid()), await create(one.http, project, guid())
    paths = [f"/relation/{first['_id']}", f"/relation/{other['_id']}"]
    await one.settled(project.alias)
    for path in paths * 2:
        assert (await one.http.get(path, headers=project.headers)).status_code == 200
    held = asyncio.Event()
    poll = cache_queries.poll

    async def held_back(*args: Any, **kwargs: Any) -> Any:
        await held.wait()
        return await poll(*args, **kwargs)

    monkeypatch.setattr(cache_queries, "poll", held_back)
    try:
        changed = await one.http.put(paths[0], json={"comment": "now"}, headers=project.headers)
        assert changed.status_code == 200
        assert (await one.http.get(paths[0], headers=project.headers)).json()["comment"] == "now"
        hits = one.cache.store.stats.hits
        assert (await one.http.get(paths[1], headers=project.headers)).status_code == 200
        assert one.cache.store.stats.hits == hits + 1
    finally:
        held.set()


@pytest.fixture
async def slow_bound(database_url: str) -> AsyncIterator[Worker]:
    """A lag bound of 10 s: a heartbeat and a floor between polls of 1 s."""
    async with worker(database_url, replica_max_lag_ms=10_000) as found:
        yield found


def counted_polls(monkeypatch: pytest.MonkeyPatch, of: Worker) -> list[float]:
    """The times of the polls of `of`'s cache from now on (not of other workers', the shared app's)."""
    sent: list[float] = []
    poll = cache_queries.poll
    listener = of.app.state.changes_listener

    async def counted(db: Any, *args: Any, **kwargs: Any) -> Any:
        if db is listener:
            sent.append(asyncio.get_running_loop().time())
        return await poll(db, *args, **kwargs)

    monkeypatch.setattr(cache_queries, "poll", counted)
    return sent


async def test_commits_in_a_burst_wake_a_poll_at_most_once_per_floor(
    slow_bound: Worker, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each commit wakes the cache's poll, but polls begin at least `floor` apart (else under many
    writers they run back to back); a comment change does not wait for one (its handler names its tags)."""
    created = await create(slow_bound.http, project, guid())
    path = f"/relation/{created['_id']}"
    await slow_bound.settled(project.alias)
    assert slow_bound.cache.follower.floor == 1.0
    sent = counted_polls(monkeypatch, slow_bound)
    loop = asyncio.get_running_loop()
    began = loop.time()
    for n in range(20):
        changed = await slow_bound.http.put(path, json={"comment": f"c{n}"}, headers=project.headers)
        assert changed.status_code == 200
        assert (await slow_bound.http.get(path, headers=project.headers)).json()["comment"] == f"c{n}"
    elapsed = loop.time() - began
    assert len(sent) <= int(elapsed / slow_bound.cache.follower.floor) + 1, (len(sent), elapsed)
    assert all(later - earlier >= 0.99 for earlier, later in itertools.pairwise(sent))


async def test_a_write_that_waits_for_a_poll_does_not_wait_for_the_floor(
    slow_bound: Worker, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A list edit names no tags: it answers once a poll that began after its commit has completed.
    That poll begins at once, not after the floor (1 s here, past the write's 0.5 s wait, after which
    the project's entries would be dropped instead)."""
    parent = guid()
    await create(slow_bound.http, project, parent)
    await slow_bound.settled(project.alias)
    sent = counted_polls(monkeypatch, slow_bound)
    dropped: list[str] = []
    follower = slow_bound.cache.follower
    drop_project = follower.drop_project

    def recorded(alias: str) -> None:
        dropped.append(alias)
        drop_project(alias)

    monkeypatch.setattr(follower, "drop_project", recorded)
    path = f"/relation/parent/{parent}/umbDocument"
    edited = await slow_bound.http.patch(path, json={"connect": [guid()]}, headers=project.headers)
    assert edited.status_code == 200, edited.text
    assert len(sent) >= 1  # a poll ran for it …
    assert project.alias not in dropped  # … and released it before its wait ran out
