"""The counters of schema.sql (SPEC §8): random sequences of every kind of write — creates, deletes by id,
parent, child and type (forced), list edits, type flag changes, bulk statements like an import's, and an
UPDATE of a relation's keys — keep every list's `_totalItems` equal to a count of its rows, after every
step. The service is reached through the ASGI client; the counts come straight from `relation`.

Hypothesis drives its state machine synchronously, so it runs in a worker thread and hands each request
to the test's event loop (where the app and its pool live)."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Coroutine
from typing import Any, TypeVar

import httpx
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from service import revisions
from service.db import Database
from service.relations.queries import POSITION_GAP
from tests.conftest import Project, guid

T = TypeVar("T")
POOL_SIZE = 3
FIXED_TYPES = ("umbDocument", "relateDocumentOnCopy")
_numbers = itertools.count()

TRUTH = """
SELECT
  (SELECT count(*) FROM relation WHERE project = $1 AND parent = $2) AS parent,
  (SELECT count(*) FROM relation WHERE project = $1 AND child = $2) AS child,
  (SELECT count(*) FROM relation AS r
   JOIN relation_type AS t ON t.project = r.project AND t.alias = r.type_alias
   WHERE r.project = $1 AND r.child = $2 AND t.is_dependency) AS dependency,
  (SELECT count(*) FROM relation AS r
   JOIN relation_type AS t ON t.project = r.project AND t.alias = r.type_alias
   WHERE r.project = $1 AND (r.parent = $2 OR (r.child = $2 AND t.is_bidirectional))) AS related"""
OF_TYPE = """
SELECT (SELECT count(*) FROM relation WHERE project = $1 AND parent = $2 AND type_alias = $3) AS parent,
       (SELECT count(*) FROM relation WHERE project = $1 AND child = $2 AND type_alias = $3) AS child,
       (SELECT count(*) FROM relation AS r
        JOIN relation_type AS t ON t.project = r.project AND t.alias = r.type_alias
        WHERE r.project = $1 AND r.type_alias = $3
          AND (r.parent = $2 OR (r.child = $2 AND t.is_bidirectional))) AS related"""


def run_state_machine(
    loop: asyncio.AbstractEventLoop, client: httpx.AsyncClient, project: Project, db: Database
) -> None:
    def wait(coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result()

    pool = st.integers(min_value=0, max_value=POOL_SIZE - 1)
    kind = st.integers(min_value=0, max_value=len(FIXED_TYPES))  # the last: this run's own type

    # Some rules write past the API (as an import or a repair script would): a reader sees them at
    # once with a token taken after them (SPEC §12; without one, a worker's read cache may answer up to
    # RELATIONS_REPLICA_MAX_LAG_MS behind).
    seen = {"revision": ""}

    def total(path: str) -> int:
        sep = "&" if "?" in path else "?"
        headers = {**project.headers, revisions.MIN_HEADER: seen["revision"]}
        response = wait(client.get(f"{path}{sep}pageSize=1", headers=headers))
        assert response.status_code == 200, (path, response.text)
        value: int = response.json()["_totalItems"]
        return value

    class CounterMachine(RuleBasedStateMachine):
        @initialize(bidirectional=st.booleans(), dependency=st.booleans())
        def start(self, bidirectional: bool, dependency: bool) -> None:
            self.pool = [guid() for _ in range(POOL_SIZE)]
            self.own = f"counted{next(_numbers)}"
            self.own_exists = False
            self.create_type(bidirectional, dependency)

        def alias(self, index: int) -> str:
            return FIXED_TYPES[index] if index < len(FIXED_TYPES) else self.own

        def send(self, method: str, path: str, body: Any = None) -> httpx.Response:
            response = wait(client.request(method, path, json=body, headers=project.headers))
            assert response.status_code < 500, response.text
            return response

        @rule(bidirectional=st.booleans(), dependency=st.booleans())
        def create_type(self, bidirectional: bool, dependency: bool) -> None:
            if self.own_exists:
                return
            body = {
                "alias": self.own,
                "name": self.own,
                "isBidirectional": bidirectional,
                "isDependency": dependency,
            }
            assert self.send("POST", "/relation/type", body).status_code == 201
            self.own_exists = True

        @rule(bidirectional=st.booleans(), dependency=st.booleans())
        def change_flags(self, bidirectional: bool, dependency: bool) -> None:
            body = {"isBidirectional": bidirectional, "isDependency": dependency}
            self.send("PUT", f"/relation/type/{self.own}", body)

        @rule()
        def delete_type(self) -> None:
            self.send("DELETE", f"/relation/type/{self.own}?force=true")
            self.own_exists = False

        @rule(parent=pool, child=pool, index=kind)
        def create(self, parent: int, child: int, index: int) -> None:
            body = {
                "parentId": self.pool[parent],
                "childId": self.pool[child],
                "relationTypeAlias": self.alias(index),
            }
            self.send("POST", "/relation", body)

        @rule(nth=st.integers(min_value=0, max_value=20))
        def delete_one(self, nth: int) -> None:
            ids = wait(
                db.fetch(
                    "SELECT id FROM relation WHERE project = $1 AND (parent = ANY($2) OR child = ANY($2)) "
                    "ORDER BY id",
                    project.alias,
                    [uuid.UUID(g) for g in self.pool],
                )
            )
            if ids:
                self.send("DELETE", f"/relation/{ids[nth % len(ids)]['id']}")

        @rule(which=pool, side=st.sampled_from(["parent", "child"]))
        def delete_entity(self, which: int, side: str) -> None:
            self.send("DELETE", f"/relation/{side}/{self.pool[which]}")

        @rule(
            parent=pool,
            index=kind,
            connect=st.lists(pool, max_size=3),
            disconnect=st.lists(pool, max_size=2),
            start=st.booleans(),
        )
        def edit(
            self, parent: int, index: int, connect: list[int], disconnect: list[int], start: bool
        ) -> None:
            position = {"start": True} if start else {"end": True}
            body = {
                "connect": [{"id": self.pool[n], "position": position} for n in connect],
                "disconnect": [self.pool[n] for n in disconnect],
            }
            self.send("PATCH", f"/relation/parent/{self.pool[parent]}/{self.alias(index)}", body)

        @rule(parent=pool, index=kind, children=st.lists(pool, max_size=3))
        def replace(self, parent: int, index: int, children: list[int]) -> None:
            body = [self.pool[n] for n in children]
            self.send("PUT", f"/relation/parent/{self.pool[parent]}/{self.alias(index)}", body)

        @rule(parent=pool, index=kind, count=st.integers(min_value=2, max_value=6))
        def bulk_insert(self, parent: int, index: int, count: int) -> None:
            """Several rows in one plain INSERT … SELECT, as an import writes them (children from the
            pool and fresh ones; the pool's own may be there already)."""
            if index == len(FIXED_TYPES) and not self.own_exists:
                return
            wait(
                db.execute(
                    f"""INSERT INTO relation (project, type_alias, parent, child, position)
                    SELECT $1, $2, $3, CASE WHEN g <= $5 THEN ($4::uuid[])[g] ELSE gen_random_uuid() END,
                           (1000 + g) * {POSITION_GAP}
                    FROM generate_series(1, $6) AS g ON CONFLICT DO NOTHING""",
                    project.alias,
                    self.alias(index),
                    uuid.UUID(self.pool[parent]),
                    [uuid.UUID(g) for g in self.pool],
                    POOL_SIZE,
                    count,
                )
            )

        @rule(old=pool, new=pool)
        def move_keys(self, old: int, new: int) -> None:
            """An UPDATE of relations' parents (no route does it; a repair script might)."""
            try:
                wait(
                    db.execute(
                        "UPDATE relation SET parent = $3 WHERE project = $1 AND parent = $2",
                        project.alias,
                        uuid.UUID(self.pool[old]),
                        uuid.UUID(self.pool[new]),
                    )
                )
            except Exception as error:  # the same edge already under the new parent
                assert "relation_unique_edge" in str(error), error

        @invariant()
        def totals_are_counts(self) -> None:
            seen["revision"] = revisions.render(wait(db.revision()))
            types = wait(db.fetch("SELECT alias FROM relation_type WHERE project = $1", project.alias))
            assert total("/relation/type") == len(types)
            for alias in {self.alias(n) for n in range(len(FIXED_TYPES) + self.own_exists)}:
                counted = wait(
                    db.fetchval(
                        "SELECT count(*) FROM relation WHERE project = $1 AND type_alias = $2",
                        project.alias,
                        alias,
                    )
                )
                assert total(f"/relation/{alias}") == counted, alias
            for entity in self.pool:
                truth = wait(db.fetchrow(TRUTH, project.alias, uuid.UUID(entity)))
                assert total(f"/relation/parent/{entity}") == truth["parent"]
                assert total(f"/relation/child/{entity}") == truth["child"]
                assert total(f"/relation/child/{entity}?dependency=true") == truth["dependency"]
                assert total(f"/relation/related/{entity}") == truth["related"]
                for alias in (*FIXED_TYPES, self.own):
                    truth = wait(db.fetchrow(OF_TYPE, project.alias, uuid.UUID(entity), alias))
                    assert total(f"/relation/parent/{entity}?relationType={alias}") == truth["parent"]
                    assert total(f"/relation/child/{entity}?relationType={alias}") == truth["child"]
                    assert total(f"/relation/related/{entity}?relationType={alias}") == truth["related"]
                    if alias != self.own or self.own_exists:
                        assert total(f"/relation/parent/{entity}/{alias}") == truth["parent"]

    run_state_machine_as_test(
        CounterMachine,
        settings=settings(
            max_examples=12,
            stateful_step_count=10,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )


async def test_every_total_is_a_count_of_the_rows(
    client: httpx.AsyncClient, project: Project, db: Database
) -> None:
    loop = asyncio.get_running_loop()
    await asyncio.to_thread(run_state_machine, loop, client, project, db)


async def test_truncate_empties_the_counters(
    db: Database, project: Project, client: httpx.AsyncClient
) -> None:
    """TRUNCATE fires no row or statement DELETE trigger: its own trigger empties every counter."""
    parent = guid()
    body = {"parentId": parent, "childId": guid(), "relationTypeAlias": "umbMedia"}
    assert (await client.post("/relation", json=body, headers=project.headers)).status_code == 201
    with pytest.raises(RolledBack):
        async with db.transaction():
            await db.execute("TRUNCATE relation")
            assert await db.fetchval("SELECT coalesce(sum(size), 0) FROM child_list") == 0
            assert await db.fetchval("SELECT count(*) FROM type_count") == 0
            assert await db.fetchval("SELECT count(*) FROM child_count") == 0
            raise RolledBack  # the session's other tests keep their rows
    assert await db.fetchval("SELECT size FROM child_list WHERE parent = $1", uuid.UUID(parent)) == 1


class RolledBack(Exception):
    pass
