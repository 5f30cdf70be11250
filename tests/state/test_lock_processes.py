"""The state lock between real processes: contention, release, stale holders, races, crashes.

Children are `python -c` processes over the same `.mlp` folder. Every wait is bounded and
every child is killed in a `finally`, so a broken lock fails a test instead of hanging it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from mlp.errors import LockError, StateError
from mlp.state import LocalBackend, LockInfo
from mlp.state.testing import make_record

TIMEOUT = 20.0

# argv: root, workdir, mode. Modes: "hold" (lock, wait for release, unlock), "keep" (lock,
# wait for release, exit without unlocking), "crash" (lock, die at once), "race" (wait for
# ../go, try to lock, report; the winner then holds), "record" (append journal entries until killed), "churn" (append, and compact every fifth
# entry, until killed).
CHILD = r"""
import json, os, sys, time
from pathlib import Path
from mlp.errors import LockError
from mlp.state import LocalBackend
from mlp.state.testing import make_record

root, work, mode = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
backend = LocalBackend(root)

def report(name, text):
    tmp = work / (name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, work / name)

def wait_for(path):
    deadline = time.monotonic() + 60
    while not path.exists():
        if time.monotonic() > deadline:
            sys.exit("timed out waiting for %s" % path)
        time.sleep(0.005)

if mode == "record":
    n = 0
    while True:
        backend.record_block(make_record("raw_column.c%d" % n))
        n += 1
if mode == "churn":
    n = 0
    while True:
        n += 1
        backend.record_block(make_record("raw_column.c%d" % (n % 10), metrics={"n": n}))
        if n % 5 == 0:
            backend.write_state(backend.read_state())
if mode == "race":
    report("waiting", "")
    wait_for(work.parent / "go")
    try:
        info = backend.lock("mlp apply")
    except LockError:
        report("result", "locked")
        sys.exit(0)
    report("result", "ok")
else:
    info = backend.lock("mlp apply")
report("ready", json.dumps(info.to_json()))
if mode == "crash":
    os._exit(0)
wait_for(work / "release")
if mode in ("hold", "race"):
    backend.unlock(info.id)
