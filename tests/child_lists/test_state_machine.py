"""Random sequences of every list edit against the service (real PostgreSQL, through the ASGI client) and
the plain-Python model (tests/child_lists/model.py): same order, members, comments, `_changes` and
error statuses after every step.

Hypothesis drives its state machine synchronously, so it runs in a worker thread and hands each request
to the test's event loop (where the app and its pool live)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Coroutine
from typing import Any, TypeVar

import httpx
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from service.db import Database
from tests.child_lists.helpers import JSON_API, call
from tests.child_lists.model import ChildList, Refused
from tests.conftest import Project, guid

T = TypeVar("T")
MANY = "umbDocument"
ONE = "onlyOne"
POOL_SIZE = 6


def run_state_machine(
    loop: asyncio.AbstractEventLoop, client: httpx.AsyncClient, project: Project, db: Database
) -> None:
    def wait(coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result()

    pool = st.integers(min_value=0, max_value=POOL_SIZE - 1)
    comment = st.one_of(st.none(), st.sampled_from(["", "a", "b"]))
    position = st.one_of(
        st.none(),
        st.just({"start": True}),
        st.just({"end": True}),
        st.tuples(st.sampled_from(["before", "after"]), pool),
    )
    connect_item = st.tuples(pool, position, comment, st.booleans())
    set_item = st.tuples(pool, comment, st.booleans())

    class ListMachine(RuleBasedStateMachine):
        @initialize()
        def start(self) -> None:
            self.parent = guid()
            self.pool = [guid() for _ in range(POOL_SIZE)]
            self.models = {MANY: ChildList(), ONE: ChildList(one=True)}

        def _item(self, index: int, where: Any, note: str | None, short: bool) -> Any:
            child = self.pool[index]
            if where is None and note is None and short:
                return child
            item: dict[str, Any] = {"id": child}
            if isinstance(where, tuple):
                item["position"] = {where[0]: self.pool[where[1]]}
            elif where is not None:
                item["position"] = where
            if note is not None:
                item["comment"] = note
            return item

        def _set_item(self, index: int, note: str | None, short: bool) -> Any:
            return self._item(index, None, note, short)

        def _send(
            self, alias: str, method: str, body: Any, content_type: str | None = None
        ) -> httpx.Response:
            return wait(
                call(client, project, method, self.parent, body, alias=alias, content_type=content_type)
            )

        def _expect(self, alias: str, response: httpx.Response, run: Any) -> None:
            model = self.models[alias]
            try:
                changes = run(model)
            except Refused as refused:
                assert response.status_code == refused.status, response.text
                return
            if response.status_code == 204:
                return
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["_changes"] == changes
            self._compare(alias, body)

        def _compare(self, alias: str, body: dict[str, Any]) -> None:
            model = self.models[alias]
            relations = body["_embedded"]["relations"]
            assert [r["childId"] for r in relations] == model.children
            assert {r["childId"]: r["comment"] for r in relations} == model.comments
            assert body["_totalItems"] == len(model.children)

        @rule(
            alias=st.sampled_from([MANY, ONE]),
            items=st.lists(connect_item, max_size=5),
            gone=st.lists(pool, max_size=3),
            strict=st.booleans(),
        )
        def connect(self, alias: str, items: list[Any], gone: list[int], strict: bool) -> None:
            raw = [self._item(*item) for item in items]
            dropped = [self.pool[n] for n in gone]
            body: dict[str, Any] = {"connect": raw, "disconnect": dropped}
            if not strict:
                body["options"] = {"strict": False}
            response = self._send(alias, "PATCH", body)
            self._expect(alias, response, lambda model: model.connect(raw, dropped, strict))

        @rule(
            alias=st.sampled_from([MANY, ONE]),
            items=st.lists(set_item, max_size=5),
            form=st.sampled_from(["PUT set", "PUT bare", "PATCH set", "PATCH bare"]),
        )
        def replace(self, alias: str, items: list[Any], form: str) -> None:
            raw = [self._set_item(*item) for item in items]
            method, shape = form.split()
            response = self._send(alias, method, {"set": raw} if shape == "set" else raw)
            self._expect(alias, response, lambda model: model.set(raw))

        @rule(
            alias=st.sampled_from([MANY, ONE]), items=st.lists(connect_item, max_size=4), bare=st.booleans()
        )
        def add(self, alias: str, items: list[Any], bare: bool) -> None:
            if bare:
                raw = [self.pool[item[0]] for item in items]
                response = self._send(alias, "POST", raw)
            else:
                raw = [self._item(*item) for item in items]
                response = self._send(alias, "POST", {"connect": raw})
            self._expect(alias, response, lambda model: model.add(raw))

        @rule(alias=st.sampled_from([MANY, ONE]), gone=st.lists(pool, max_size=4))
        def remove(self, alias: str, gone: list[int]) -> None:
            ids = [self.pool[n] for n in gone]
            response = self._send(alias, "DELETE", ids)
            self._expect(alias, response, lambda model: model.remove(ids))

        @rule(alias=st.sampled_from([MANY, ONE]))
        def clear(self, alias: str) -> None:
            response = self._send(alias, "DELETE", None)
            self._expect(alias, response, lambda model: model.clear())

        @rule(method=st.sampled_from(["PATCH", "POST", "DELETE"]), chosen=st.lists(pool, max_size=4))
        def json_api(self, method: str, chosen: list[int]) -> None:
            ids = [self.pool[n] for n in chosen]
            body = {"data": [{"type": "documents", "id": child} for child in ids]}
            response = self._send(MANY, method, body, JSON_API)
            run = {
                "PATCH": lambda m: m.set(ids),
                "POST": lambda m: m.add(ids),
                "DELETE": lambda m: m.remove(ids),
            }
            self._expect(MANY, response, run[method])

        @invariant()
        def stored_list_matches(self) -> None:
            if not hasattr(self, "parent"):
                return
            for alias in (MANY, ONE):
                response = wait(
                    client.get(f"/relation/parent/{self.parent}/{alias}", headers=project.headers)
                )
                assert response.status_code == 200, response.text
                self._compare(alias, response.json())
                positions = wait(
                    db.fetch(
                        "SELECT position FROM relation WHERE project = $1 AND parent = $2 AND type_alias = $3"
                        " ORDER BY position, id",
                        project.alias,
                        uuid.UUID(self.parent),
                        alias,
                    )
                )
                values = [row["position"] for row in positions]
                assert values == sorted(set(values)), "positions must be distinct"

    run_state_machine_as_test(
        ListMachine,
        settings=settings(
            max_examples=40,
            stateful_step_count=15,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )


async def test_service_matches_model(client: httpx.AsyncClient, project: Project, db: Database) -> None:
    created = await client.post(
        "/relation/type",
        json={"alias": ONE, "name": "Only one", "cardinality": "one"},
        headers=project.headers,
    )
    assert created.status_code == 201, created.text
    loop = asyncio.get_running_loop()
    await asyncio.to_thread(run_state_machine, loop, client, project, db)
