"""The conformance suite every state backend runs.

    run_conformance(lambda: LocalBackend(root))

`make_backend` must return a new backend instance over the *same*, initially empty,
storage on every call: some checks use two instances to act as two processes. Each
`check_*` function stands alone too, so a pytest module can parametrize over `CHECKS`
with fresh storage per check. Failures raise AssertionError with what was expected; the
suite does not need pytest, and works under `python -O`.

A backend that can be torn mid-write (a local journal) also passes `tear_journal`, which
simulates a crash in the middle of appending an entry. A backend whose storage is shared by
machines with their own local caches (s3, gcs, azurerm) also runs `SHARED_CHECKS`.
"""

from __future__ import annotations

import hashlib
import os
import socket
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from mlp.errors import LockError, StateError
from mlp.state.backend import ArtifactStore, Backend, artifact_key, locked
from mlp.state.model import BlockRecord, State, utc_now

BackendFactory = Callable[[], Backend]
Check = Callable[[BackendFactory], None]
E = TypeVar("E", bound=BaseException)


def make_record(address: str, version: int = 0, **changes: Any) -> BlockRecord:
    """A valid "done" record for `address`; `version` varies the fingerprint."""
    fingerprint = hashlib.sha256(f"{address}@{version}".encode()).hexdigest()
    fields: dict[str, Any] = {
        "address": address,
        "kind": address.partition(".")[0],
        "fingerprint": fingerprint,
        "status": "done",
        "artifact": artifact_key(fingerprint),
        "settings": {"function": "mean", "version": version},
        "extra": {},
        "inputs": {"source.iris": "0" * 64},
        "code": "builtin:mean@1",
        "metrics": {"value": 1.5, "rows": 150},
        "digest": hashlib.sha256(fingerprint.encode()).hexdigest(),
        "created_at": utc_now(),
        "updated_at": utc_now(),
    }
    return BlockRecord(**{**fields, **changes})


# -- state ------------------------------------------------------------------------------------


def check_empty_read(make_backend: BackendFactory) -> None:
    """Nothing stored: an empty state at serial 0, no lock, no artifacts."""
    backend = make_backend()
    state = backend.read_state()
    expect_equal((state.version, state.serial, dict(state.blocks), dict(state.outputs)), (1, 0, {}, {}), "empty state")
    expect_equal(str(uuid.UUID(state.lineage)), state.lineage, "lineage is a uuid")
    expect_equal(backend.current_lock(), None, "lock of empty storage")
    expect_equal(backend.artifacts().keys(), [], "artifact keys of empty storage")


def check_write_read_round_trip(make_backend: BackendFactory) -> None:
    """write_state stores everything, bumps the serial by one, and keeps the lineage."""
    backend = make_backend()
    before = backend.read_state()
    state = before.with_block(make_record("raw_column.age")).with_provider("local")
    state = state.with_output("api.iris", {"url": "http://127.0.0.1:8000", "port": 8000, "pid": 42})
    stored = backend.write_state(state)
    expect_equal(stored.serial, before.serial + 1, "serial after write_state")
    expect_equal(stored, state.with_serial(before.serial + 1), "write_state returns what it stored")
    expect_equal(make_backend().read_state(), stored, "state read back by another instance")
    again = backend.write_state(stored.with_block(make_record("aggregate.age_mean")))
    expect_equal(again.serial, stored.serial + 1, "serial after a second write_state")
    expect_equal((stored.lineage, again.lineage), (before.lineage, before.lineage), "lineage after writes")


def check_write_state_refuses_other_lineage(make_backend: BackendFactory) -> None:
    """A state of another lineage (another app) is never written over this one."""
    backend = make_backend()
    stored = backend.write_state(backend.read_state())
    error = expect_raises(StateError, lambda: backend.write_state(State.new()))
    expect_in(stored.lineage, error.detail, "lineage mismatch detail")
    expect_equal(backend.read_state(), stored, "state after a refused write")


