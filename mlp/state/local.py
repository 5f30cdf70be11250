"""The local backend: the app's `.mlp` folder.

    .mlp/state.json      the state, written whole and atomically (temp file, fsync, rename)
    .mlp/state.journal   JSON lines, one `JournalEntry` each, appended and fsynced one by one
    .mlp/state.lock      the lock: created exclusively, holding the holder's `LockInfo`
    .mlp/artifacts/      one folder per artifact key (`ab/ab12...`); `.tmp/` for work in progress
                         (swept at the start of every apply: a killed build leaves its folder)
    .mlp/logs/           `<address>.log`

Crash safety: `state.json` is only ever replaced by rename, so it is always a whole
document. Journal entries carry their serial; reading replays those newer than
`state.json`, so a crash between writing `state.json` and discarding the journal loses
nothing and replays nothing twice. A crash mid-append leaves a torn last line without its
newline: reading ignores it and the next append cuts it off.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
import urllib.parse
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from mlp.errors import LockError, StateError, os_error_help
from mlp.safeio import NotRegularFile, read_regular
from mlp.state.lock import LockInfo, lock_error
from mlp.state.model import BlockRecord, JournalEntry, State

STATE_FILE = "state.json"
JOURNAL_FILE = "state.journal"
LOCK_FILE = "state.lock"
_READ_ATTEMPTS = 5
_LOCK_LIMIT = 1 << 20  # bytes; a lock file holds a few hundred
_LOCK_READ_TIMEOUT = 1.0  # how long a half-written lock file may stay unreadable
_CHUNK = 64 * 1024
_KEY_RE = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*/[A-Za-z0-9_-][A-Za-z0-9_.-]*$")
_ADDRESS_RE = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$")
_P = ParamSpec("_P")
_R = TypeVar("_R")


def _writes(what: str) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """A write whose OSError (a folder that cannot be written, a file where a folder
    should be, a full or read-only disk) becomes a StateError naming the path and the fix."""
    def wrap(fn: Callable[_P, _R]) -> Callable[_P, _R]:
        @wraps(fn)
        def run(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            try:
                return fn(*args, **kwargs)
            except OSError as e:
                raise write_error(e, what) from None
        return run
    return wrap


def write_error(e: OSError, what: str) -> StateError:
    detail, fix = os_error_help(e)
    return StateError(f"Cannot write {what}", detail,
                      f'{fix}; or keep the state in another folder: backend "local" {{ path = "DIR" }}')


class LocalBackend:
    """State, artifacts and logs in a local folder (`root`, normally `<app>/.mlp`).

    Nothing is created until something is written.
    """

    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._state_path = self.root / STATE_FILE
        self._journal_path = self.root / JOURNAL_FILE
        self._lock_path = self.root / LOCK_FILE
        self._os_locks: dict[str, int] = {}
        self.stale_taken: LockInfo | None = None
        self._base_serial_cache: tuple[tuple[int, int, int], int] | None = None

    def __repr__(self) -> str:
        return f"LocalBackend({str(self.root)!r})"

    # -- state ---------------------------------------------------------------------------

    def read_state(self) -> State:
        # A writer may replace state.json while we read the journal; retry until both
        # reads saw the same state.json.
        for _ in range(_READ_ATTEMPTS):
            state = self._read_consistent()
            if state is not None:
                return state
        raise StateError(
            "The state kept changing while it was being read",
            detail=f"{self._state_path} was replaced {_READ_ATTEMPTS} times during one read.",
            hint="Run the command again once the other mlp command has finished.",
        )

    def _read_consistent(self) -> State | None:
        ident = _file_ident(self._state_path)
        base = self._read_state_file()
        entries = self._read_journal()
        if _file_ident(self._state_path) != ident:
            return None
        if base is None:
            if entries:
                raise _journal_without_state(self._state_path, self._journal_path)
            return State.new()
        for entry in entries:
            if entry.serial > base.serial:
                base = entry.apply(base)
        return base

    @_writes("the state")
    def write_state(self, state: State) -> State:
        current = self.read_state() if self._state_path.exists() else None
        if current is not None and current.lineage != state.lineage:
            raise StateError(
                "The state belongs to another app",
                detail=(
                    f"{self._state_path} has lineage {current.lineage}, "
                    f"but the state being written has lineage {state.lineage}."
                ),
                hint="Check that the app folder and backend settings point at this app's state.",
            )
        serial = max(state.serial, current.serial if current else 0) + 1
        stored = state.with_serial(serial)
        _atomic_write(self._state_path, _dumps_document(stored.to_json()))
        self._discard_journal()
        return stored

    def record_block(self, record: BlockRecord) -> None:
        self._append(lambda serial: JournalEntry.block(serial, record))

    def remove_block(self, address: str) -> None:
        self._append(lambda serial: JournalEntry.remove(serial, address))

    def set_output(self, key: str, value: Any | None) -> None:
        self._append(lambda serial: JournalEntry.output(serial, key, value))

    def _read_state_file(self) -> State | None:
        data = _read_backend_file(self._state_path)
        if data is None:
            return None
        try:
            return State.from_json(_json_document(data))
        except json.JSONDecodeError as e:
            raise _corrupt(self._state_path, f"line {e.lineno}, column {e.colno}: {e.msg}") from None
        except ValueError as e:  # UnicodeDecodeError too: raw bytes are never echoed
            raise _corrupt(self._state_path, str(e)) from None

    def _read_journal(self) -> list[JournalEntry]:
        data = _read_backend_file(self._journal_path)
        if data is None:
            return []
        lines = data.split(b"\n")
        # The last piece has no newline: empty, or a torn append from a crash. Ignore it.
        return [self._parse_entry(line, f"line {n}") for n, line in enumerate(lines[:-1], start=1)]

    def _parse_entry(self, line: bytes, where: str) -> JournalEntry:
        try:
            return JournalEntry.from_json(_json_document(line))
        except ValueError as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise _corrupt(self._journal_path, f"{where}: {e}") from None

    @_writes("the state journal")
    def _append(self, make: Callable[[int], JournalEntry]) -> None:
        """Append the entry `make(serial)` to the journal with the next serial, durably."""
        if not self._state_path.exists():  # fix the lineage before the first entry
            _atomic_write(self._state_path, _dumps_document(State.new().to_json()))
        created = not self._journal_path.exists()
        fd = os.open(self._journal_path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            size = os.fstat(fd).st_size
            end, last = _journal_tail(fd, size)
            last_serial = self._parse_entry(last, "its last line").serial if last else 0
            entry = make(max(last_serial, self._base_serial()) + 1)
            line = (json.dumps(entry.to_json(), sort_keys=True) + "\n").encode()
            if end != size:
                os.ftruncate(fd, end)  # cut off a torn line left by a crash
            _write_all(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            _fsync_dir(self.root)

    def _base_serial(self) -> int:
        """The serial of `state.json`, parsed again only when the file changed."""
        ident = _file_ident(self._state_path)
        if ident is None:
            return 0
        if self._base_serial_cache is None or self._base_serial_cache[0] != ident:
            base = self._read_state_file()
            self._base_serial_cache = (ident, base.serial if base else 0)
        return self._base_serial_cache[1]

    def _discard_journal(self) -> None:
        try:
            os.unlink(self._journal_path)
        except FileNotFoundError:
            return
        _fsync_dir(self.root)

    # -- lock ----------------------------------------------------------------------------

    @_writes("the state lock")
    def lock(self, command: str) -> LockInfo:
        """Take the lock. Besides the lock file (which names the holder), the holder keeps an
        OS lock (flock) on `state.lock.os` for as long as it runs: the kernel drops it when the
        process dies, however it dies, so a lock file whose OS lock is free was left by a
        process that no longer runs and is taken over (`stale_taken`)."""
        self.root.mkdir(parents=True, exist_ok=True)
        os_fd = self._take_os_lock()
        self.stale_taken = None
        if os_fd is None:
            held = self._wait_for_lock_file()
            if held is not None:
                raise lock_error(held)
            # The OS lock is held but there is no lock file: `mlp state unlock` released a
            # holder that still runs. The lock file alone (O_EXCL) guards from here on.
        try:
            if os_fd is not None:
                self.stale_taken = self.current_lock()
                if self.stale_taken is not None:
                    os.unlink(self._lock_path)  # its holder died: the OS lock was free
            info = LockInfo.make(command)
            try:
                fd = os.open(self._lock_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                held = self.current_lock()
                if held is None:
                    raise LockError("The state lock could not be taken",
                                    detail=f"{self._lock_path} kept appearing and disappearing.",
                                    hint="Run the command again once the other mlp commands have finished.") from None
                raise lock_error(held) from None
            try:
                _write_all(fd, _dumps_document(info.to_json()))
                os.fsync(fd)
            finally:
                os.close(fd)
            _fsync_dir(self.root)
        except BaseException:
            if os_fd is not None:
                os.close(os_fd)
            raise
        if os_fd is not None:
            self._os_locks[info.id] = os_fd
        return info

    def _wait_for_lock_file(self) -> LockInfo | None:
        """The holder takes the OS lock, then writes the lock file: give it a moment."""
        deadline = time.monotonic() + 0.5
        while True:
            held = self.current_lock()
            if held is not None or time.monotonic() > deadline:
                return held
            time.sleep(0.02)

    def _take_os_lock(self) -> int | None:
        import fcntl

        fd = os.open(self.root / (LOCK_FILE + ".os"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return fd

    @_writes("the state lock")
    def unlock(self, lock_id: str) -> None:
        held = self.current_lock()
        if held is None:
            raise StateError("The state is not locked", detail=f"There is no lock to release: {self._lock_path} does not exist.")
        if held.id != lock_id:
            raise StateError(
                "The lock ID does not match",
                detail=f"The state lock is {held.describe()}. Its ID is {held.id}, not {lock_id}.",
                hint=f"If no mlp command is running, release it with: mlp state unlock {held.id}",
            )
        os.unlink(self._lock_path)
        _fsync_dir(self.root)
        os_fd = self._os_locks.pop(lock_id, None)
        if os_fd is not None:
            os.close(os_fd)

    def current_lock(self) -> LockInfo | None:
        # The holder creates the file, then writes it: give it a moment to finish.
        deadline = time.monotonic() + _LOCK_READ_TIMEOUT
        while True:
            try:
                data = read_regular(self._lock_path, _LOCK_LIMIT)
            except FileNotFoundError:
                return None
            except OSError as e:  # a FIFO or a device is never read: it could block
                raise _unreadable_lock(self._lock_path, _os_reason(e)) from None
            try:
                return LockInfo.from_json(_json_document(data))
            except ValueError as e:
                if time.monotonic() > deadline:
                    raise _unreadable_lock(self._lock_path, str(e)) from None
            time.sleep(0.01)

    # -- artifacts and logs --------------------------------------------------------------

    def artifacts(self) -> LocalArtifactStore:
        return LocalArtifactStore(self.root / "artifacts")

    def logs(self) -> LocalLogStore:
        return LocalLogStore(self.root / "logs")


class LocalArtifactStore:
    """Artifacts as folders `<root>/<key>`; work in progress lives in `<root>/.tmp/`.

    Keys are `prefix/name` (see `artifact_key`); parts never start with a dot, so nothing
    under `.tmp/` is ever mistaken for an artifact.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._tmp = root / ".tmp"

    def has(self, key: str) -> bool:
        return self.local_path(key).is_dir()

    def local_path(self, key: str) -> Path:
        return self.root / _check_key(key)

    def location(self, key: str) -> str:
        return str(self.local_path(key))

    @_writes("the artifact store")
    def temp_dir(self, key: str) -> Path:
        self._tmp.mkdir(parents=True, exist_ok=True)
        import tempfile  # the writing paths' modules, imported when they write (a plan does not)

        return Path(tempfile.mkdtemp(prefix=_check_key(key).replace("/", "_") + ".", dir=self._tmp))

    @_writes("the artifact store")
    def commit(self, key: str, tmp_dir: Path) -> None:
        dest = self.local_path(key)
        if Path(tmp_dir).resolve().parent != self._tmp.resolve():
            raise ValueError(f"{tmp_dir} was not made by temp_dir() of this store")
        dest.parent.mkdir(parents=True, exist_ok=True)
        self._move_aside(dest)  # replacing: the old one goes first, then the new one lands
        os.rename(tmp_dir, dest)
        _fsync_dir(dest.parent)

    @_writes("the artifact store")
    def delete(self, key: str) -> None:
        self._move_aside(self.local_path(key))

    def keys(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(
            f"{prefix.name}/{child.name}"
            for prefix in self.root.iterdir()
            if prefix.is_dir() and not prefix.name.startswith(".")
            for child in prefix.iterdir()
            if child.is_dir() and not child.name.startswith(".")
        )

    @_writes("the artifact store")
    def sweep(self) -> int:
        return clear_folder(self._tmp)

    def _move_aside(self, path: Path) -> None:
        """Remove `path` by renaming it into `.tmp/` first, so it vanishes in one step."""
        if not path.exists():
            return
        self._tmp.mkdir(parents=True, exist_ok=True)
        import shutil
        import uuid

        trash = self._tmp / f"trash-{uuid.uuid4().hex}"
        os.rename(path, trash)
        shutil.rmtree(trash, ignore_errors=True)


class LocalLogStore:
    """One file per block: `<root>/<address>.log`."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @_writes("the logs")
    def path(self, address: str) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        return self._file(address)

    def flush(self, address: str) -> None:
        """Nothing to do: writers append to the log itself."""

    def read(self, address: str) -> str:
        data = _read_backend_file(self._file(address))
        return "" if data is None else data.decode("utf-8", errors="replace")

    def _file(self, address: str) -> Path:
        """`<root>/<address>.log`; an instance's key is percent-encoded (`aggregate.mean%5B%22x%22%5D.log`),
        so no key can leave the folder, and plain addresses keep their names."""
        name = urllib.parse.quote(address, safe="_.-")
        if not _ADDRESS_RE.match(address.split("[", 1)[0]) or name.startswith("."):
            raise ValueError(f"not a block address: {address!r}")
        return self.root / f"{name}.log"


# -- files ----------------------------------------------------------------------------------


def clear_folder(folder: Path) -> int:
    """Remove everything inside `folder` (work in progress a killed build left); how many."""
    if not folder.is_dir():
        return 0
    import shutil

    left = list(folder.iterdir())
    for path in left:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return len(left)


def _atomic_write(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so that readers see the old file or the new, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _journal_tail(fd: int, size: int) -> tuple[int, bytes]:
    """(end of the last complete line, that line) of the journal open at `fd`.

    Reads backwards from the end, so the cost is the size of the last line, not the file.
    """
    end = _rfind_newline(fd, size) + 1
    if end == 0:
        return 0, b""
    start = _rfind_newline(fd, end - 1) + 1
    return end, os.pread(fd, end - 1 - start, start)


def _rfind_newline(fd: int, before: int) -> int:
    """The offset of the last b"\\n" before offset `before`, or -1."""
    pos = before
    while pos > 0:
        start = max(0, pos - _CHUNK)
        i = os.pread(fd, pos - start, start).rfind(b"\n")
        if i >= 0:
            return start + i
        pos = start
    return -1


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _fsync_dir(path: Path) -> None:
    """Make a rename or create in `path` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _file_ident(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def _dumps_document(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


def _check_key(key: str) -> str:
    if not _KEY_RE.match(key):
        raise ValueError(f"not an artifact key (PREFIX/NAME): {key!r}")
    return key


def _read_backend_file(path: Path) -> bytes | None:
    """The bytes of a backend file, None when there is none. A FIFO or a device in its place is
    never read (that could block): it is an error naming the file, like one that cannot be read."""
    try:
        return read_regular(path)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise StateError(f"Cannot read {path.name}", detail=f"{path}: {_os_reason(e)}.",
                         hint=f"Make {path} a readable regular file, or move it aside.") from None


def _json_document(data: bytes) -> Any:
    """JSON from the backend, as plain data: UTF-8 only, and nesting too deep is a ValueError."""
    try:
        return json.loads(data.decode("utf-8"))
    except RecursionError:
        raise ValueError("values nested too deep") from None


def _os_reason(e: OSError) -> str:
    if isinstance(e, NotRegularFile):
        return f"it is {e.what}, not a regular file"
    return e.strerror or str(e)


# -- errors ---------------------------------------------------------------------------------


def _corrupt(path: Path, why: str) -> StateError:
    return StateError(
        f"The state file {path.name} is corrupt",
        detail=f"{path}: {why}",
        hint=(
            f"Restore {path} from a backup or version control. To start over from an empty "
            f"state instead (every block will be built again), move it aside: mv {path} {path}.bak"
        ),
    )


def _journal_without_state(state: Path, journal: Path) -> StateError:
    return StateError(
        "The state file is missing but its journal is not",
        detail=f"{journal} exists, but {state} does not; it was probably deleted by hand.",
        hint=f"Restore {state} from a backup, or remove {journal} to start from an empty state.",
    )


def _unreadable_lock(path: Path, why: str) -> LockError:
    return LockError(
        "The state is locked, but the lock file is unreadable",
        detail=f"{path}: {why}",
        hint=f"If no mlp command is running, remove it: rm {path}",
    )
