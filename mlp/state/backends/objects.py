"""What a remote backend needs from an object store, and the values that cross the seam.

`ObjectStore` is the whole contract between `ObjectBackend` (state, journal, lock, artifacts,
logs) and one cloud SDK. Names are relative to the backend's prefix (`state.json`,
`journal/00000000000000000042.json`); every implementation joins them under its prefix.

Invariants every implementation keeps:
- `put` and `upload_file` replace an object whole: a reader sees the old object or the new
  one, never a mix (one PUT, one finished multipart or resumable upload, one committed block
  list).
- `put_if_absent` and `acquire_lock` are atomic on the server: of two concurrent callers,
  exactly one is told it created the object.
- Failures of the SDK become `StateError`s naming the object's URL, the reason and the fix;
  nothing an SDK raises escapes as a traceback, and no credential is ever part of a message.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from mlp.errors import StateError

_T = TypeVar("_T")
_R = TypeVar("_R")


@dataclass(frozen=True)
class ObjectStat:
    """What a store says about one object without reading it.

    `version` is what changes when the object does: an S3 ETag, a GCS generation, an Azure
    ETag. `size` is in bytes.
    """

    name: str
    size: int
    version: str


@dataclass(frozen=True)
class HeldLock:
    """The lock object as read: its bytes (a `LockInfo` document) and what `release_lock`
    needs to remove exactly this object (an ETag, a generation, or an Azure lease id)."""

    data: bytes
    token: str


class ObjectStore(Protocol):
    """Objects under one prefix of one bucket or container."""

    kind: str  # the backend block's label: "s3", "gcs", "azurerm"

    def url(self, name: str) -> str:
        """Where `name` lives, for messages: `s3://bucket/prefix/state.json`."""
        ...

    def removal_command(self, name: str) -> str:
        """The shell command that removes `name` by hand, for hints."""
        ...

    def get(self, name: str) -> bytes | None:
        """The object's bytes; None when there is no such object."""
        ...

    def put(self, name: str, data: bytes) -> None:
        """Create or replace the object whole."""
        ...

    def put_if_absent(self, name: str, data: bytes) -> bool:
        """Create the object unless it exists; True when this call created it."""
        ...

    def delete(self, name: str) -> None:
        """Remove the object; no error when there is none."""
        ...

    def delete_many(self, names: Sequence[str]) -> None:
        """Remove every object named (batched or in parallel); missing ones are no error."""
        ...

    def list(self, prefix: str) -> list[str]:
        """The names that start with `prefix` (all pages), sorted."""
        ...

    def stat(self, name: str) -> ObjectStat | None:
        """Size and version of the object; None when there is none."""
        ...

    def upload_file(self, name: str, path: Path) -> None:
        """Create or replace the object with the file's content (multipart when big)."""
        ...

    def download_file(self, name: str, path: Path) -> bool:
        """Write the object's content to `path`; False when there is no such object."""
        ...

    def acquire_lock(self, name: str, lock_id: str, data: bytes) -> bool:
        """Create the lock object holding `data` unless the lock is held; True when taken.

        S3 and GCS create the object only if absent; Azure takes an infinite lease on it
        whose id is `lock_id`.
        """
        ...

    def read_lock(self, name: str) -> HeldLock | None:
        """The held lock object; None when the lock is free."""
        ...

    def release_lock(self, name: str, lock_id: str, held: HeldLock) -> None:
        """Remove the lock object read as `held`; StateError if it changed since."""
        ...


def join(prefix: str, name: str) -> str:
    """`apps/iris` + `state.json` -> `apps/iris/state.json`; an empty prefix is the root."""
    prefix = prefix.strip("/")
    return f"{prefix}/{name}" if prefix else name


def missing_sdk(kind: str, module: str, extra: str) -> StateError:
    """The error for a backend whose SDK is not installed."""
    return StateError(
        f'The "{kind}" backend needs the {module} package',
        detail=f"{module} is not installed in this Python environment ({kind} backends are an optional extra).",
        hint=f"pip install 'mlp[{extra}]'",
    )


def parse_json(data: bytes) -> Any:
    """JSON read from a store, as plain data (nothing read can run code): UTF-8 only, and
    nesting too deep is a ValueError, like every malformed document."""
    try:
        return json.loads(data.decode("utf-8"))
    except RecursionError:
        raise ValueError("values nested too deep") from None


def store_error(action: str, url: str, reason: str, hint: str) -> StateError:
    """An object-store call that failed: what was done to which object, why, and the fix."""
    return StateError(f"Cannot {action} {url}", detail=reason, hint=hint)


TRANSFER_WORKERS = 8  # parallel requests per batch: enough to hide latency, few enough for a laptop


def parallel(fn: Callable[[_T], _R], items: Sequence[_T], workers: int = TRANSFER_WORKERS) -> list[_R]:
    """`[fn(x) for x in items]` on a thread pool (the SDK clients are thread-safe); the first
    error raised is raised here, after the calls already started have finished."""
    if len(items) <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return list(pool.map(fn, items))
