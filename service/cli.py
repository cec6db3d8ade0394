"""The `relations` command: serve, webhooks, migrate, keys, projects, export, import."""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import logging
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import orjson

from service.bulk import service as bulk
from service.bulk.progress import Reporter
from service.bulk.umbraco import UmbracoProblems
from service.bulk.umbraco import convert as convert_umbraco
from service.db import Database
from service.errors import ApiError, ValidationFailed
from service.projects import queries as project_queries
from service.projects.service import SCOPES, create_key, create_project, valid_project_alias
from service.rate_limits.policy import InvalidPolicy, parse_policy
from service.schema import DatabaseUnreachable, migrate, when_reachable
from service.settings import InvalidSetting, Settings

DEV_PROJECT = "default"


def database_url(settings: Settings) -> str:
    """DATABASE_URL, or the embedded server under the data folder (started on demand)."""
    if settings.database_url:
        return settings.database_url
    from service import embedded

    url = embedded.start(settings.data_dir)
    os.environ["DATABASE_URL"] = url
    return url


async def with_db(url: str, work: Callable[[Database], Awaitable[Any]]) -> Any:
    await migrate(url)
    db = Database(url, min_size=1, max_size=2)
    await db.connect()
    try:
        return await work(db)
    finally:
        await db.disconnect()


def write_dev_key(settings: Settings, url: str) -> None:
    """First start in embedded mode: project `default` and a key of all scopes, printed once."""
    path = settings.data_dir / "dev-api-key"
    if path.exists():
        return

    async def make(db: Database) -> str:
        return (await create_key(db, project=DEV_PROJECT, scopes=list(SCOPES), name="dev")).key

    key = asyncio.run(with_db(url, make))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    print(
        f"Created project '{DEV_PROJECT}' and an API key of all scopes (saved to {path}):\n{key}", flush=True
    )


