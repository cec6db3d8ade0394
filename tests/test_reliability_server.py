"""`relations serve` as a real process on a free port: graceful shutdown on SIGTERM (in-flight requests
finish, no new ones are accepted), several workers with shared metrics, and a clear refusal to start
without a database."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
from prometheus_client.parser import text_string_to_metric_families

from service.schema import connect
from tests.conftest import Project, guid, wait_until_blocked
from tests.processes import ROOT, free_port, running_service, stopped_cleanly


async def refuses_connections(port: int) -> bool:
    for _ in range(400):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except ConnectionRefusedError:
            return True
        writer.close()
        await writer.wait_closed()
        await asyncio.sleep(0.05)
    return False


async def test_sigterm_stops_accepting_and_finishes_the_request_in_flight(
    database_url: str, project: Project, tmp_path: Path, client: httpx.AsyncClient
) -> None:
    body = {"parentId": guid(), "childId": guid(), "relationTypeAlias": "relateDocumentOnCopy"}
    async with running_service(
        database_url, tmp_path, env={"RELATIONS_STATEMENT_TIMEOUT_MS": "60000"}
    ) as service:
        holder = await connect(database_url)
        try:
            await holder.execute("BEGIN; LOCK TABLE relation IN SHARE MODE")  # holds the INSERT back
            async with httpx.AsyncClient(base_url=service.base_url, timeout=60) as http:
                in_flight = asyncio.create_task(http.post("/relation", json=body, headers=project.headers))
                await wait_until_blocked(database_url)
                service.process.send_signal(signal.SIGTERM)
                assert await refuses_connections(service.port), service.output()
                assert service.process.poll() is None  # still finishing the request
                await holder.execute("COMMIT")
                answer = await in_flight
        finally:
            await holder.close()
        assert answer.status_code == 201, answer.text
        assert stopped_cleanly(service.process), service.output()
    stored = await client.get(f"/relation/{answer.json()['_id']}", headers=project.headers)
    assert stored.status_code == 200
    assert stored.json()["parentId"] == body["parentId"]


def metric_total(text: str, name: str, **labels: str) -> float:
    return sum(
        item.value
        for family in text_string_to_metric_families(text)
        for item in family.samples
        if item.name == name and all(item.labels.get(key) == value for key, value in labels.items())
    )


async def test_several_workers_share_one_port_and_their_metrics(database_url: str, tmp_path: Path) -> None:
    shared = tmp_path / "prometheus"
    shared.mkdir()
    async with running_service(
        database_url, tmp_path, "--workers", "2", env={"PROMETHEUS_MULTIPROC_DIR": str(shared)}
    ) as service:
        for _ in range(600):
            if len(service.children()) == 2:
                break
            await asyncio.sleep(0.05)
        assert len(service.children()) == 2, service.output()
        # New connections each time, so the kernel hands them to either worker.
        async with httpx.AsyncClient(limits=httpx.Limits(max_keepalive_connections=0)) as http:
            for _ in range(30):
                ready = await http.get(f"{service.base_url}/health/ready")
                assert ready.status_code == 200
            text = (await http.get(f"{service.base_url}/metrics")).text
        # Every worker's count, whichever answered the scrape.
        assert metric_total(text, "relations_http_requests_total", route="/health/ready") == 30
        service.process.send_signal(signal.SIGTERM)
        assert stopped_cleanly(service.process), service.output()


def test_serve_without_a_database_exits_with_a_clear_message(database_url: str, tmp_path: Path) -> None:
    parts = urlsplit(database_url)
    unreachable = urlunsplit(parts._replace(netloc=f"relations@127.0.0.1:{free_port()}", query=""))
    environment = {**os.environ, "DATABASE_URL": unreachable, "RELATIONS_STARTUP_WAIT_SECONDS": "0"}
    done = subprocess.run(
        [sys.executable, "-m", "service.cli", "serve", "--port", str(free_port())],
        env=environment,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "cannot start, the database is unreachable" in done.stderr
    assert "Traceback" not in done.stderr
