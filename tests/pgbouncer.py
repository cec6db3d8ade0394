"""`make test-pgbouncer`: Debian's pgbouncer in transaction pooling mode on a free loopback port in front
of TEST_DATABASE_URL's server (else the embedded one), and the API tests through it with
RELATIONS_PGBOUNCER=transaction. Skips, saying so, when pgbouncer is not installed.

    python -m tests.pgbouncer [pytest arguments]
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from tests.cluster import run_as
from tests.processes import free_port

ROOT = Path(__file__).resolve().parent.parent
# The API's tests: every route, idempotency, credentials, isolation, revision tokens (the suite's
# other files test the process, outages and tools, not what goes through the pooler).
SUITE = (
    "tests/test_relations.py",
    "tests/test_relation_types.py",
    "tests/child_lists",
    "tests/test_idempotency.py",
    "tests/test_auth.py",
    "tests/test_isolation.py",
    "tests/test_app.py",
    "tests/test_hostile_input.py",
    "tests/test_revisions.py",
    "tests/test_pooler.py",
    "tests/test_jsonapi.py",
    "tests/rate_limits/test_service.py",
    "tests/bulk/test_routes.py",
)


def server_url() -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return url
    from service import embedded

    return embedded.start(ROOT / ".data" / "test", database="postgres")


def configuration(server: str, folder: Path, port: int) -> str:
    """pgbouncer.ini for `server` (TCP or a socket folder given as `?host=`)."""
    parts = urlsplit(server)
    query = dict(parse_qsl(parts.query))
    host = query.get("host") or parts.hostname or "127.0.0.1"
    server_port = query.get("port") or str(parts.port or 5432)
    user = unquote(parts.username or "postgres")
    password = unquote(parts.password or "")
    (folder / "users.txt").write_text(f'"{user}" "{password}"\n')
    return "\n".join(
        (
            "[databases]",
            f"* = host={host} port={server_port}",
            "[pgbouncer]",
            "listen_addr = 127.0.0.1",
            f"listen_port = {port}",
            "unix_socket_dir =",
            "auth_type = trust",
            f"auth_file = {folder / 'users.txt'}",
            "pool_mode = transaction",
            "max_client_conn = 400",
            "default_pool_size = 30",
            f"logfile = {folder / 'pgbouncer.log'}",
            "",
        )
    )


def wait_for(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"pgbouncer exited:\n{log.read_text(errors='replace')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("pgbouncer did not listen within 15 s")


def binary() -> str | None:
    return shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin")


@contextmanager
def running(server: str) -> Iterator[str]:
    """pgbouncer (transaction pooling) on a free loopback port in front of `server`; yields the URL of
    `server`'s database through it. Also used by `make bench` (the pgbouncer rows)."""
    found = binary()
    if found is None:
        raise RuntimeError("pgbouncer is not installed (Debian: apt-get install pgbouncer)")
    folder = Path(tempfile.mkdtemp(prefix="relations-pgbouncer-"))
    port = free_port()
    options: dict[str, Any] = run_as(folder)  # pgbouncer refuses to run as root
    (folder / "pgbouncer.ini").write_text(configuration(server, folder, port))
    process = subprocess.Popen([found, "-q", str(folder / "pgbouncer.ini")], **options)
    try:
        wait_for(port, process, folder / "pgbouncer.log")
        parts = urlsplit(server)
        user = parts.username or "postgres"
        database = parts.path.strip("/") or "postgres"
        yield f"postgresql://{user}@127.0.0.1:{port}/{database}"
    finally:
        process.terminate()
        process.wait(timeout=15)
        shutil.rmtree(folder, ignore_errors=True)


def main(arguments: list[str]) -> int:
    if binary() is None:
        print("no pgbouncer here (Debian: apt-get install pgbouncer): skipping the pgbouncer run")
        return 0
    with running(server_url()) as through:
        print(f"pgbouncer (transaction pooling) at {urlsplit(through).netloc}", flush=True)
        env = {**os.environ, "TEST_DATABASE_URL": through, "RELATIONS_PGBOUNCER": "transaction"}
        return subprocess.call([sys.executable, "-m", "pytest", *SUITE, *arguments], cwd=ROOT, env=env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
