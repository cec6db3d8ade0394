"""GET /relation/changes as Server-Sent Events, against the service on a real socket (httpx's ASGI
transport buffers whole answers, so a stream needs one)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from service.settings import Settings
from tests.conftest import guid
from tests.live_server import LiveServer, live_server

CHANGES = "/relation/changes"
HEARTBEAT = 0.2


@pytest.fixture(scope="module")
def live(database_url: str) -> Iterator[LiveServer]:
    settings = Settings(database_url=database_url, key_cache_seconds=0, changes_heartbeat_seconds=HEARTBEAT)
    with live_server(settings) as server:
        yield server


@pytest.fixture
def headers(live: LiveServer) -> dict[str, str]:
    _, key = live.new_project("sse")
    return {"Api-Key": key}


async def create(http: httpx.AsyncClient, headers: dict[str, str]) -> Any:
    body = {"parentId": guid(), "childId": guid(), "relationTypeAlias": "umbDocument"}
    response = await http.post("/relation", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


class Stream:
    """The events and comment lines of one event stream, read as they arrive."""

    def __init__(self) -> None:
        self.events: list[dict[str, str]] = []
        self.comments: list[str] = []
        self.arrived = asyncio.Event()

    def take(self, block: str) -> None:
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if line.startswith(":"):
                self.comments.append(line)
            elif ": " in line:
                name, value = line.split(": ", 1)
                fields[name] = value
        if fields:
            self.events.append(fields)
        self.arrived.set()

    async def read(self, http: httpx.AsyncClient, headers: dict[str, str], params: dict[str, str]) -> None:
        headers = {**headers, "Accept": "text/event-stream"}
        async with http.stream("GET", CHANGES, headers=headers, params=params) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            buffer = ""
            async for chunk in response.aiter_text():
                buffer += chunk
                while "\n\n" in buffer:
                    block, buffer = buffer.split("\n\n", 1)
                    self.take(block)

    async def until(self, condition: Any) -> None:
        async with asyncio.timeout(10):
            while not condition():
                self.arrived.clear()
                await self.arrived.wait()

    def ids(self) -> list[int]:
        return [orjson.loads(event["data"])["data"]["_id"] for event in self.events]


async def now_cursor(http: httpx.AsyncClient, headers: dict[str, str]) -> str:
    cursor: str = (await http.get(CHANGES, params={"since": "now"}, headers=headers)).json()["cursor"]
    return cursor


async def test_events_stream_as_they_commit_and_resume_from_last_event_id(
    live: LiveServer, headers: dict[str, str]
) -> None:
    async with httpx.AsyncClient(base_url=live.base_url, timeout=20) as http:
        cursor = await now_cursor(http, headers)
        first, second = await create(http, headers), await create(http, headers)
        stream = Stream()
        reading = asyncio.create_task(stream.read(http, headers, {"since": cursor}))
        await stream.until(lambda: len(stream.events) >= 2)
        third = await create(http, headers)  # committed while the stream is open
        await stream.until(lambda: len(stream.events) >= 3)
        reading.cancel()
        assert stream.ids() == [first["_id"], second["_id"], third["_id"]]
        assert [event["event"] for event in stream.events] == ["relation.created"] * 3
        event = orjson.loads(stream.events[0]["data"])
        assert set(event) == {"id", "type", "occurredAt", "data"}

        # The id of each event is the cursor after it: resuming from the first gives the rest.
        page = await http.get(CHANGES, params={"since": stream.events[0]["id"]}, headers=headers)
        assert [change["data"]["_id"] for change in page.json()["_embedded"]["changes"]] == [
            second["_id"],
            third["_id"],
        ]
        resumed = Stream()
        resume_headers = {**headers, "Last-Event-ID": stream.events[0]["id"]}
        reading = asyncio.create_task(resumed.read(http, resume_headers, {"since": "now"}))
        await resumed.until(lambda: len(resumed.events) >= 2)
        fourth = await create(http, headers)
        await resumed.until(lambda: len(resumed.events) >= 3)
        reading.cancel()
        assert resumed.ids() == [second["_id"], third["_id"], fourth["_id"]]


async def test_a_quiet_stream_sends_a_comment_each_heartbeat(
    live: LiveServer, headers: dict[str, str]
) -> None:
    async with httpx.AsyncClient(base_url=live.base_url, timeout=20) as http:
        stream = Stream()
        reading = asyncio.create_task(stream.read(http, headers, {"since": "now"}))
        await stream.until(lambda: stream.comments.count(": keep-alive") >= 2)
        reading.cancel()
        assert stream.events == []


async def test_a_gone_or_bad_cursor_is_answered_before_the_stream(
    live: LiveServer, headers: dict[str, str]
) -> None:
    async with httpx.AsyncClient(base_url=live.base_url, timeout=20) as http:
        answer = await http.get(
            CHANGES, headers={**headers, "Accept": "text/event-stream", "Last-Event-ID": "garbage"}
        )
        assert answer.status_code == 400
        assert answer.json()["error"]["code"] == "BadRequest"
