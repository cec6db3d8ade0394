"""service/embedded.py: what the embedded PostgreSQL would change as root is listed before it starts."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from service import embedded
from tests.processes import ROOT, free_port, spawn


def test_lists_only_folders_not_yet_traversable(tmp_path: Path) -> None:
    private = tmp_path / "home"
    data = private / "project" / ".data" / "pg"
    data.mkdir(parents=True)
    private.chmod(0o700)
    (private / "project").chmod(0o755)
    try:
        changes = embedded.permission_changes(data)
        assert private in changes
        assert private / "project" not in changes
        assert all(
            (folder.stat().st_mode & embedded.TRAVERSABLE) != embedded.TRAVERSABLE for folder in changes
        )
    finally:
        private.chmod(0o755)


def test_no_changes_when_everything_is_traversable() -> None:
    # pytest's own tmp_path sits in a private folder, so make an open one beside the system's temp dir.
    base = Path(tempfile.mkdtemp())
    try:
        base.chmod(0o755)
        data = base / "open" / "pg"
        data.mkdir(parents=True)
        for folder in data.parents:
            folder_mode = folder.stat().st_mode
            if folder != base and (folder_mode & embedded.TRAVERSABLE) != embedded.TRAVERSABLE:
                pytest.skip(f"the system's temporary folder is private: {folder}")
        assert embedded.permission_changes(data) == []
    finally:
        shutil.rmtree(base)


def test_root_warning_names_the_folders_and_the_way_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    private = tmp_path / "secret"
    data = private / "pg"
    data.mkdir(parents=True)
    private.chmod(0o700)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(embedded, "binaries_path", lambda: data)
    try:
        embedded.warn_as_root(data)
    finally:
        private.chmod(0o755)
    err = capsys.readouterr().err
    assert str(private) in err
    assert "DATABASE_URL" in err and "normal user" in err


def test_silent_for_a_normal_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    embedded.warn_as_root(tmp_path)
    assert capsys.readouterr().err == ""


# ---------------------------------------------------------------------------------------------------------
# The embedded server stops with the service (issue 11)


@pytest.mark.parametrize(
    ("signum", "workers"), [(signal.SIGINT, "1"), (signal.SIGTERM, "1"), (signal.SIGTERM, "2")]
)
def test_the_embedded_server_stops_with_the_service(signum: int, workers: str) -> None:
    data = ROOT / ".data" / "test-embedded-stop"  # reused: only the first start runs initdb
    port = free_port()
    environment = {
        key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "RELATIONS_DATA_DIR")
    }
    environment.update({"RELATIONS_DATA_DIR": str(data), "RELATIONS_ACCESS_LOG": "false"})
    log = data.parent / f"test-embedded-stop-{port}.log"
    data.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "service.cli", "serve", "--port", str(port), "--workers", workers]
    process = spawn(command, environment, log)
    try:
        for _ in range(1200):
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        else:
            raise AssertionError(f"relations serve did not start: {log.read_text()}")
        postmaster = embedded.postmaster_pid(data)
        assert postmaster is not None and embedded.running(postmaster)
        process.send_signal(signum)
        assert process.wait(timeout=60) in (0, -signum), log.read_text()
        assert not embedded.running(postmaster), "the embedded PostgreSQL outlived the service"
        assert embedded.postmaster_pid(data) is None
        assert "Serving on http://127.0.0.1:" in log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        embedded.stop(data)
        log.unlink(missing_ok=True)


def test_stop_without_a_server_is_a_no_op(tmp_path: Path) -> None:
    assert embedded.stop(tmp_path) is False