class Stopped(BaseException):
    """SIGINT or SIGTERM, raised where the service was (uvicorn re-raises the signal it handled once it
    has shut down), so that the embedded server is stopped before the process ends."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _stopped(signum: int, frame: FrameType | None) -> None:
    raise Stopped(signum)


def dev_secret_key(settings: Settings) -> str:
    """Embedded mode without RELATIONS_SECRET_KEY: the key sealing webhook secrets, made once into the
    data folder (mode 0600, beside the dev key) and read from there on later starts."""
    path = settings.data_dir / "secret-key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode() + "\n")
        print(f"Created the key that seals webhook secrets ({path}); keep it with the database.", flush=True)
    return path.read_text().strip()


def serve(args: argparse.Namespace, settings: Settings) -> int:
    embedded = not settings.database_url
    if not embedded:
        return _serve(args, settings)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _stopped)
    from service import embedded as embedded_server

    stopped: Stopped | None = None
    try:
        return _serve(args, settings)
    except Stopped as caught:
        stopped = caught
        return 0
    finally:
        embedded_server.stop(settings.data_dir)
        if stopped is not None:
            # End as the signal would have (supervisors count that as a clean stop).
            signal.signal(stopped.signum, signal.SIG_DFL)
            signal.raise_signal(stopped.signum)


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    embedded = not settings.database_url
    url = database_url(settings)
    try:
        asyncio.run(when_reachable(lambda: migrate(url), wait_seconds=settings.startup_wait_seconds))
    except DatabaseUnreachable as error:
        print(
            f"relations: cannot start, the database is unreachable after {settings.startup_wait_seconds}s "
            f"({error}). Check DATABASE_URL; RELATIONS_STARTUP_WAIT_SECONDS sets how long to wait.",
            file=sys.stderr,
        )
        return 1
    if embedded:
        write_dev_key(settings, url)
        if not settings.secret_key:
            # The workers read their settings from the environment.
            os.environ["RELATIONS_SECRET_KEY"] = dev_secret_key(settings)
    host = args.host or settings.host
    port = settings.port if args.port is None else args.port
    certfile = args.ssl_certfile or settings.tls_cert
    scheme = "https" if certfile else "http"
    print(f"Serving on {scheme}://{host}:{port} — docs at /docs", flush=True)
    with webhook_process(settings):
        _run_uvicorn(args, settings, host=host, port=port, certfile=certfile)
    return 0


def _run_uvicorn(
    args: argparse.Namespace, settings: Settings, *, host: str, port: int, certfile: str | None
) -> None:
    import uvicorn

    uvicorn.run(
        "service.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=args.workers or settings.workers,
        loop="uvloop",
        http="service.serving:GuardedHttpTools",
        log_level=settings.log_level,
        access_log=False,
        timeout_graceful_shutdown=30,
        server_header=False,  # no `server: uvicorn` on every answer
        # Slow or greedy clients (see README, Security): idle keep-alive connections close after
        # RELATIONS_KEEP_ALIVE_SECONDS; past RELATIONS_MAX_CONNECTIONS open connections a worker answers
        # 503 at once instead of queueing; service/serving.py bounds the time and size of headers.
        timeout_keep_alive=settings.keep_alive_seconds,
        limit_concurrency=settings.max_connections,
        h11_max_incomplete_event_size=settings.max_header_bytes,  # should `--http h11` ever be used
        # X-Forwarded-* are applied by the app itself (service/middleware.py: TrustedProxies), which
        # also honours X-Forwarded-Host; uvicorn's own handling would hide the proxy's address from it.
        proxy_headers=False,
        ssl_certfile=certfile,
        ssl_keyfile=args.ssl_keyfile or settings.tls_key,
    )


@contextlib.contextmanager
def webhook_process(settings: Settings) -> Iterator[None]:
    """`relations webhooks` as a child of `relations serve` while the block runs (unless
    RELATIONS_WEBHOOK_DELIVERY=false, or without RELATIONS_SECRET_KEY); stopped with SIGTERM after it,
    so that it hands back the deliveries it holds before an embedded database stops."""
    key = os.environ.get("RELATIONS_SECRET_KEY") or settings.secret_key
    if not settings.webhook_delivery or not key:
        if settings.webhook_delivery:
            print("relations: webhooks are off: RELATIONS_SECRET_KEY is not set", file=sys.stderr)
        yield
        return
    command = [sys.executable, "-m", "service.cli", "webhooks", "--parent", str(os.getpid())]
    child = subprocess.Popen(command)
    try:
        yield
    finally:
        if child.poll() is None:
            child.terminate()
            try:
                child.wait(timeout=WEBHOOK_STOP_SECONDS)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


WEBHOOK_STOP_SECONDS = 30


def webhooks(args: argparse.Namespace, settings: Settings) -> int:
    """Dispatch and send webhook deliveries until SIGTERM or SIGINT (README, Webhooks)."""
    from service.webhooks.process import run_until

    url = database_url(settings)
    if not settings.database_url and not settings.secret_key:  # embedded: as `relations serve` does
        os.environ["RELATIONS_SECRET_KEY"] = dev_secret_key(settings)
    settings = Settings.from_env()  # with the embedded server's url and key
    if not settings.secret_key:
        print(
            "relations: webhooks need RELATIONS_SECRET_KEY (the key that seals their secrets)",
            file=sys.stderr,
        )
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )

    async def main() -> None:
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stopping.set)
        await when_reachable(lambda: migrate(url), wait_seconds=settings.startup_wait_seconds)
        await run_until(stopping, settings, parent=args.parent)

    import uvloop  # the event loop the API workers run on too

    try:
        uvloop.run(main())
    except DatabaseUnreachable as error:
        print(f"relations: webhooks: the database is unreachable ({error})", file=sys.stderr)
        return 1
    return 0


def run_migrate(args: argparse.Namespace, settings: Settings) -> int:
    applied = asyncio.run(migrate(database_url(settings)))
    print("schema applied" if applied else "schema up to date")
    return 0


def keys_create(args: argparse.Namespace, settings: Settings) -> int:
    scopes = args.scopes.split()
    if not valid_project_alias(args.project):
        print(f"invalid project alias: {args.project!r}", file=sys.stderr)
        return 2
    if not scopes or set(scopes) - set(SCOPES):
        print(f"scopes must be some of: {' '.join(SCOPES)}", file=sys.stderr)
        return 2

    rate_limit = None
    if args.rate_limit:
        try:
            rate_limit = parse_policy(args.rate_limit)
        except InvalidPolicy as error:
            print(f"--rate-limit: {error}", file=sys.stderr)
            return 2

    async def make(db: Database) -> Any:
        return await create_key(
            db, project=args.project, scopes=scopes, name=args.name, rate_limit=rate_limit
        )

    new = asyncio.run(with_db(database_url(settings), make))
    limit = f", rate limit {new.rate_limit}" if new.rate_limit else ""
    print(f"key id {new.key_id} for project {new.project} with scopes {' '.join(new.scopes)}{limit}")
    print(new.key)
    return 0


def keys_list(args: argparse.Namespace, settings: Settings) -> int:
    async def rows(db: Database) -> Any:
        if not await project_queries.project_exists(db, project=args.project):
            return None
        return await project_queries.list_keys(db, project=args.project)

    found = asyncio.run(with_db(database_url(settings), rows))
    if found is None:
        print(f"no project {args.project!r}", file=sys.stderr)
        return 1
    for row in found:
        state = f"revoked {row['revoked_at']:%Y-%m-%dT%H:%M:%SZ}" if row["revoked_at"] else "active"
        used = f"{row['last_used_at']:%Y-%m-%dT%H:%M:%SZ}" if row["last_used_at"] else "never"
        limit = "default limit"
        if row["rate_per_second"] is not None:
            limit = f"{row['rate_per_second']}/s burst {row['rate_burst']}"
        print(
            f"{row['key_id']}\t{state}\t{' '.join(row['scopes'])}\tcreated "
            f"{row['created_at']:%Y-%m-%dT%H:%M:%SZ}\tlast used {used}\t{row['name']}\t{limit}"
        )
    return 0


def keys_revoke(args: argparse.Namespace, settings: Settings) -> int:
    async def revoke(db: Database) -> Any:
        return await project_queries.revoke_key(db, key_id=args.key_id)

    row = asyncio.run(with_db(database_url(settings), revoke))
    if row is None:
        print(f"no key with id {args.key_id}", file=sys.stderr)
        return 1
    print(f"revoked key {row['key_id']} of project {row['project']}")
    return 0


def projects_create(args: argparse.Namespace, settings: Settings) -> int:
    if not valid_project_alias(args.alias):
        print(f"invalid project alias: {args.alias!r}", file=sys.stderr)
        return 2

    async def make(db: Database) -> bool:
        return await create_project(db, project=args.alias)

    created = asyncio.run(with_db(database_url(settings), make))
    print(f"created project {args.alias}" if created else f"project {args.alias} exists")
    return 0


def projects_list(args: argparse.Namespace, settings: Settings) -> int:
    async def rows(db: Database) -> Any:
        return await project_queries.list_projects(db)

    for row in asyncio.run(with_db(database_url(settings), rows)):
        print(f"{row['project']}\t{row['created_at']:%Y-%m-%dT%H:%M:%SZ}")
    return 0


READ_CHUNK = 1 << 20


def export_relations(args: argparse.Namespace, settings: Settings) -> int:
    """The project's NDJSON to FILE (written as FILE.partial, renamed when complete, so a failed
    export never leaves a file that looks whole) or to stdout; progress on stderr."""
    if not valid_project_alias(args.project):
        print(f"invalid project alias: {args.project!r}", file=sys.stderr)
        return 2
    target = Path(args.output) if args.output else None
    partial = target.with_name(target.name + ".partial") if target else None

    async def run(db: Database) -> int:
        if not await project_queries.project_exists(db, project=args.project):
            print(f"no project {args.project!r}", file=sys.stderr)
            return 1
        with Reporter(f"export {args.project}") as progress:
            out = partial.open("wb") if partial else sys.stdout.buffer
            try:
                async with bulk.exporting(db, project=args.project, progress=progress) as chunks:
                    async for chunk in chunks:
                        out.write(chunk)
            finally:
                if partial:
                    out.close()
                else:
                    out.flush()
        if target and partial:
            partial.replace(target)
        return 0

    try:
        code: int = asyncio.run(with_db(database_url(settings), run))
    except ApiError as error:
        print(f"relations: export failed: {error.message}", file=sys.stderr)
        code = 1
    if code and partial:
        partial.unlink(missing_ok=True)
    return code


async def file_chunks(path: str) -> AsyncIterator[bytes]:
    with sys.stdin.buffer if path == "-" else open(path, "rb") as handle:  # noqa: ASYNC230 (a local file)
        while chunk := handle.read(READ_CHUNK):
            yield chunk


async def listed(lines: list[bytes]) -> AsyncIterator[bytes]:
    for start in range(0, len(lines), 10_000):
        yield b"".join(lines[start : start + 10_000])


def import_relations(args: argparse.Namespace, settings: Settings) -> int:
    """An NDJSON file (or `-`), or an Umbraco export (--umbraco DIR), into the project (created when
    missing), through the same import as POST /relation/import. Prints the counts as JSON."""
    if not valid_project_alias(args.project):
        print(f"invalid project alias: {args.project!r}", file=sys.stderr)
        return 2
    if (args.file is None) == (args.umbraco is None):
        print("give either FILE or --umbraco DIR", file=sys.stderr)
        return 2
    where: Callable[[str], str] = str
    if args.umbraco is not None:
        try:
            converted = convert_umbraco(Path(args.umbraco))
        except UmbracoProblems as problems:
            print("relations: nothing imported; these rows cannot be mapped:", file=sys.stderr)
            for problem in problems.problems:
                print(f"  {problem}", file=sys.stderr)
            return 1
        chunks = listed(converted.lines)
        where = converted.where
    else:
        chunks = file_chunks(args.file)

    async def run(db: Database) -> bulk.Outcome:
        await create_project(db, project=args.project)
        with Reporter(f"import {args.project}") as progress:
            return await bulk.import_lines(
                db,
                project=args.project,
                chunks=chunks,
                may_change_types=True,
                dry_run=args.dry_run,
                progress=progress,
            )

    try:
        outcome = asyncio.run(with_db(database_url(settings), run))
    except ValidationFailed as failed:
        print(f"relations: nothing imported; {len(failed.errors)} line(s) with problems:", file=sys.stderr)
        for key, found in failed.errors.items():
            for problem in found:
                print(f"  {where(key)}: {problem}", file=sys.stderr)
        return 1
    except (ApiError, OSError) as error:
        print(f"relations: import failed: {getattr(error, 'message', error)}", file=sys.stderr)
        return 1
    if args.dry_run:
        print("dry run: nothing was stored", file=sys.stderr)
    print(orjson.dumps(outcome.body()).decode())
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="relations", description="Relation registry")
    commands = root.add_subparsers(dest="command", required=True)

    serve_cmd = commands.add_parser("serve", help="serve the HTTP API")
    # Defaults from the settings (HOST, PORT, WORKERS, RELATIONS_TLS_CERT, RELATIONS_TLS_KEY).
    serve_cmd.add_argument("--host", default=None)
    serve_cmd.add_argument("--port", type=int, default=None)
    serve_cmd.add_argument("--workers", type=int, default=None)
    serve_cmd.add_argument("--ssl-certfile", default=None)
    serve_cmd.add_argument("--ssl-keyfile", default=None)
    serve_cmd.set_defaults(run=serve)

    commands.add_parser("migrate", help="apply schema.sql").set_defaults(run=run_migrate)

    hooks = commands.add_parser("webhooks", help="dispatch and send webhook deliveries (no HTTP API)")
    # `relations serve` passes its pid: the webhook process stops when that process is gone.
    hooks.add_argument("--parent", type=int, default=None, help=argparse.SUPPRESS)
    hooks.set_defaults(run=webhooks)

    keys = commands.add_parser("keys", help="API keys").add_subparsers(dest="keys_command", required=True)
    create = keys.add_parser("create", help="create a key (and its project)")
    create.add_argument("--project", required=True)
    create.add_argument("--scopes", required=True, help=f"space-separated, of: {' '.join(SCOPES)}")
    create.add_argument("--name", default="")
    create.add_argument(
        "--rate-limit", default=None, help='the key\'s own budget, e.g. "50/s burst 100" (SPEC §13)'
    )
    create.set_defaults(run=keys_create)
    listing = keys.add_parser("list", help="list a project's keys")
    listing.add_argument("--project", required=True)
    listing.set_defaults(run=keys_list)
    revoke = keys.add_parser("revoke", help="revoke a key")
    revoke.add_argument("key_id")
    revoke.set_defaults(run=keys_revoke)

    projects = commands.add_parser("projects", help="projects").add_subparsers(
        dest="projects_command", required=True
    )
    make = projects.add_parser("create", help="create a project with the built-in relation types")
    make.add_argument("alias")
    make.set_defaults(run=projects_create)
    projects.add_parser("list", help="list projects").set_defaults(run=projects_list)

    export = commands.add_parser("export", help="a project's relation types and relations as NDJSON")
    export.add_argument("--project", required=True)
    export.add_argument("-o", "--output", help="write to this file (default: stdout)")
    export.set_defaults(run=export_relations)
    load = commands.add_parser("import", help="import NDJSON, or Umbraco's tables as CSV (--umbraco)")
    load.add_argument("--project", required=True, help="created when it does not exist")
    load.add_argument("file", nargs="?", help="an export's NDJSON file, or - for stdin")
    load.add_argument(
        "--umbraco",
        metavar="DIR",
        help="a folder with umbracoRelationType.csv, umbracoRelation.csv and umbracoNode.csv",
    )
    load.add_argument("--dry-run", action="store_true", help="check and count, store nothing")
    load.set_defaults(run=import_relations)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except InvalidSetting as error:
        print(f"relations: {error}", file=sys.stderr)
        return 2
    result: int = args.run(args, settings)
    return result


if __name__ == "__main__":
    sys.exit(main())
