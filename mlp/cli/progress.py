"""Apply progress: a live table of blocks on a terminal, plain lines elsewhere.

A failed block's line says only that it failed: its error is shown once, in the summary
after the run (`mlp.cli.summary`). A skipped block's line names the failure it needed.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from mlp.engine.events import BlockEvent, Status

FAILED_INFO = "the error is shown below"
_STYLE = {Status.PENDING: "dim", Status.RUNNING: "yellow", Status.CACHED: "cyan", Status.DONE: "green",
          Status.FAILED: "red", Status.SKIPPED: "magenta"}


class PlainProgress:
    """One line per finished block (and its warnings); with `verbose`, also a line when a
    block starts and every streamed log line (epochs, sample rows)."""

    def __init__(self, out: Any, verbose: bool = False) -> None:
        self.out = out
        self.verbose = verbose
        self._lock = threading.Lock()

    def block(self, e: BlockEvent) -> None:
        if e.status in (Status.PENDING, Status.RUNNING):
            if e.status is Status.RUNNING and self.verbose:
                with self._lock:
                    self.out.line(f"  {e.address}: running")
            return
        if not self.verbose and e.status in (Status.DONE, Status.CACHED) and _part_of_ingest(e.address):
            return  # its source's line counts it
        secs = f" [{e.seconds:.1f}s]" if e.seconds >= 0.05 else ""
        info = _info(e)
        with self._lock:
            self.out.line(f"  {e.address}: {e.status.value}{secs}" + (f"  {info}" if info else ""),
                          _STYLE[e.status])
            for d in e.details:
                self.out.line(f"      {d}", "dim")

    def log(self, address: str, line: str) -> None:
        if not self.verbose:
            return  # it is in `mlp logs ADDRESS`
        with self._lock:
            self.out.line(f"  {address}: {line}", "dim")

    def close(self) -> None:
        pass


class LiveProgress:
    """A rich Live table: every block with its status and duration, log lines above it."""

    def __init__(self, out: Any, verbose: bool = False) -> None:
        from rich.live import Live

        self.out = out
        self.verbose = verbose
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
            self.rows[e.address] = (e.status, e.seconds, _info(e), started)
            if e.details and e.status is Status.DONE:
                self.live.console.print(f"[bold]{e.address}[/]")
                for d in e.details:
                    self.live.console.print(f"    {d}", style="dim", markup=False, highlight=False)
            self.live.update(self._table())

    def log(self, address: str, line: str) -> None:
        """With -v, the line above the table; else it shows, cut short, in its block's row."""
        with self._lock:
            if self.verbose:
                self.live.console.print(f"{address}: {line}", style="dim", markup=False, highlight=False)
            elif address in self.rows and self.rows[address][0] is Status.RUNNING:
                status, secs, _, started = self.rows[address]
                self.rows[address] = (status, secs, line, started)
            self.live.update(self._table())

    def close(self) -> None:
        self.live.update(self._table())
        self.live.stop()


def _part_of_ingest(address: str) -> bool:
    """Raw columns are made by their source's ingest, which reports them on its own line."""
    from mlp.graph.address import Address, Kind

    try:
        return Address.parse(address).kind is Kind.RAW_COLUMN
    except ValueError:
        return False


def _info(e: BlockEvent) -> str:
    if e.status is Status.FAILED:
        return FAILED_INFO
    if e.status is Status.SKIPPED and e.cause:
        return f"because {e.cause} failed"
    return e.info


def make_progress(out: Any, verbose: bool = False) -> Any:
    import os
    import sys

    live = sys.stdout.isatty() and not os.environ.get("MLP_IN_AUTOMATION")
    return LiveProgress(out, verbose) if live else PlainProgress(out, verbose)
