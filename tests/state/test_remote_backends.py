"""The s3, gcs and azurerm backends against real servers on 127.0.0.1 (see conftest.py):
the conformance suite, then what only an object store can show: the lock per store, two
applies at once, the cost of a record, corrupt objects, and no credential in what is written."""

from __future__ import annotations

import json
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from mlp.errors import LockError, StateError
from mlp.state import State
from mlp.state.backends.objects import ObjectStore
from mlp.state.backends.remote import LOCK, STATE, ObjectBackend, journal_name
from mlp.state.lock import LockInfo
from mlp.state.testing import CHECKS, SHARED_CHECKS, Check, SharedCheck, make_record, run_conformance

from .conftest import AZURITE_KEY, BUCKET, ROOT, S3_SECRET, Remote

# -- conformance ----------------------------------------------------------------------------------


@pytest.mark.parametrize("check", CHECKS, ids=[c.__name__ for c in CHECKS])
def test_conformance(check: Check, remote: Remote, prefix: str, tmp_path: Path) -> None:
    check(lambda: remote.backend(tmp_path, prefix))


@pytest.mark.parametrize("check", SHARED_CHECKS, ids=[c.__name__ for c in SHARED_CHECKS])
def test_shared_conformance(check: SharedCheck, remote: Remote, prefix: str, tmp_path: Path) -> None:
    check(lambda cache: remote.backend(tmp_path / "app", prefix, cache), tmp_path)


def test_conformance_all_checks_on_one_storage_and_no_credential_in_what_is_written(
        remote: Remote, prefix: str, tmp_path: Path) -> None:
    run_conformance(lambda: remote.backend(tmp_path, prefix))
    backend = remote.backend(tmp_path, prefix)
    backend.record_block(make_record("raw_column.kept"))
    backend.lock("mlp apply")
    store = remote.store(prefix)
    written = b"".join(store.get(name) or b"" for name in store.list(""))
    local = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert b"raw_column.kept" in written and b"epoch 2 loss=0.5" in local
    for secret in (S3_SECRET, AZURITE_KEY):
        assert secret.encode() not in written + local


def test_the_objects_under_the_prefix(remote: Remote, prefix: str, tmp_path: Path) -> None:
    """One journal object per change, folded into state.json (and deleted) by write_state."""
    backend, store = remote.backend(tmp_path, prefix), remote.store(prefix)
    backend.record_block(make_record("raw_column.a"))
    backend.record_block(make_record("raw_column.b"))
    backend.set_output("api.iris", {"port": 8000})
    assert store.list("") == [journal_name(n) for n in (1, 2, 3)] + [STATE]
    assert json.loads(store.get(journal_name(3)) or b"") == {"serial": 3, "op": "output", "key": "api.iris",
                                                             "value": {"port": 8000}}
    stored = backend.write_state(backend.read_state())
    assert (store.list(""), stored.serial) == ([STATE], 4)
    assert State.from_json(json.loads(store.get(STATE) or b"")) == stored


def test_the_threads_of_one_apply_lose_no_record(remote: Remote, prefix: str, tmp_path: Path) -> None:
    backend = remote.backend(tmp_path, prefix)
    backend.read_state()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda n: backend.record_block(make_record(f"raw_column.c{n}")), range(12)))
    state = remote.backend(tmp_path, prefix).read_state()
    assert (sorted(state.blocks), state.serial) == (sorted(f"raw_column.c{n}" for n in range(12)), 12)


@pytest.mark.parametrize("remote", ["s3", "azurerm"], indirect=True)
def test_two_writers_never_take_the_same_serial(remote: Remote, prefix: str, tmp_path: Path) -> None:
    """Without the lock, two instances recording at once: the journal object is created only if
    absent, so the one that loses a serial catches up and takes the next (nothing is lost)."""
    writers = [remote.backend(tmp_path, prefix) for _ in range(2)]
    writers[0].record_block(make_record("raw_column.first"))
    for w in writers:
        w.read_state()
    jobs = [(w, f"raw_column.{i}_{n}") for n in range(6) for i, w in enumerate(writers)]
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda job: job[0].record_block(make_record(job[1])), jobs))
    state = remote.backend(tmp_path, prefix).read_state()
    assert (len(state.blocks), state.serial) == (13, 13)


