"""What the engine tells its caller while it works: block status changes and log lines.

The engine never prints. The CLI passes a `Hooks` implementation that renders a live
table on a terminal or plain lines elsewhere; tests pass a recorder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol


class Status(StrEnum):
    """A block's status during an apply. A FAILED event's `info` is the first line of its
    error, whose whole message the caller shows once, at the end; a SKIPPED event names
    its `cause`."""

    PENDING = "pending"
    RUNNING = "running"
    CACHED = "cached"      # reused from the artifact store, or carried over by early cut-off
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"    # not run because something it needs failed


@dataclass(frozen=True)
class BlockEvent:
    address: str
    status: Status
    seconds: float = 0.0
    info: str = ""                      # a one-line summary: rows, value, accuracy...
    details: tuple[str, ...] = ()       # sample rows, metric lines
    data: dict[str, Any] = field(default_factory=dict)
    cause: str = ""                     # SKIPPED: the address of the failed block it needed


class Hooks(Protocol):
    def block(self, event: BlockEvent) -> None: ...

    def log(self, address: str, line: str) -> None: ...


class NullHooks:
    def block(self, event: BlockEvent) -> None:
        pass

    def log(self, address: str, line: str) -> None:
        pass


class RecordingHooks:
    """Keeps every event; used by tests and by the apply summary."""

    def __init__(self) -> None:
        self.events: list[BlockEvent] = []
        self.lines: list[tuple[str, str]] = []

    def block(self, event: BlockEvent) -> None:
        self.events.append(event)

    def log(self, address: str, line: str) -> None:
        self.lines.append((address, line))

    def final(self) -> dict[str, BlockEvent]:
        out: dict[str, BlockEvent] = {}
        for e in self.events:
            out[e.address] = e
        return out
