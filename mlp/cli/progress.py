"""Apply progress: a live table of blocks on a terminal, plain lines elsewhere."""

from __future__ import annotations

import threading
import time
from typing import Any

from mlp.engine.events import BlockEvent, Status

_STYLE = {Status.PENDING: "dim", Status.RUNNING: "yellow", Status.CACHED: "cyan", Status.DONE: "green",
          Status.FAILED: "red", Status.SKIPPED: "magenta"}


class PlainProgress:
    """One line per finished block, and each streamed log line (training epochs)."""

    def __init__(self, out: Any) -> None:
        self.out = out
        self._lock = threading.Lock()

    def block(self, e: BlockEvent) -> None:
        if e.status in (Status.PENDING, Status.RUNNING):
            if e.status is Status.RUNNING:
                with self._lock:
                    self.out.line(f"  {e.address}: running")
            return
        secs = f" [{e.seconds:.1f}s]" if e.seconds >= 0.05 else ""
        with self._lock:
            self.out.line(f"  {e.address}: {e.status.value}{secs}" + (f"  {e.info}" if e.info else ""),
                          _STYLE[e.status])
            for d in e.details:
                self.out.line(f"      {d}", "dim")

    def log(self, address: str, line: str) -> None:
        with self._lock:
            self.out.line(f"  {address}: {line}", "dim")

    def close(self) -> None:
        pass


class LiveProgress:
    """A rich Live table: every block with its status and duration, log lines above it."""

    def __init__(self, out: Any) -> None:
        from rich.live import Live

        self.out = out
        self.rows: dict[str, tuple[Status, float, str, float]] = {}
        self._lock = threading.Lock()
        self.live = Live(self._table(), console=out._con(), refresh_per_second=8, transient=False)
        self.live.start()

    def _table(self) -> Any:
        from rich.table import Table
        from rich.text import Text

        t = Table(box=None, show_header=True, header_style="bold", pad_edge=False)
        t.add_column("block")
        t.add_column("status")
        t.add_column("time", justify="right")
        t.add_column("")
        now = time.monotonic()
        for addr, (status, secs, info, started) in self.rows.items():
            if status is Status.RUNNING:
                secs = now - started
            t.add_row(Text(addr), Text(status.value, style=_STYLE[status]), f"{secs:.1f}s" if secs else "",
                      Text(info[:80]))
        return t

    def block(self, e: BlockEvent) -> None:
        with self._lock:
            started = time.monotonic() if e.status is Status.RUNNING else self.rows.get(e.address, (0, 0, "", 0))[3]
            self.rows[e.address] = (e.status, e.seconds, e.info, started)
            if e.details and e.status is Status.DONE:
                self.live.console.print(f"[bold]{e.address}[/]")
                for d in e.details:
                    self.live.console.print(f"    {d}", style="dim", markup=False, highlight=False)
            self.live.update(self._table())

    def log(self, address: str, line: str) -> None:
        with self._lock:
            self.live.console.print(f"{address}: {line}", style="dim", markup=False, highlight=False)
            self.live.update(self._table())

    def close(self) -> None:
        self.live.update(self._table())
        self.live.stop()


def make_progress(out: Any) -> Any:
    import os
    import sys

    live = sys.stdout.isatty() and not os.environ.get("MLP_IN_AUTOMATION")
    return LiveProgress(out) if live else PlainProgress(out)