# -- the lock -----------------------------------------------------------------------------------


def test_a_second_lock_names_the_holder(remote: Remote, prefix: str, tmp_path: Path) -> None:
    first, second = remote.backend(tmp_path, prefix), remote.backend(tmp_path, prefix)
    info = first.lock("mlp apply")
    with pytest.raises(LockError) as err:
        second.lock("mlp destroy")
    assert err.value.summary == "The state is locked"
    assert f"held by {info.user}@{info.host} (pid {info.pid}), running `mlp apply`, since {info.created}" in err.value.detail
    assert err.value.hint == f"If no mlp command is running, release it with: mlp state unlock {info.id}"
    first.unlock(info.id)


@pytest.mark.parametrize("remote", ["s3", "azurerm"], indirect=True)
@pytest.mark.parametrize("round_", range(3))
def test_two_applies_at_once_one_fails_naming_the_holder(remote: Remote, prefix: str, tmp_path: Path,
                                                          round_: int) -> None:
    """Two "applies", each with its own backend instance, try the lock at the same moment; the
    winner holds it until both have tried, then records its blocks and compacts."""
    both_try, both_tried = threading.Barrier(2, timeout=30), threading.Barrier(2, timeout=30)
    won: list[LockInfo] = []
    lost: list[LockError] = []

    def apply(name: str) -> None:
        backend = remote.backend(tmp_path, prefix)
        both_try.wait()
        try:
            info = backend.lock("mlp apply")
        except LockError as e:
            lost.append(e)
            both_tried.wait()
            return
        won.append(info)
        both_tried.wait()
        backend.read_state()
        for n in range(5):
            backend.record_block(make_record(f"raw_column.{name}{n}"))
        backend.write_state(backend.read_state())
        backend.unlock(info.id)

    threads = [threading.Thread(target=apply, args=(name,)) for name in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert (len(won), len(lost)) == (1, 1)
    [info], [error] = won, lost
    assert f"running `mlp apply`, since {info.created}" in error.detail and f"Lock ID: {info.id}" in error.detail
    state = remote.backend(tmp_path, prefix).read_state()
    winner = "a" if "raw_column.a0" in state.blocks else "b"
    assert (sorted(state.blocks), state.serial) == ([f"raw_column.{winner}{n}" for n in range(5)], 6)
    assert remote.backend(tmp_path, prefix).current_lock() is None


class RecordingSession:
    """A requests.Session for the GCS client that keeps (method, url, body) of every request."""

    def __init__(self) -> None:
        import requests

        self.session = requests.Session()
        self.sent: list[tuple[str, str, bytes]] = []

    def request(self, method: str, url: str, data: Any = None, **kwargs: Any) -> Any:
        body = data if isinstance(data, bytes) else str(data or "").encode()
        self.sent.append((method, url, body))
        return self.session.request(method, url, data=data, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.session, name)


@pytest.mark.parametrize("remote", ["gcs"], indirect=True)
def test_the_gcs_lock_is_created_with_if_generation_match_0(remote: Remote, prefix: str, tmp_path: Path) -> None:
    """gcp-storage-emulator ignores ifGenerationMatch, so running two locks against it proves
    nothing about GCS: what makes the GCS lock atomic is the precondition in the request, so
    this test asserts the request the client sends (GCS refuses it with 412 when the object exists)."""
    from mlp.state.backends.gcs import GcsStore

    http = RecordingSession()
    store = GcsStore(BUCKET, prefix, remote.server.endpoint, http=http)
    backend = ObjectBackend(store, tmp_path / "cache")
    info = backend.lock("mlp apply")
    uploads = [(url, body) for method, url, body in http.sent if method == "POST" and "/upload/" in url]
    assert len(uploads) == 1
    url, body = uploads[0]
    assert "ifGenerationMatch=0" in url.split("?", 1)[1].split("&")
    assert f'"name": "{prefix}/{LOCK}"'.encode() in body or f'"name":"{prefix}/{LOCK}"'.encode() in body
    held = store.read_lock(LOCK)
    assert held is not None
    del http.sent[:]
    backend.unlock(info.id)  # removes exactly the generation it read, never a lock taken since
    [delete] = [url for method, url, _ in http.sent if method == "DELETE"]
    assert f"ifGenerationMatch={held.token}" in delete.split("?", 1)[1].split("&")
    assert store.read_lock(LOCK) is None


# -- the cost of a record --------------------------------------------------------------------------


class CountingStore:
    """An ObjectStore that counts the calls made to the one it wraps (each call is one request,
    or one batch of parallel ones)."""

    def __init__(self, inner: ObjectStore) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if not callable(attr) or name in ("url", "removal_command"):
            return attr

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return attr(*args, **kwargs)

        return counted


@pytest.mark.parametrize("remote", ["s3"], indirect=True)
def test_recording_a_block_costs_the_same_in_an_app_of_10_or_10000_blocks(remote: Remote, prefix: str,
                                                                         tmp_path: Path) -> None:
    def cost(blocks: int) -> Counter[str]:
        store = CountingStore(remote.store(f"{prefix}/{blocks}"))
        backend = ObjectBackend(store, tmp_path / "cache")  # type: ignore[arg-type]
        state = backend.read_state()
        for n in range(blocks):
            state = state.with_block(make_record(f"raw_column.c{n}"))
        backend.write_state(state)
        backend.record_block(make_record("raw_column.warm"))  # as an apply records its first blocks
        assert len(backend.read_state().blocks) == blocks + 1
        store.calls.clear()
        backend.record_block(make_record("raw_column.measured"))
        return store.calls

    assert cost(10) == cost(10_000) == Counter({"put_if_absent": 1})


# -- what is read is checked ------------------------------------------------------------------------


def test_a_corrupt_state_json_names_the_object(remote: Remote, prefix: str, tmp_path: Path) -> None:
    store = remote.store(prefix)
    store.put(STATE, b'{"version": 1, "lineage": ')
    with pytest.raises(StateError) as err:
        remote.backend(tmp_path, prefix).read_state()
    assert (err.value.summary, err.value.detail) == ("The state file state.json is corrupt",
                                                     f"{store.url(STATE)}: line 1, column 27: Expecting value")
    assert err.value.hint.endswith(store.removal_command(STATE))


def test_a_corrupt_journal_object_names_it(remote: Remote, prefix: str, tmp_path: Path) -> None:
    backend, store = remote.backend(tmp_path, prefix), remote.store(prefix)
    backend.record_block(make_record("raw_column.a"))
    store.put(journal_name(3), json.dumps({"serial": 3, "op": "block", "record": {"address": "x"}}).encode())
    with pytest.raises(StateError) as err:
        remote.backend(tmp_path, prefix).read_state()
    assert (err.value.summary, err.value.detail) == (
        f"The state journal entry {journal_name(3)} is corrupt", f"{store.url(journal_name(3))}: block x: missing field 'kind'")
    store.put(journal_name(3), json.dumps({"serial": 7, "op": "remove", "address": "raw_column.a"}).encode())
    with pytest.raises(StateError) as err:
        remote.backend(tmp_path, prefix).read_state()
    assert err.value.detail == f"{store.url(journal_name(3))}: it holds the entry of serial 7"


def test_a_journal_without_state_and_a_gap_are_errors(remote: Remote, prefix: str, tmp_path: Path) -> None:
    backend, store = remote.backend(tmp_path, prefix), remote.store(prefix)
    for name in ("a", "b", "c"):
        backend.record_block(make_record(f"raw_column.{name}"))
    store.delete(journal_name(2))
    with pytest.raises(StateError) as err:
        remote.backend(tmp_path, prefix).read_state()
    assert (err.value.summary, err.value.detail) == (
        "The state journal has a gap", f"{store.url(journal_name(2))} is missing, but later journal entries are there.")
    store.delete(STATE)
    with pytest.raises(StateError) as err:
        remote.backend(tmp_path, prefix).read_state()
    assert err.value.summary == "The state file is missing but its journal is not"


def test_a_corrupt_lock_object_names_it(remote: Remote, prefix: str, tmp_path: Path) -> None:
    backend, store = remote.backend(tmp_path, prefix), remote.store(prefix)
    assert store.acquire_lock(LOCK, "3f2a0f0e-5b4c-4d5e-8f70-0123456789ab", b"not json")
    for action in (backend.current_lock, lambda: backend.lock("mlp apply"), lambda: backend.unlock("x")):
        with pytest.raises(LockError) as err:
            action()
        assert (err.value.summary, err.value.detail) == (
            "The state is locked, but the lock object is unreadable",
            f"{store.url(LOCK)}: Expecting value: line 1 column 1 (char 0)")
        assert err.value.hint == f"If no mlp command is running, remove it: {store.removal_command(LOCK)}"


def test_a_state_of_another_app_is_not_written_over(remote: Remote, prefix: str, tmp_path: Path) -> None:
    backend = remote.backend(tmp_path, prefix)
    stored = backend.write_state(backend.read_state())
    with pytest.raises(StateError) as err:
        backend.write_state(State.new())
    assert err.value.detail.startswith(f"{remote.store(prefix).url(STATE)} has lineage {stored.lineage}")


# -- messages ------------------------------------------------------------------------------------


def test_messages_name_the_store_not_its_credentials(remote: Remote, tmp_path: Path) -> None:
    settings = {**remote.settings("p"), "bucket": "no-such-bucket-here", "container": "no-such-container"}
    from mlp.state.backends import open_backend

    backend = open_backend(tmp_path, remote.kind, settings, environ=remote.environ())
    with pytest.raises(StateError) as err:
        backend.write_state(backend.read_state())
    text = err.value.render()
    assert "no-such-" in text and "Traceback" not in text
    for secret in (S3_SECRET, AZURITE_KEY):
        assert secret not in text


@pytest.mark.parametrize("remote", ["s3"], indirect=True)
def test_the_cli_reports_a_corrupt_state_without_a_traceback(remote: Remote, prefix: str, tmp_path: Path) -> None:
    """End to end: the app's backend block opens the s3 backend, and the CLI prints the error."""
    import shutil
    import subprocess
    import sys

    app = tmp_path / "iris"
    shutil.copytree(ROOT / "examples" / "iris", app, ignore=shutil.ignore_patterns(".mlp"))
    settings = remote.settings(prefix)
    (app / "backend.hcl").write_text(
        f'backend "s3" {{\n  bucket   = "{settings["bucket"]}"\n  prefix   = "{prefix}"\n'
        f'  endpoint = "{settings["endpoint"]}"\n}}\n')
    store = remote.store(prefix)
    store.put(STATE, b"[1, 2")
    mlp = [sys.executable, "-m", "mlp", "-C", str(app)]
    out = subprocess.run([*mlp, "show"], capture_output=True, text=True, timeout=120, env=remote.environ())
    assert out.returncode != 0 and "Traceback" not in out.stderr + out.stdout
    assert "The state file state.json is corrupt" in out.stderr and store.url(STATE) in out.stderr
    store.delete(STATE)
    out = subprocess.run([*mlp, "show"], capture_output=True, text=True, timeout=120, env=remote.environ())
    assert out.returncode == 0, out.stderr
