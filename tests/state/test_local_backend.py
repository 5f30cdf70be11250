"""The local backend: the conformance suite, then what only a folder on disk can show."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mlp.errors import LockError, StateError
from mlp.state import BlockRecord, LocalBackend, LockInfo, State, artifact_key
from mlp.state.lock import ago
from mlp.state.model import JournalEntry
from mlp.state.testing import (
    CHECKS,
    Check,
    check_journal_changes,
    check_lock_unlock,
    check_torn_journal,
    make_record,
    run_conformance,
)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / ".mlp"


def tear(root: Path) -> None:
    """What a crash in the middle of an append leaves: half a line, no newline."""
    with (root / "state.journal").open("ab") as f:
        f.write(b'{"op": "block", "record": {"address": "raw_column.to')


def files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


# -- conformance --------------------------------------------------------------------------------


@pytest.mark.parametrize("check", CHECKS, ids=[c.__name__ for c in CHECKS])
def test_conformance(check: Check, root: Path) -> None:
    check(lambda: LocalBackend(root))


def test_conformance_torn_journal(root: Path) -> None:
    check_torn_journal(lambda: LocalBackend(root), lambda: tear(root))


def test_conformance_all_checks_on_one_storage(root: Path) -> None:
    run_conformance(lambda: LocalBackend(root), tear_journal=lambda: tear(root))


class LockWithoutExclusion(LocalBackend):
    """Broken on purpose: takes the lock even when someone holds it."""

    def lock(self, command: str) -> LockInfo:
        info = LockInfo.make(command)
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "state.lock").write_text(json.dumps(info.to_json()))
        return info


class ForgetfulJournal(LocalBackend):
    """Broken on purpose: record_block stores nothing."""

    def record_block(self, record: BlockRecord) -> None:
        pass


@pytest.mark.parametrize(
    ("broken", "check", "message"),
    [
        (LockWithoutExclusion, check_lock_unlock, "expected LockError, nothing was raised"),
        (ForgetfulJournal, check_journal_changes, "serial after journal change 1: expected 1, got 0"),
    ],
    ids=["lock_without_exclusion", "forgetful_journal"],
)
def test_conformance_catches_broken_backends(root: Path, broken: type[LocalBackend], check: Check, message: str) -> None:
    with pytest.raises(AssertionError) as e:
        check(lambda: broken(root))
    assert str(e.value) == message


# -- layout and atomicity -----------------------------------------------------------------------


def test_reading_creates_nothing(root: Path) -> None:
    backend = LocalBackend(root)
    backend.read_state()
    backend.current_lock()
    assert (backend.artifacts().keys(), backend.logs().read("model.iris")) == ([], "")
    assert not root.exists()


def test_state_json_is_sorted_pretty_json_and_leaves_no_temp_files(root: Path) -> None:
    backend = LocalBackend(root)
    state = State.new().with_block(make_record("raw_column.b")).with_block(make_record("raw_column.a"))
    stored = backend.write_state(state)
    text = (root / "state.json").read_text()
    doc = json.loads(text)
    assert list(doc) == ["blocks", "lineage", "outputs", "provider", "serial", "version"]
    assert list(doc["blocks"]) == ["raw_column.a", "raw_column.b"]
    assert (doc["serial"], doc["lineage"], text[-1]) == (1, stored.lineage, "\n")
    assert files(root) == ["state.json"]


def test_failed_write_keeps_the_previous_state(root: Path) -> None:
    backend = LocalBackend(root)
    stored = backend.write_state(State.new().with_block(make_record("raw_column.a")))
    before = (root / "state.json").read_bytes()
    bad = stored.with_block(make_record("raw_column.b", metrics={"value": object()}))
    with pytest.raises(TypeError):
        backend.write_state(bad)
    assert (root / "state.json").read_bytes() == before
    assert files(root) == ["state.json"]
    assert backend.read_state() == stored


def test_failed_record_leaves_the_journal_untouched(root: Path) -> None:
    backend = LocalBackend(root)
    backend.record_block(make_record("raw_column.a"))
    before = (root / "state.journal").read_bytes()
    with pytest.raises(TypeError):
        backend.record_block(make_record("raw_column.b", metrics={"value": object()}))
    assert (root / "state.journal").read_bytes() == before
    assert backend.read_state().serial == 1


def test_a_stray_temp_file_from_a_crashed_write_is_ignored(root: Path) -> None:
    backend = LocalBackend(root)
    stored = backend.write_state(State.new())
    (root / ".state.json.x1y2.tmp").write_text('{"half": ')
    assert LocalBackend(root).read_state() == stored


def test_crash_between_state_write_and_journal_discard_replays_nothing_twice(root: Path) -> None:
    backend = LocalBackend(root)
    for name in ("a", "b", "c"):
        backend.record_block(make_record(f"raw_column.{name}"))
    journal = (root / "state.journal").read_bytes()
    stored = backend.write_state(backend.read_state().without_block("raw_column.b"))
    (root / "state.journal").write_bytes(journal)  # as if we crashed before discarding it
    assert LocalBackend(root).read_state() == stored
    backend.record_block(make_record("raw_column.d"))
    after = LocalBackend(root).read_state()
    assert after.serial == stored.serial + 1
    assert sorted(after.blocks) == ["raw_column.a", "raw_column.c", "raw_column.d"]


def test_first_record_fixes_the_lineage(root: Path) -> None:
    backend = LocalBackend(root)
    assert backend.read_state().lineage != backend.read_state().lineage  # nothing stored yet
    backend.record_block(make_record("raw_column.a"))
    first, second = backend.read_state(), LocalBackend(root).read_state()
    assert (first.serial, first.lineage) == (1, second.lineage)
    assert json.loads((root / "state.json").read_text())["serial"] == 0


def test_torn_line_is_cut_off_by_the_next_append(root: Path) -> None:
    backend = LocalBackend(root)
    backend.record_block(make_record("raw_column.a"))
    tear(root)
    backend.record_block(make_record("raw_column.b"))
    lines = (root / "state.journal").read_bytes().split(b"\n")
    assert lines[-1] == b""
    assert [json.loads(line)["serial"] for line in lines[:-1]] == [1, 2]


def test_record_block_appends_and_never_rewrites_state_json(root: Path) -> None:
    backend = LocalBackend(root)
    backend.write_state(State.new())
    state_stat = os.stat(root / "state.json")
    sizes: list[int] = [0]
    prefixes: list[bytes] = []
    inodes: set[int] = set()
    for n in range(1000):
        backend.record_block(make_record(f"raw_column.c{n}"))
        journal_stat = os.stat(root / "state.journal")
        inodes.add(journal_stat.st_ino)  # appended in place: never replaced by another file
        assert journal_stat.st_size > sizes[-1]
        sizes.append(journal_stat.st_size)
        if n in (0, 499):
            prefixes.append((root / "state.journal").read_bytes())
        now = os.stat(root / "state.json")
        assert (now.st_ino, now.st_mtime_ns, now.st_size) == (state_stat.st_ino, state_stat.st_mtime_ns, state_stat.st_size)
    journal = (root / "state.journal").read_bytes()
    assert all(journal.startswith(prefix) for prefix in prefixes)
    lines = journal.split(b"\n")[:-1]
    assert [json.loads(line)["serial"] for line in lines] == list(range(2, 1002))
    # each append adds exactly one line, of one record's size, whatever the journal holds
    growth = [b - a for a, b in zip(sizes, sizes[1:], strict=False)]
    assert growth == [len(line) + 1 for line in lines]
    assert len(inodes) == 1
    state = LocalBackend(root).read_state()
    assert (state.serial, len(state.blocks)) == (1001, 1000)


# -- corrupt storage ----------------------------------------------------------------------------

VALID_RECORD = make_record("raw_column.age").to_json()


def state_doc(**changes: object) -> str:
    doc = {"version": 1, "lineage": "2b9c6f0e-0000-4000-8000-000000000000", "serial": 3, "provider": None, "blocks": {}, "outputs": {}}
    return json.dumps({**doc, **changes})


CORRUPT_STATES = [
    ("not_json", "{not json", "line 1, column 2: Expecting property name enclosed in double quotes"),
    ("empty", "", "line 1, column 1: Expecting value"),
    ("not_an_object", "[1, 2]", "state: expected an object, got list"),
    ("missing_lineage", json.dumps({"version": 1, "serial": 0, "blocks": {}, "outputs": {}}), "state: missing field 'lineage'"),
    ("serial_not_int", state_doc(serial="3"), "state: field 'serial' must be an integer, got '3'"),
    ("newer_version", state_doc(version=2), "state format version 2 is not supported (this mlp reads version 1)"),
    (
        "bad_fingerprint",
        state_doc(blocks={"raw_column.age": {**VALID_RECORD, "fingerprint": "abc"}}),
        "raw_column.age: fingerprint must be 64 hex characters, got 'abc'",
    ),
    (
        "bad_status",
        state_doc(blocks={"raw_column.age": {**VALID_RECORD, "status": "running"}}),
        "raw_column.age: status must be one of ['done', 'failed'], got 'running'",
    ),
    (
        "misfiled_block",
        state_doc(blocks={"raw_column.other": VALID_RECORD}),
        "block raw_column.other: its record says address 'raw_column.age'",
    ),
    (
        "record_missing_field",
        state_doc(blocks={"raw_column.age": {k: v for k, v in VALID_RECORD.items() if k != "metrics"}}),
        "block raw_column.age: missing field 'metrics'",
    ),
]


@pytest.mark.parametrize(("text", "why"), [c[1:] for c in CORRUPT_STATES], ids=[c[0] for c in CORRUPT_STATES])
def test_corrupt_state_json_names_the_file_and_the_fix(root: Path, text: str, why: str) -> None:
    root.mkdir()
    path = root / "state.json"
    path.write_text(text)
    with pytest.raises(StateError) as e:
        LocalBackend(root).read_state()
    assert (e.value.summary, e.value.detail) == ("The state file state.json is corrupt", f"{path}: {why}")
    assert e.value.hint == (
        f"Restore {path} from a backup or version control. To start over from an empty "
        f"state instead (every block will be built again), move it aside: mv {path} {path}.bak"
    )


CORRUPT_JOURNALS = [
    ("garbage_line", b"garbage\n", "line 1: Expecting value: line 1 column 1 (char 0)"),
    ("unknown_op", b'{"serial": 4, "op": "explode"}\n', "line 1: journal entry 4: unknown op 'explode'"),
    ("bad_middle_line", b'{"serial": 4, "op": "remove", "address": "a.b"}\n{oops\n', "line 2: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
]


@pytest.mark.parametrize(("journal", "why"), [c[1:] for c in CORRUPT_JOURNALS], ids=[c[0] for c in CORRUPT_JOURNALS])
def test_corrupt_journal_names_the_file_and_line(root: Path, journal: bytes, why: str) -> None:
    LocalBackend(root).write_state(State.new())
    path = root / "state.journal"
    path.write_bytes(journal)
    with pytest.raises(StateError) as e:
        LocalBackend(root).read_state()
    assert (e.value.summary, e.value.detail) == ("The state file state.journal is corrupt", f"{path}: {why}")


def test_journal_without_state_json(root: Path) -> None:
    backend = LocalBackend(root)
    backend.record_block(make_record("raw_column.a"))
    (root / "state.json").unlink()
    with pytest.raises(StateError) as e:
        backend.read_state()
    assert (e.value.summary, e.value.detail, e.value.hint) == (
        "The state file is missing but its journal is not",
        f"{root / 'state.journal'} exists, but {root / 'state.json'} does not; it was probably deleted by hand.",
        f"Restore {root / 'state.json'} from a backup, or remove {root / 'state.journal'} to start from an empty state.",
    )


def test_unreadable_lock_file(root: Path) -> None:
    root.mkdir()
    (root / "state.lock").write_text("")
    with pytest.raises(LockError) as e:
        LocalBackend(root).lock("mlp apply")
    assert (e.value.summary, e.value.detail, e.value.hint) == (
        "The state is locked, but the lock file is unreadable",
        f"{root / 'state.lock'}: Expecting value: line 1 column 1 (char 0)",
        f"If no mlp command is running, remove it: rm {root / 'state.lock'}",
    )


# -- lock file, artifacts, logs -----------------------------------------------------------------


def test_lock_file_holds_the_lock_info(root: Path) -> None:
    backend = LocalBackend(root)
    info = backend.lock("mlp apply")
    assert LockInfo.from_json(json.loads((root / "state.lock").read_text())) == info
    backend.unlock(info.id)
    assert not (root / "state.lock").exists()


def test_unlock_messages(root: Path) -> None:
    backend = LocalBackend(root)
    with pytest.raises(StateError) as e:
        backend.unlock("nope")
    assert (e.value.summary, e.value.detail) == ("The state is not locked", f"There is no lock to release: {root / 'state.lock'} does not exist.")
    info = backend.lock("mlp apply")
    with pytest.raises(StateError) as e:
        backend.unlock("nope")
    assert e.value.summary == "The lock ID does not match"
    assert e.value.detail == f"The state lock is {info.describe()}. Its ID is {info.id}, not nope."


def test_temp_artifacts_are_never_listed(root: Path) -> None:
    store = LocalBackend(root).artifacts()
    key = artifact_key("ab" * 32)
    (store.temp_dir(key) / "part").write_text("half")
    assert (store.keys(), store.has(key)) == ([], False)


@pytest.mark.parametrize("key", ["../x", "ab", "/ab/cd", ".tmp/x", "ab/.hidden", "ab/cd/ef"])
def test_artifact_keys_cannot_escape_the_store(root: Path, key: str) -> None:
    with pytest.raises(ValueError, match="not an artifact key"):
        LocalBackend(root).artifacts().local_path(key)


def test_commit_only_takes_the_stores_own_temp_folders(root: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with pytest.raises(ValueError, match="was not made by temp_dir"):
        LocalBackend(root).artifacts().commit(artifact_key("ab" * 32), elsewhere)


@pytest.mark.parametrize("address", ["../etc/passwd", "a/b", ""])
def test_log_addresses_cannot_escape_the_store(root: Path, address: str) -> None:
    with pytest.raises(ValueError, match="not a block address"):
        LocalBackend(root).logs().path(address)


def test_artifact_key() -> None:
    assert artifact_key("ab12" + "0" * 60) == "ab/ab12" + "0" * 60
    with pytest.raises(ValueError, match="not a fingerprint"):
        artifact_key("../../x")


# -- the model ----------------------------------------------------------------------------------


def test_block_record_round_trip() -> None:
    record = make_record("model.iris", extra={"replicas": 2}, digest=None, code="file:" + "f" * 64)
    assert BlockRecord.from_json(json.loads(json.dumps(record.to_json()))) == record


def test_state_round_trip_and_changes() -> None:
    state = State.new().with_block(make_record("model.iris")).with_output("api.iris", {"port": 8000}).with_provider("local")
    assert State.from_json(json.loads(json.dumps(state.to_json()))) == state
    assert state.with_output("api.iris", None).outputs == {}
    assert state.without_block("model.iris").blocks == {}
    assert state.without_block("model.absent") == state
    assert state.with_block(make_record("model.iris")).serial == state.serial == 0


def test_journal_entry_round_trip() -> None:
    for entry in (JournalEntry.block(3, make_record("model.iris")), JournalEntry.remove(4, "model.iris"), JournalEntry.output(5, "api.iris", None)):
        assert JournalEntry.from_json(json.loads(json.dumps(entry.to_json()))) == entry


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(-5, "0 seconds ago"), (1, "1 second ago"), (59, "59 seconds ago"), (60, "1 minute ago"), (300, "5 minutes ago"), (7200, "2 hours ago"), (86400 * 3, "3 days ago")],
)
def test_ago(seconds: int, text: str) -> None:
    assert ago(seconds) == text


def test_lock_info_describe() -> None:
    info = LockInfo("id-1", "box", 123, "alice", "mlp apply", "2026-01-02T03:04:05Z")
    now = datetime(2026, 1, 2, 3, 9, 5, tzinfo=UTC)
    assert info.describe(now) == "held by alice@box (pid 123), running `mlp apply`, since 2026-01-02T03:04:05Z (5 minutes ago)"


def test_a_new_state_lineage_is_a_random_uuid4() -> None:
    import uuid

    from mlp.state.model import State, uuid4

    made = [uuid4() for _ in range(200)] + [State.new().lineage]
    assert len(set(made)) == len(made)
    for text in made:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, text)
