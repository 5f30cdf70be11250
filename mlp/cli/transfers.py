"""Artifact transfers to and from a remote backend's bucket, as the user sees them: one bar
per artifact on a terminal (rich), and one line per finished artifact elsewhere (stderr, so
that `mlp plan --json` and `mlp state pull` stay clean)."""

from __future__ import annotations

import sys
import threading
from typing import Any


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


class TransferLines:
    """One line per artifact once its files have all moved."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def __call__(self, p: Any) -> None:
        if not p.finished:
            return
        verb = "pulled" if p.direction.value == "download" else "pushed"
        with self._lock:
            sys.stderr.write(f"{verb} {p.key[:15]}… ({p.files_total} file{'s' if p.files_total != 1 else ''}, "
                             f"{_size(p.bytes_total)})\n")


class TransferBars:
    """A rich progress bar per artifact, advanced file by file, removed when it is done."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

        self._progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                                  TransferSpeedColumn(), console=Console(stderr=True), transient=True)
        self._tasks: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()
        self._started = False

    def __call__(self, p: Any) -> None:
        with self._lock:
            if not self._started:
                self._progress.start()
                self._started = True
            key = (p.direction.value, p.key)
            if key not in self._tasks:
                verb = "pull" if p.direction.value == "download" else "push"
                self._tasks[key] = self._progress.add_task(f"{verb} {p.key[:15]}…", total=p.bytes_total)
            self._progress.update(self._tasks[key], completed=p.bytes_done)
            if p.finished:
                self._progress.remove_task(self._tasks.pop(key))
                if not self._tasks:
                    self._progress.stop()
                    self._started = False


def transfer_hook(interactive: bool) -> Any:
    return TransferBars() if interactive else TransferLines()
