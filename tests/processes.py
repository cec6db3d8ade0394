"""`relations serve` as a real process on a free loopback port, for the tests that need a socket."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@dataclass
class Service:
    process: subprocess.Popen[bytes]
    port: int
    base_url: str
    verify: Any
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def children(self) -> list[str]:
        """Command lines of the process's worker children (uvicorn spawns them with multiprocessing)."""
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        found = []
        for pid in path.read_text().split():
            try:
                found.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode())
            except FileNotFoundError:
                continue
        return [line for line in found if "spawn_main" in line]


def spawn(command: list[str], environment: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as sink:
        return subprocess.Popen(command, env=environment, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT)


def stopped_cleanly(process: subprocess.Popen[bytes]) -> bool:
    """uvicorn exits 0, or re-raises the SIGTERM it handled once it has shut down (supervisors such as
    systemd count that as a clean stop)."""
    return process.wait(timeout=30) in (0, -signal.SIGTERM)


@asynccontextmanager
async def running_service(
    database_url: str,
    folder: Path,
    *args: str,
    env: dict[str, str] | None = None,
    scheme: str = "http",
    verify: Any = True,
) -> AsyncIterator[Service]:
    """`relations serve` on a free loopback port, until it answers /health/live; SIGTERM at the end."""
    port = free_port()
    log = folder / f"serve-{port}.log"
    environment = {**os.environ, "DATABASE_URL": database_url, "RELATIONS_ACCESS_LOG": "false", **(env or {})}
    command = [
        sys.executable,
        "-m",
        "service.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *args,
    ]
    process = spawn(command, environment, log)
    service = Service(process, port, f"{scheme}://127.0.0.1:{port}", verify, log)
    try:
        async with httpx.AsyncClient(verify=verify) as http:
            for _ in range(600):
                if process.poll() is not None:
                    raise AssertionError(f"relations serve exited: {service.output()}")
                try:
                    if (await http.get(f"{service.base_url}/health/live")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
            else:
                raise AssertionError(f"relations serve did not start: {service.output()}")
        yield service
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
