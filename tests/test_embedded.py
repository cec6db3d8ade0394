"""service/embedded.py: what the embedded PostgreSQL would change as root is listed before it starts."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from service import embedded


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
