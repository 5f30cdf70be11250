"""`ObjectBackend`: the `Backend` protocol on any `ObjectStore` (S3, GCS, Azure Blob).

Under the backend's prefix:

    state.json                        the state, written whole (one PUT replaces it atomically)
    journal/<serial, 20 digits>.json  one `JournalEntry` per durable change since state.json
    state.lock                        the lock object: the holder's `LockInfo`
    artifacts/<key>/<files>           an artifact's files (see artifacts.py)
    artifacts/<key>.manifest.json     written last: the key exists once its manifest does
    logs/<address>.log                a block's log, uploaded by `LogStore.flush`

Recording a block costs one conditional PUT of its journal object, whatever the size of the
state: the backend remembers the serial it last saw (from `read_state`, or its own writes), and
the object is created only if absent, so two writers can never take the same serial. The lock
makes the remembered serial current: taking it forgets the serial, and the next change reads
the state once (an apply has read it already, to plan).

Crash safety: `write_state` replaces state.json, then deletes the journal objects it folded
in. Reading replays only entries newer than state.json, so a crash between the two steps loses
nothing and replays nothing twice. Entries replayed must follow state.json without a gap; a
gap means a writer was compacting while we read, and the read starts again.

Nothing read from the store runs code: objects are JSON, parsed by the model's checked parsers;
a corrupt object is a StateError naming it and the fix.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlp.errors import LockError, StateError
from mlp.state.backends.artifacts import CachedArtifactStore, ProgressHook
from mlp.state.backends.logs import ObjectLogStore
from mlp.state.backends.objects import HeldLock, ObjectStore, parallel, parse_json
from mlp.state.lock import LockInfo, lock_error
from mlp.state.model import BlockRecord, JournalEntry, State

STATE = "state.json"
JOURNAL = "journal/"
LOCK = "state.lock"
_JOURNAL_RE = re.compile(r"^journal/(\d{20})\.json$")
_READ_ATTEMPTS = 5
_APPEND_ATTEMPTS = 5


def journal_name(serial: int) -> str:
    """The journal object of the entry with this serial (zero-padded: listing sorts them)."""
    return f"{JOURNAL}{serial:020d}.json"


class ObjectBackend:
    """State, lock, artifacts and logs of one app under one prefix of an object store.

    `cache` is the local cache folder: `artifacts/` (content-addressed, shareable between
    apps) and `logs/<owner>/`, where the owner is a digest of the store's location, so that
    apps sharing a cache keep their logs and builds in progress apart. `on_progress` hears
    about every artifact transfer.
    """

    lock_write_wait = 2.0  # seconds an empty (just leased) lock blob may take to name its holder

    def __init__(self, store: ObjectStore, cache: Path, *, on_progress: ProgressHook | None = None) -> None:
        self.store = store
        self.name = store.kind
        self.cache = Path(cache)
        self.owner = hashlib.sha256(store.url("").encode()).hexdigest()[:16]
        self._on_progress = on_progress
        self._serial: int | None = None  # the last serial seen, while it is known to be current
        self._stored = False  # whether state.json existed when the serial was seen
        self._journal: list[str] = []  # the journal objects the last read saw
        self._artifacts: CachedArtifactStore | None = None
        self._logs: ObjectLogStore | None = None
        self._mutex = threading.RLock()

    def __repr__(self) -> str:
        return f"ObjectBackend({self.store.url('')!r})"

    # -- state ---------------------------------------------------------------------------

    def read_state(self) -> State:
        state, _ = self._read()
        return state

    def _read(self) -> tuple[State, bool]:
        """(the state with the journal replayed, whether state.json exists)."""
        with self._mutex:
            return self._read_unlocked()

    def _read_unlocked(self) -> tuple[State, bool]:
        gap = ""
        for _ in range(_READ_ATTEMPTS):
            base = self._read_state_object()
            names = sorted(n for n in self.store.list(JOURNAL) if _JOURNAL_RE.match(n))
            if base is None and names:
                raise self._journal_without_state(names[0])
            state = base or State.new()
            newer = [n for n in names if _serial_of(n) > state.serial]
            entries = parallel(self._read_entry, newer)
            gap = _first_gap(state.serial, newer, entries)
            if gap:
                time.sleep(0.05)  # a writer is compacting: its new state.json is there or nearly
                continue
            for entry in entries:
                if entry is not None:
                    state = entry.apply(state)
            self._serial, self._stored, self._journal = state.serial, base is not None, names
            return state, base is not None
        raise StateError(
            "The state journal has a gap",
            detail=f"{self.store.url(gap)} is missing, but later journal entries are there.",
            hint="If no other mlp command is running, restore it from a backup; or, to lose the changes after it, "
                 f"delete the later ones under {self.store.url(JOURNAL)}",
        )

    def write_state(self, state: State) -> State:
        with self._mutex:
            return self._write_state(state)

    def _write_state(self, state: State) -> State:
        current, stored = self._read()
        if stored and current.lineage != state.lineage:
            raise StateError(
                "The state belongs to another app",
                detail=(f"{self.store.url(STATE)} has lineage {current.lineage}, "
                        f"but the state being written has lineage {state.lineage}."),
                hint="Check that the app folder and backend settings point at this app's state.",
            )
        written = state.with_serial(max(state.serial, current.serial if stored else 0) + 1)
        self.store.put(STATE, _dumps(written.to_json(), indent=2))
        self.store.delete_many(self._journal)  # all folded in: state.json is newer than each
        self._serial, self._stored, self._journal = written.serial, True, []
        return written

    def record_block(self, record: BlockRecord) -> None:
        self._append(lambda serial: JournalEntry.block(serial, record))

    def remove_block(self, address: str) -> None:
        self._append(lambda serial: JournalEntry.remove(serial, address))

    def set_output(self, key: str, value: Any | None) -> None:
        self._append(lambda serial: JournalEntry.output(serial, key, value))

    def _append(self, make: Callable[[int], JournalEntry]) -> None:
        """Create the journal object of the next serial; if another writer took that serial,
        catch up with what it wrote and take the next. The engine records from several
        threads: they take turns, so none wastes a request on a serial another just took."""
        with self._mutex:
            self._append_unlocked(make)

    def _append_unlocked(self, make: Callable[[int], JournalEntry]) -> None:
        if self._serial is None:
            self._read()
        if not self._stored:  # fix the lineage before the first entry
            self.store.put_if_absent(STATE, _dumps(State.new().to_json(), indent=2))
            self._read()
        for _ in range(_APPEND_ATTEMPTS):
            serial = (self._serial or 0) + 1
            if self.store.put_if_absent(journal_name(serial), _dumps(make(serial).to_json())):
                self._serial = serial
                self._journal.append(journal_name(serial))
                return
            self._read()
        raise StateError("The state kept changing while a change was being recorded",
                         detail=f"Another writer took the next journal serial under {self.store.url(JOURNAL)} "
                                f"{_APPEND_ATTEMPTS} times in a row.",
                         hint="Only one mlp command should write at a time: run it again once the others have finished.")

    def _read_state_object(self) -> State | None:
        data = self.store.get(STATE)
        if data is None:
            return None
        try:
            return State.from_json(parse_json(data))
        except json.JSONDecodeError as e:
            raise self._corrupt(STATE, f"line {e.lineno}, column {e.colno}: {e.msg}") from None
        except ValueError as e:  # UnicodeDecodeError too: raw bytes are never echoed
            raise self._corrupt(STATE, str(e)) from None

    def _read_entry(self, name: str) -> JournalEntry | None:
        """The entry in journal object `name`; None when it is gone (compacted meanwhile)."""
        data = self.store.get(name)
        if data is None:
            return None
        try:
            entry = JournalEntry.from_json(parse_json(data))
        except ValueError as e:
            raise self._corrupt(name, str(e)) from None
        if entry.serial != _serial_of(name):
            raise self._corrupt(name, f"it holds the entry of serial {entry.serial}")
        return entry

    # -- lock ----------------------------------------------------------------------------

    def lock(self, command: str) -> LockInfo:
        """Take the lock. The store decides atomically who creates (or leases) the lock object;
        looking first only spares the request when the lock is plainly held."""
        held = self.current_lock()
        if held is not None:
            raise lock_error(held)
        info = LockInfo.make(command)
        if not self.store.acquire_lock(LOCK, info.id, _dumps(info.to_json(), indent=2)):
            held = self.current_lock()
            if held is None:
                raise LockError("The state lock could not be taken",
                                detail=f"{self.store.url(LOCK)} kept appearing and disappearing.",
                                hint="Run the command again once the other mlp commands have finished.")
            raise lock_error(held)
        self._serial = None  # the state may have changed since we last read it
        return info

    def unlock(self, lock_id: str) -> None:
        found = self._read_lock()
        if found is None:
            raise StateError("The state is not locked",
                             detail=f"There is no lock to release: {self.store.url(LOCK)} is not held.")
        raw, held = found
        if held.id != lock_id:
            raise StateError(
                "The lock ID does not match",
                detail=f"The state lock is {held.describe()}. Its ID is {held.id}, not {lock_id}.",
                hint=f"If no mlp command is running, release it with: mlp state unlock {held.id}",
            )
        self.store.release_lock(LOCK, lock_id, raw)

    def current_lock(self) -> LockInfo | None:
        found = self._read_lock()
        return None if found is None else found[1]

    def _read_lock(self) -> tuple[HeldLock, LockInfo] | None:
        """The held lock object and its holder. S3 and GCS create the object with its content;
        an Azure lock blob is empty from its lease until the holder writes itself into it, a
        moment later: an empty lock is waited for, anything else unreadable is an error at once."""
        deadline = time.monotonic() + self.lock_write_wait
        while True:
            raw = self.store.read_lock(LOCK)
            if raw is None:
                return None
            if raw.data.strip() or time.monotonic() > deadline:
                try:
                    return raw, LockInfo.from_json(parse_json(raw.data))
                except ValueError as e:
                    raise self._unreadable_lock(str(e) if raw.data.strip() else "it is empty") from None
            time.sleep(0.02)

    # -- artifacts and logs --------------------------------------------------------------

    def artifacts(self) -> CachedArtifactStore:
        """One store per backend: its listing of the bucket is taken once and then kept."""
        with self._mutex:
            if self._artifacts is None:
                self._artifacts = CachedArtifactStore(self.store, self.cache / "artifacts", self.owner, self._on_progress)
            return self._artifacts

    def logs(self) -> ObjectLogStore:
        with self._mutex:
            if self._logs is None:
                self._logs = ObjectLogStore(self.store, self.cache / "logs" / self.owner)
            return self._logs

    # -- errors --------------------------------------------------------------------------

    def _corrupt(self, name: str, why: str) -> StateError:
        url = self.store.url(name)
        if name == STATE:
            return StateError(
                "The state file state.json is corrupt",
                detail=f"{url}: {why}",
                hint=(f"Restore {url} from a backup or an earlier version of the object. To start over from an "
                      f"empty state instead (every block will be built again), remove it: {self.store.removal_command(name)}"),
            )
        return StateError(
            f"The state journal entry {name} is corrupt",
            detail=f"{url}: {why}",
            hint=f"Restore it from a backup; or remove it, losing that one change: {self.store.removal_command(name)}",
        )

    def _journal_without_state(self, first: str) -> StateError:
        return StateError(
            "The state file is missing but its journal is not",
            detail=f"{self.store.url(first)} exists, but {self.store.url(STATE)} does not; it was probably deleted by hand.",
            hint=f"Restore {self.store.url(STATE)} from a backup, or remove everything under {self.store.url(JOURNAL)} "
                 "to start from an empty state.",
        )

    def _unreadable_lock(self, why: str) -> LockError:
        return LockError(
            "The state is locked, but the lock object is unreadable",
            detail=f"{self.store.url(LOCK)}: {why}",
            hint=f"If no mlp command is running, remove it: {self.store.removal_command(LOCK)}",
        )


def _dumps(doc: Any, indent: int | None = None) -> bytes:
    return (json.dumps(doc, indent=indent, sort_keys=True) + "\n").encode()


def _serial_of(name: str) -> int:
    match = _JOURNAL_RE.match(name)
    return int(match.group(1)) if match else 0


def _first_gap(base: int, names: list[str], entries: list[JournalEntry | None]) -> str:
    """The name of the first entry missing after serial `base` ("" when there is none): a
    listed object that was gone when read, or a serial skipped."""
    expected = base + 1
    for name, entry in zip(names, entries):
        if entry is None or _serial_of(name) != expected:
            return journal_name(expected)
        expected += 1
    return ""
