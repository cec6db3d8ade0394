"""Starting and stopping the measured servers, each in its own process group."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Server:
    def __init__(self, name: str, command: list[str], env: dict[str, str], health: str, log: Path) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._command = [part.replace("{port}", str(self.port)) for part in command]
        self._env = {**os.environ, **env}
        self._health = health
        self._log_path = log
        self._log: IO[bytes] | None = None
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> Server:
        self._log = self._log_path.open("ab")
        self.process = subprocess.Popen(
            self._command,
            cwd=ROOT,
            env=self._env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.process.returncode}); see {self._log_path}")
            try:
                with urllib.request.urlopen(self.url + self._health, timeout=2) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(
            f"{self.name} did not answer {self._health} within {timeout} s; see {self._log_path}"
        )

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def rss_kb(self) -> int:
        """VmRSS of the worker (uvicorn with one worker serves in the process it was started as)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None
        if self._log:
            self._log.close()

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def service(database_url: str, log: Path, pool: int = 10) -> Server:
    """`relations serve`: 1 uvicorn worker, uvloop, httptools, no access log, log level warning."""
    env = {
        "DATABASE_URL": database_url,
        "RELATIONS_POOL_MIN": str(pool),
        "RELATIONS_POOL_MAX": str(pool),
        "RELATIONS_LOG_LEVEL": "warning",
        # uvicorn --no-access-log, as for the bare handler (the JSON access log costs ~8 % of a request)
        "RELATIONS_ACCESS_LOG": "0",
        # Webhooks on, as in production; the webhook benchmark's receiver listens on 127.0.0.1.
        "RELATIONS_SECRET_KEY": "bench-secret-key-of-at-least-32-bytes",
        "RELATIONS_WEBHOOK_ALLOW_PRIVATE": "true",
    }
    command = [
        sys.executable,
        "-m",
        "service.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
        "--workers",
        "1",
    ]
    return Server("service", command, env, "/health/ready", log)


def bare(dsn: str, host: str | None, project: str, log: Path) -> Server:
    """bench/bare_app.py under the same uvicorn settings."""
    env = {"BENCH_DSN": dsn, "BENCH_HOST": host or "", "BENCH_PROJECT": project}
    command = [
        sys.executable, "-m", "uvicorn", "bench.bare_app:app", "--host", "127.0.0.1", "--port", "{port}",
        "--workers", "1", "--loop", "uvloop", "--http", "httptools", "--no-access-log",
        "--log-level", "warning",
    ]  # fmt: skip
    return Server("bare", command, env, "/health", log)