"""


class Child:
    """A child process over `root`, talking through files in its own `work` folder."""

    def __init__(self, root: Path, work: Path, mode: str) -> None:
        work.mkdir(parents=True)
        self.work = work
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(root), str(work), mode],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_for(self, name: str) -> str:
        """The content of the file `name` once the child has written it."""
        deadline = time.monotonic() + TIMEOUT
        while not (self.work / name).exists():
            if self.proc.poll() is not None and not (self.work / name).exists():
                _, err = self.proc.communicate()
                pytest.fail(f"child exited ({self.proc.returncode}) before writing {name}: {err.decode()}")
            if time.monotonic() > deadline:
                pytest.fail(f"child did not write {name} within {TIMEOUT}s")
            time.sleep(0.005)
        return (self.work / name).read_text()

    def ready(self) -> LockInfo:
        return LockInfo.from_json(json.loads(self.wait_for("ready")))

    def release(self) -> None:
        (self.work / "release").write_text("")

    def finish(self) -> int:
        """Wait for the child to exit; its exit code (its stderr is printed on failure)."""
        _, err = self.proc.communicate(timeout=TIMEOUT)
        sys.stderr.write(err.decode())
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate(timeout=TIMEOUT)


@contextmanager
def children(root: Path, tmp_path: Path, *modes: str) -> Iterator[list[Child]]:
    started: list[Child] = []
    try:
        for n, mode in enumerate(modes):
            started.append(Child(root, tmp_path / f"child{n}", mode))
        yield started
    finally:
        for child in started:
            child.kill()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / ".mlp"


def test_second_process_is_told_who_holds_the_lock(root: Path, tmp_path: Path) -> None:
    backend = LocalBackend(root)
    with children(root, tmp_path, "hold") as [child]:
        held = child.ready()
        assert (held.pid, held.command) == (child.pid, "mlp apply")
        with pytest.raises(LockError) as e:
            backend.lock("mlp destroy")
        assert e.value.summary == "The state is locked"
        assert f"(pid {child.pid})" in e.value.detail
        assert "running `mlp apply`" in e.value.detail
        assert "no longer running" not in e.value.detail
        assert e.value.hint == f"If no mlp command is running, release it with: mlp state unlock {held.id}"
        child.release()
        assert child.finish() == 0
    info = backend.lock("mlp destroy")
    assert backend.current_lock() == info
    backend.unlock(info.id)


def test_unlock_with_the_id_takes_the_lock_from_its_holder(root: Path, tmp_path: Path) -> None:
    backend = LocalBackend(root)
    with children(root, tmp_path, "keep") as [child]:
        held = child.ready()
        with pytest.raises(StateError, match="The lock ID does not match"):
            backend.unlock("not-the-id")
        assert backend.current_lock() == held
        backend.unlock(held.id)  # what `mlp state unlock <id>` does
        info = backend.lock("mlp apply")
        assert backend.current_lock() == info
        child.release()
        assert child.finish() == 0
    assert backend.current_lock() == info  # the old holder exiting does not touch our lock


def test_a_lock_left_by_a_dead_process_is_taken_over(root: Path, tmp_path: Path) -> None:
    backend = LocalBackend(root)
    with children(root, tmp_path, "crash") as [child]:
        held = child.ready()
        assert child.finish() == 0  # it died holding the lock: the kernel dropped its OS lock
    assert backend.current_lock() == held  # the lock file is still there, naming the dead holder
    mine = backend.lock("mlp apply")
    assert backend.stale_taken == held
    assert backend.current_lock() == mine
    backend.unlock(mine.id)


def test_the_error_names_a_dead_holder_when_the_lock_file_is_all_that_is_left(root: Path) -> None:
    from mlp.state.lock import LockInfo, lock_error

    dead = LockInfo("abc", "host", 999_999_999, "me", "mlp apply", "2026-01-01T00:00:00Z")
    import socket

    dead = LockInfo("abc", socket.gethostname(), 999_999_999, "me", "mlp apply", "2026-01-01T00:00:00Z")
    err = lock_error(dead)
    assert f"Process {dead.pid} is no longer running on this host ({dead.host})" in err.detail


def test_exactly_one_of_many_racing_processes_gets_the_lock(root: Path, tmp_path: Path) -> None:
    with children(root, tmp_path, *["race"] * 8) as racers:
        for racer in racers:
            racer.wait_for("waiting")
        (tmp_path / "go").write_text("")
        results = [racer.wait_for("result") for racer in racers]
        assert sorted(results) == ["locked"] * 7 + ["ok"]
        winner = racers[results.index("ok")]
        assert LocalBackend(root).current_lock() == winner.ready()
        winner.release()
        assert [racer.finish() for racer in racers] == [0] * 8
    assert LocalBackend(root).current_lock() is None


def test_a_writer_killed_mid_journal_leaves_a_readable_state(root: Path, tmp_path: Path) -> None:
    LocalBackend(root).write_state(LocalBackend(root).read_state())
    with children(root, tmp_path, "record") as [child]:
        deadline = time.monotonic() + TIMEOUT
        while _journal_lines(root) < 200:
            assert child.proc.poll() is None, child.proc.communicate()[1].decode()
            assert time.monotonic() < deadline, "child did not record 200 blocks in time"
            time.sleep(0.01)
        os.kill(child.pid, signal.SIGKILL)
        child.proc.communicate(timeout=TIMEOUT)
    state = LocalBackend(root).read_state()
    complete = _journal_lines(root)
    assert (state.serial, len(state.blocks)) == (1 + complete, complete)
    LocalBackend(root).record_block(make_record("raw_column.after"))
    assert LocalBackend(root).read_state().serial == 2 + complete


def _journal_lines(root: Path) -> int:
    try:
        return (root / "state.journal").read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def test_readers_never_see_a_half_compacted_state(root: Path, tmp_path: Path) -> None:
    """A reader racing compactions only ever sees states that existed.

    The child records step n as block c{n % 10} with metrics {"n": n}, and compacts after
    every fifth step; so a real state holds steps m-9..m exactly, at a serial set by m.
    """
    LocalBackend(root).write_state(LocalBackend(root).read_state())
    reader = LocalBackend(root)
    seen: set[int] = set()
    with children(root, tmp_path, "churn") as [child]:
        deadline = time.monotonic() + TIMEOUT
        while len(seen) < 200 and time.monotonic() < deadline:
            assert child.proc.poll() is None, child.proc.communicate()[1].decode()
            state = reader.read_state()
            steps = sorted(record.metrics["n"] for record in state.blocks.values())
            m = steps[-1] if steps else 0
            assert steps == list(range(max(m - 9, 1), m + 1)), (state.serial, steps)
            # after step m: 1 + m + (m - 1) // 5; after the compaction at m % 5 == 0: one more
            valid = {1 + m + max(m - 1, 0) // 5} | ({2 + m + (m - 1) // 5} if m and m % 5 == 0 else set())
            assert state.serial in valid, (state.serial, m)
            seen.add(state.serial)
    assert len(seen) >= 200, "the reader saw too few states to have raced the writer"
