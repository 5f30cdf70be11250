"""Who holds the state lock, and the error a second writer gets.

Every backend stores a `LockInfo` with its lock, so that a blocked command can say who
holds the lock, since when, and how to release it if that holder is gone.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mlp.errors import LockError
from mlp.state.model import JsonFields, utc_now


@dataclass(frozen=True)
class LockInfo:
    """The holder of a state lock.

    Invariants: `id` is a uuid4 unique to this acquisition (unlock needs it); `host`, `pid`
    and `user` identify the process that took the lock; `command` is what it runs
    ("mlp apply"); `created` is ISO 8601 UTC.
    """

    id: str
    host: str
    pid: int
    user: str
    command: str
    created: str

    @classmethod
    def make(cls, command: str) -> LockInfo:
        """A new lock identity for this process, running `command`."""
        import socket  # here, not at import: a plan takes no lock (socket and uuid cost ~4 ms)
        import uuid

        return cls(
            id=str(uuid.uuid4()),
            host=socket.gethostname(),
            pid=os.getpid(),
            user=_current_user(),
            command=command,
            created=utc_now(),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "host": self.host,
            "pid": self.pid,
            "user": self.user,
            "command": self.command,
            "created": self.created,
        }

    @classmethod
    def from_json(cls, d: Any) -> LockInfo:
        """Parse lock info; raises ValueError naming the first bad field."""
        r = JsonFields(d, "lock")
        return cls(
            id=r.get("id", str),
            host=r.get("host", str),
            pid=r.get("pid", int),
            user=r.get("user", str),
            command=r.get("command", str),
            created=r.get("created", str),
        )

    def describe(self, now: datetime | None = None) -> str:
        """`held by alice@host (pid 123), running `mlp apply`, since <created> (5 minutes ago)`."""
        return (
            f"held by {self.user}@{self.host} (pid {self.pid}), running `{self.command}`, "
            f"since {self.created} ({self._age(now)})"
        )

    def _age(self, now: datetime | None) -> str:
        try:
            created = datetime.fromisoformat(self.created)
        except ValueError:
            return "unknown age"
        if created.tzinfo is None:
            created = created.replace(tzinfo=UTC)
        seconds = int(((now or datetime.now(UTC)) - created).total_seconds())
        return ago(seconds)

    def is_stale_here(self) -> bool:
        """True when the holder ran on this host and its process is gone."""
        import socket

        return self.host == socket.gethostname() and not pid_alive(self.pid)


def lock_error(held: LockInfo) -> LockError:
    """The error for a command that could not take the lock because `held` has it."""
    detail = f"The state lock is {held.describe()}. Lock ID: {held.id}."
    if held.is_stale_here():
        detail += (
            f" Process {held.pid} is no longer running on this host ({held.host}),"
            " so the lock was probably left behind by a command that crashed."
        )
    return LockError(
        "The state is locked",
        detail=detail,
        hint=f"If no mlp command is running, release it with: mlp state unlock {held.id}",
    )


def ago(seconds: int) -> str:
    """`5 seconds ago`, `1 minute ago`, `3 hours ago`, `2 days ago` (negative counts as 0)."""
    seconds = max(seconds, 0)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return f"{seconds} second{'s' if seconds != 1 else ''} ago"


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host (a zombie counts as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def _current_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name and no passwd entry (some containers)
        return f"uid{os.getuid()}" if hasattr(os, "getuid") else "unknown"