def check_stale_write_moves_forward(make_backend: BackendFactory) -> None:
    """Writing a state read before some journal entries still makes the serial grow."""
    backend = make_backend()
    stale = backend.write_state(backend.read_state())
    backend.record_block(make_record("raw_column.late"))
    stored = backend.write_state(stale)
    expect_equal(stored.serial, stale.serial + 2, "serial of a stale write")
    expect_equal(backend.read_state(), stored, "state after a stale write")


def check_journal_changes(make_backend: BackendFactory) -> None:
    """record_block, remove_block and set_output are durable and each bumps the serial by one."""
    backend = make_backend()
    start = backend.read_state()
    steps: list[tuple[Callable[[], None], Callable[[State], State]]] = [
        (lambda: backend.record_block(make_record("raw_column.a")), lambda s: s.with_block(make_record("raw_column.a"))),
        (lambda: backend.record_block(make_record("raw_column.b")), lambda s: s.with_block(make_record("raw_column.b"))),
        (lambda: backend.remove_block("raw_column.a"), lambda s: s.without_block("raw_column.a")),
        (lambda: backend.set_output("api.iris", {"port": 8000}), lambda s: s.with_output("api.iris", {"port": 8000})),
        (lambda: backend.set_output("api.iris", None), lambda s: s.with_output("api.iris", None)),
    ]
    expected = start
    for n, (act, change) in enumerate(steps, start=1):
        act()
        expected = change(expected)
        seen = make_backend().read_state()
        expect_equal(seen.serial, start.serial + n, f"serial after journal change {n}")
        expect_equal((dict(seen.blocks), dict(seen.outputs)), (dict(expected.blocks), dict(expected.outputs)), f"state after journal change {n}")
    expect_equal(backend.read_state().lineage, make_backend().read_state().lineage, "lineage fixed by the first change")


def check_record_replaces(make_backend: BackendFactory) -> None:
    """Recording an address again replaces its record; the latest one wins."""
    backend = make_backend()
    backend.record_block(make_record("model.iris", 1))
    failed = make_record("model.iris", 2, status="failed", artifact=None)
    backend.record_block(failed)
    expect_equal(make_backend().read_state().blocks["model.iris"], failed, "record after a replacement")


def check_write_state_compacts(make_backend: BackendFactory) -> None:
    """write_state folds the journal in; later entries continue from its serial."""
    backend = make_backend()
    for name in ("x", "y", "z"):
        backend.record_block(make_record(f"raw_column.{name}"))
    current = backend.read_state()
    stored = backend.write_state(current)
    expect_equal(make_backend().read_state(), stored, "state after compaction")
    backend.record_block(make_record("raw_column.w"))
    after = make_backend().read_state()
    expect_equal(after.serial, stored.serial + 1, "serial of the first entry after compaction")
    expect_equal(sorted(after.blocks), sorted([*stored.blocks, "raw_column.w"]), "blocks after compaction")


def check_torn_journal(make_backend: BackendFactory, tear_journal: Callable[[], None]) -> None:
    """A crash mid-append loses only that entry; the next append works."""
    backend = make_backend()
    backend.record_block(make_record("raw_column.kept"))
    before = backend.read_state()
    tear_journal()
    expect_equal(make_backend().read_state(), before, "state after a torn append")
    backend.record_block(make_record("raw_column.next"))
    after = make_backend().read_state()
    expect_equal(after.serial, before.serial + 1, "serial after appending past a torn entry")
    expect_in("raw_column.next", after.blocks, "blocks after appending past a torn entry")
    expect_in("raw_column.kept", after.blocks, "blocks after appending past a torn entry")


# -- lock -------------------------------------------------------------------------------------


def check_lock_unlock(make_backend: BackendFactory) -> None:
    """The lock excludes a second instance, names its holder, and needs its id to release."""
    first, second = make_backend(), make_backend()
    info = first.lock("mlp apply")
    expect_equal((info.host, info.pid, info.command), (socket.gethostname(), os.getpid(), "mlp apply"), "lock info")
    expect_equal(second.current_lock(), info, "lock seen by another instance")
    error = expect_raises(LockError, lambda: second.lock("mlp destroy"))
    expect_equal(error.summary, "The state is locked", "lock error summary")
    for part in (info.host, f"pid {info.pid}", "`mlp apply`", info.created, info.id):
        expect_in(part, error.detail, "lock error detail")
    expect_equal(error.hint, f"If no mlp command is running, release it with: mlp state unlock {info.id}", "hint")
    wrong = expect_raises(StateError, lambda: second.unlock(str(uuid.uuid4())))
    expect_in(f"pid {info.pid}", wrong.detail, "wrong-id unlock detail")
    expect_equal(first.current_lock(), info, "lock after a wrong-id unlock")
    second.unlock(info.id)  # anyone with the id may release it (`mlp state unlock`)
    expect_equal(first.current_lock(), None, "lock after unlock")
    expect_raises(StateError, lambda: first.unlock(info.id))
    again = second.lock("mlp apply")
    second.unlock(again.id)


