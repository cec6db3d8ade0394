"""Progress of a CLI export or import on stderr: rich's live bar (rows, rows/s, time) on a terminal,
and a plain line every few seconds otherwise (a log or CI keeps no carriage returns)."""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

PLAIN_EVERY_SECONDS = 2.0


class _Rate(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed or 0:,.0f} rows/s")


class _Rows(ProgressColumn):
    def render(self, task: Task) -> Text:
        return Text(f"{int(task.completed):,} rows")


class Reporter:
    """Called with the number of rows done so far; `with` it around the work."""

    def __init__(self, label: str, *, stream: TextIO | None = None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.rows = 0
        self.started = time.monotonic()
        self._shown = self.started
        self._bar: Progress | None = None
        self._task: TaskID | None = None
        if self.stream.isatty():
            console = Console(file=self.stream)
            self._bar = Progress(
                TextColumn(label), BarColumn(), _Rows(), _Rate(), TimeElapsedColumn(), console=console
            )

    def __enter__(self) -> Reporter:
        if self._bar is not None:
            self._bar.start()
            self._task = self._bar.add_task(self.label, total=None)
        return self

    def __call__(self, rows: int) -> None:
        self.rows = rows
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=rows)
            return
        now = time.monotonic()
        if now - self._shown >= PLAIN_EVERY_SECONDS:
            self._shown = now
            self._line()

    def _line(self, suffix: str = "") -> None:
        seconds = max(time.monotonic() - self.started, 1e-9)
        print(
            f"{self.label}: {self.rows:,} rows, {self.rows / seconds:,.0f} rows/s, {seconds:.1f} s{suffix}",
            file=self.stream,
            flush=True,
        )

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, total=max(self.rows, 1), completed=self.rows)
            self._bar.stop()
        if error is None:
            self._line(" (done)")
