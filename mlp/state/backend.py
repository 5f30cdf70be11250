"""The protocol every state backend implements: local (`mlp.state.local`), and s3, gcs and
azurerm (`mlp.state.backends`: one `ObjectBackend` over each cloud's object store).

A backend stores three things for one app: the state (`state.json` plus a journal of
changes made since it was last written whole), the content-addressed artifact store, and
the logs of every job. `mlp.state.testing.run_conformance` checks a backend against this
protocol; every backend's tests run it. `mlp.state.backends.open_backend` opens one by the
label of the app's backend block.

Writers take the lock first (`with locked(backend, "mlp apply"):`); backends do not check
that the caller holds it, the same as Terraform's state managers.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from mlp.errors import StateError
from mlp.state.lock import LockInfo
from mlp.state.model import BlockRecord, State

_FINGERPRINT_PREFIX_RE = re.compile(r"^[0-9a-f]{2,}$")


def artifact_key(fingerprint: str) -> str:
    """The artifact-store key of a block output: `ab/ab12...` (fan-out by the first two chars)."""
    if not _FINGERPRINT_PREFIX_RE.match(fingerprint):
        raise ValueError(f"not a fingerprint: {fingerprint!r}")
    return f"{fingerprint[:2]}/{fingerprint}"


class ArtifactStore(Protocol):
    """Block outputs, one folder per key. A key is visible only once committed whole."""

    def has(self, key: str) -> bool:
        """Whether a committed artifact exists under `key`.

        A remote store may answer from one listing taken at its first call (and kept up to date
        with its own commits and deletes), so that a plan asking about every key costs one
        request; another instance's later changes are seen by a store opened after them.
        """
        ...

    def local_path(self, key: str) -> Path:
        """A local folder holding the artifact for `key` (created on demand by writers)."""
        ...

    def location(self, key: str) -> str:
        """Where the artifact for `key` is, for people: a local folder or a bucket's URI.
        Never fetches anything."""
        ...

    def temp_dir(self, key: str) -> Path:
        """A fresh, empty folder inside the store in which to build the artifact for `key`."""
        ...

    def commit(self, key: str, tmp_dir: Path) -> None:
        """Move a finished `temp_dir(key)` into place under `key`, replacing what was there.

        Readers never see a half-written artifact under `key`.
        """
        ...

    def delete(self, key: str) -> None:
        """Remove the artifact under `key`; no error if there is none."""
        ...

    def keys(self) -> list[str]:
        """Every committed key, sorted."""
        ...

    def sweep(self) -> int:
        """Remove the work in progress of builds that never committed (a killed apply left
        it); returns how many. Only under the state lock: no build of the app is running."""
        ...


class LogStore(Protocol):
    """One log file per block address."""

    def path(self, address: str) -> Path:
        """The local log file of a block; writers open it in append mode."""
        ...

    def flush(self, address: str) -> None:
        """Make what was written to `path(address)` durable in the backend: a remote backend
        uploads the log whole; the local one has nothing to do (the file is the log). Call it
        when a block's job ends, failed or not."""
        ...

    def read(self, address: str) -> str:
        """The whole log of a block; "" when it has none yet."""
        ...


class Backend(Protocol):
    """Where one app's state, artifacts and logs live.

    Serial rule: every durable change (`write_state`, `record_block`, `remove_block`,
    `set_output`) makes the serial seen by `read_state` grow by exactly one.
    """

    name: str

    def read_state(self) -> State:
        """The stored state with the journal replayed onto it.

        Returns `State.new()` (not stored, and so with a fresh lineage on every call) when
        nothing is stored yet. Unreadable storage raises StateError naming the file and fix.
        """
        ...

    def write_state(self, state: State) -> State:
        """Store `state` whole, atomically, and discard the journal; returns what was stored.

        The stored serial is one more than the greater of `state.serial` and the stored
        serial, so a state read before some `record_block` calls still moves forward.
        Raises StateError if a stored state has another lineage.
        """
        ...

    def record_block(self, record: BlockRecord) -> None:
        """Durably add or replace one block record, in time independent of the state's size."""
        ...

    def remove_block(self, address: str) -> None:
        """Durably remove one block record (a journal entry, like `record_block`)."""
        ...

    def set_output(self, key: str, value: Any | None) -> None:
        """Durably set one output; None removes it (a journal entry, like `record_block`)."""
        ...

    def lock(self, command: str) -> LockInfo:
        """Take the state lock for `command`; raises LockError naming the holder if held."""
        ...

    def unlock(self, lock_id: str) -> None:
        """Release the lock with this id; StateError if unlocked or held under another id."""
        ...

    def current_lock(self) -> LockInfo | None:
        """The holder of the lock, or None when the state is not locked."""
        ...

    def artifacts(self) -> ArtifactStore: ...

    def logs(self) -> LogStore: ...


@contextlib.contextmanager
def locked(backend: Backend, command: str) -> Iterator[LockInfo]:
    """Hold the state lock for the body; always release it.

    If the body fails and releasing fails too (someone force-unlocked), the body's error
    is the one raised.
    """
    info = backend.lock(command)
    try:
        yield info
    except BaseException:
        with contextlib.suppress(StateError):
            backend.unlock(info.id)
        raise
    backend.unlock(info.id)