def check_locked_releases(make_backend: BackendFactory) -> None:
    """`locked` holds the lock for its body and releases it on success and on failure."""
    backend = make_backend()
    with locked(backend, "mlp apply") as info:
        expect_equal(make_backend().current_lock(), info, "lock inside locked()")
    expect_equal(backend.current_lock(), None, "lock after locked()")

    def fail_inside() -> None:
        with locked(backend, "mlp apply"):
            raise KeyError("boom")

    expect_raises(KeyError, fail_inside)
    expect_equal(backend.current_lock(), None, "lock after a failing locked() body")


# -- artifacts and logs -----------------------------------------------------------------------


def check_artifacts(make_backend: BackendFactory) -> None:
    """Artifacts appear whole on commit, can be replaced, and disappear on delete."""
    store, other = make_backend().artifacts(), make_backend().artifacts()
    key = artifact_key(make_record("model.iris", 7).fingerprint)
    _commit(store, key, "v1", previous=None)
    expect_equal((other.has(key), key in other.keys()), (True, True), "artifact seen by another instance")
    expect_equal(_content(other, key), "v1", "artifact content")
    _commit(store, key, "v2", previous="v1")
    expect_equal(_content(other, key), "v2", "replaced artifact content")
    store.delete(key)
    expect_equal((store.has(key), key in store.keys(), key in other.keys()), (False, False, False), "artifact after delete")
    # `has` may answer from a listing taken once per store (a planner asks about every key):
    # a store opened after the delete must see it.
    expect_equal(make_backend().artifacts().has(key), False, "artifact after delete, seen by a store opened since")
    store.delete(key)  # deleting what is not there is not an error


def check_sweep(make_backend: BackendFactory) -> None:
    """Work in progress that was never committed is swept away; committed artifacts stay."""
    store = make_backend().artifacts()
    kept = artifact_key(make_record("model.kept", 1).fingerprint)
    _commit(store, kept, "kept", previous=None)
    dead = store.temp_dir(artifact_key(make_record("model.killed", 1).fingerprint))
    (dead / "part-0.parquet").write_text("half written")
    expect_equal(make_backend().artifacts().sweep(), 1, "work in progress swept")
    expect_equal(dead.exists(), False, "the dead build's folder after a sweep")
    expect_equal((store.keys(), _content(store, kept)), ([kept], "kept"), "committed artifacts after a sweep")
    expect_equal(store.sweep(), 0, "a second sweep")
    store.delete(kept)


def _commit(store: ArtifactStore, key: str, content: str, previous: str | None) -> None:
    """Build `content` under `key`; until commit, readers see only `previous`."""
    tmp = store.temp_dir(key)
    (tmp / "model.txt").write_text(content)
    expect_equal(store.has(key), previous is not None, "has() before commit")
    expect_equal(key in store.keys(), previous is not None, "key listed before commit")
    if previous is not None:
        expect_equal(_content(store, key), previous, "content before commit")
    store.commit(key, tmp)
    expect_equal((store.has(key), key in store.keys()), (True, True), "artifact after commit")
    expect_equal(tmp.exists(), False, "temp folder after commit")


def _content(store: ArtifactStore, key: str) -> str:
    return (store.local_path(key) / "model.txt").read_text()


def check_logs(make_backend: BackendFactory) -> None:
    """A block's log is a file writers append to; reading returns it whole."""
    logs = make_backend().logs()
    expect_equal(logs.read("model.nothing_yet"), "", "log of a block that never ran")
    for line in ("epoch 1 loss=0.9\n", "epoch 2 loss=0.5\n"):
        with logs.path("model.iris").open("a", encoding="utf-8") as f:
            f.write(line)
    expect_equal(make_backend().logs().read("model.iris"), "epoch 1 loss=0.9\nepoch 2 loss=0.5\n", "log content")


CHECKS: tuple[Check, ...] = (
    check_empty_read,
    check_write_read_round_trip,
    check_write_state_refuses_other_lineage,
    check_stale_write_moves_forward,
    check_journal_changes,
    check_record_replaces,
    check_write_state_compacts,
    check_lock_unlock,
    check_locked_releases,
    check_artifacts,
    check_sweep,
    check_logs,
)


def run_conformance(make_backend: BackendFactory, tear_journal: Callable[[], None] | None = None) -> None:
    """Run every check, in order, on one storage (which must start empty)."""
    for check in CHECKS:
        check(make_backend)
    if tear_journal is not None:
        check_torn_journal(make_backend, tear_journal)


# -- shared storage: one bucket, machines with their own local caches -------------------------
#
# A remote backend is used from several machines, each with its own local cache. These checks
# take `make_backend(cache)`: a new instance over the same storage whose cache is the folder
# `cache`; `folder` is an empty scratch folder for caches and builds.

CachedFactory = Callable[[Path], Backend]
SharedCheck = Callable[[CachedFactory, Path], None]


def check_artifact_in_another_cache(make_backend: CachedFactory, folder: Path) -> None:
    """An artifact committed on one machine is seen, and downloaded whole, on another."""
    here, there = make_backend(folder / "cache-here").artifacts(), make_backend(folder / "cache-there").artifacts()
    key = artifact_key(make_record("model.shared", 1).fingerprint)
    tmp = here.temp_dir(key)
    files = {"bundle/saved_model.pb": b"\x00\x01model", "bundle/variables/v.index": b"idx", "meta.json": b"{}"}
    for rel, data in files.items():
        (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp / rel).write_bytes(data)
    (tmp / "bundle" / "assets").mkdir()  # an empty folder is part of the artifact too
    expect_equal(there.has(key), False, "has() on another machine before commit")
    here.commit(key, tmp)
    seen = make_backend(folder / "cache-there").artifacts()
    expect_equal((seen.has(key), seen.keys()), (True, [key]), "artifact seen on another machine")
    path = seen.local_path(key)
    got = {p.relative_to(path).as_posix(): p.read_bytes() for p in path.rglob("*") if p.is_file()}
    expect_equal(got, files, "files downloaded on another machine")
    expect_equal((path / "bundle" / "assets").is_dir(), True, "empty folder downloaded")
    expect_equal(path.is_relative_to(folder / "cache-there"), True, "download lands in that machine's cache")


def check_log_in_another_cache(make_backend: CachedFactory, folder: Path) -> None:
    """A block's log is in the backend once flushed, and readable from another machine."""
    logs = make_backend(folder / "cache-here").logs()
    with logs.path("model.iris").open("a", encoding="utf-8") as f:
        f.write("epoch 1 loss=0.9\n")
    expect_equal(make_backend(folder / "cache-there").logs().read("model.iris"), "", "log before flush")
    logs.flush("model.iris")
    expect_equal(make_backend(folder / "cache-there").logs().read("model.iris"), "epoch 1 loss=0.9\n",
                 "log read on another machine")


SHARED_CHECKS: tuple[SharedCheck, ...] = (check_artifact_in_another_cache, check_log_in_another_cache)


# -- expectations (AssertionError with a message; no pytest needed) ---------------------------


def expect_equal(actual: object, expected: object, what: str) -> None:
    if actual != expected:
        raise AssertionError(f"{what}: expected {expected!r}, got {actual!r}")


def expect_in(part: object, whole: Any, what: str) -> None:
    if part not in whole:
        raise AssertionError(f"{what}: expected {part!r} in {whole!r}")


def expect_raises(kind: type[E], action: Callable[[], object]) -> E:
    try:
        action()
    except kind as e:
        return e
    raise AssertionError(f"expected {kind.__name__}, nothing was raised")
