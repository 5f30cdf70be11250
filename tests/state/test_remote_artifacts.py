"""Artifacts and logs of the remote backends: the local cache, manifests, transfers, push/pull."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest

from mlp.errors import StateError
from mlp.state import artifact_key
from mlp.state.backends import cache_dir
from mlp.state.backends.artifacts import CachedArtifactStore, Direction, TransferProgress, TransferSummary
from mlp.state.backends.remote import ObjectBackend
from mlp.state.testing import make_record

from .conftest import Remote
from .test_remote_backends import CountingStore


def key_of(name: str) -> str:
    return artifact_key(make_record(name).fingerprint)


def build(store: CachedArtifactStore, key: str, files: dict[str, bytes]) -> None:
    tmp = store.temp_dir(key)
    for rel, data in files.items():
        (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp / rel).write_bytes(data)
    store.commit(key, tmp)


TABLE = {"table/part-0.parquet": os.urandom(300_000), "table/_SUCCESS": b"", "table/.part-0.parquet.crc": b"crc",
         "meta.json": b'{"rows": 3}'}


def test_a_commit_is_pulled_whole_into_an_empty_cache_elsewhere(remote: Remote, prefix: str, tmp_path: Path) -> None:
    here = remote.backend(tmp_path / "app", prefix, tmp_path / "cache-1").artifacts()
    key = key_of("source.iris")
    build(here, key, TABLE)
    events: list[TransferProgress] = []
    there_backend = ObjectBackend(remote.store(prefix), tmp_path / "cache-2", on_progress=events.append)
    there = there_backend.artifacts()
    assert there.has(key) and not (tmp_path / "cache-2" / "artifacts" / key).exists()
    path = there.local_path(key)
    assert path == tmp_path / "cache-2" / "artifacts" / key
    assert {p.relative_to(path).as_posix(): p.read_bytes() for p in path.rglob("*") if p.is_file()} == TABLE
    size = sum(map(len, TABLE.values()))
    assert events[0] == TransferProgress(Direction.DOWNLOAD, key, 0, 4, 0, size)
    assert events[-1] == TransferProgress(Direction.DOWNLOAD, key, 4, 4, size, size) and events[-1].finished
    assert [e.files_done for e in events] == [0, 1, 2, 3, 4]
    assert list((tmp_path / "cache-2" / "artifacts" / ".tmp" / "pull").iterdir()) == []


def test_files_without_their_manifest_are_not_an_artifact(remote: Remote, prefix: str, tmp_path: Path) -> None:
    """What a commit killed mid-upload leaves: the files, no manifest."""
    key = key_of("model.half")
    half = tmp_path / "half.bin"
    half.write_bytes(b"half of it")
    store = remote.store(prefix)
    store.upload_file(f"artifacts/{key}/bundle/saved_model.pb", half)
    artifacts = remote.backend(tmp_path / "app", prefix).artifacts()
    assert (artifacts.has(key), artifacts.keys()) == (False, [])
    assert not artifacts.local_path(key).exists()
    assert artifacts.pull([key]) == TransferSummary((), (), (key,))
    build(artifacts, key, {"bundle/saved_model.pb": b"whole"})  # building it again overwrites the leftovers
    fresh = remote.backend(tmp_path / "elsewhere", prefix).artifacts()
    assert (fresh.local_path(key) / "bundle" / "saved_model.pb").read_bytes() == b"whole"


@pytest.mark.parametrize("remote", ["s3"], indirect=True)
def test_has_lists_the_manifests_once_for_hundreds_of_keys(remote: Remote, prefix: str, tmp_path: Path) -> None:
    store = CountingStore(remote.store(prefix))
    artifacts = ObjectBackend(store, tmp_path / "cache").artifacts()  # type: ignore[arg-type]
    keys = [key_of(f"raw_column.c{n}") for n in range(300)]
    for k in keys[:3]:
        build(artifacts, k, {"x": k.encode()})
    fresh = ObjectBackend(store, tmp_path / "cache-2").artifacts()  # type: ignore[arg-type]
    store.calls.clear()
    assert [fresh.has(k) for k in keys] == [True] * 3 + [False] * 297
    assert store.calls == Counter({"list": 1})


def test_a_damaged_file_is_refused_and_named(remote: Remote, prefix: str, tmp_path: Path) -> None:
    key = key_of("model.damaged")
    build(remote.backend(tmp_path / "a", prefix).artifacts(), key, {"bundle/w.bin": b"weights"})
    swapped = tmp_path / "swapped.bin"
    swapped.write_bytes(b"weightz")
    store = remote.store(prefix)
    store.upload_file(f"artifacts/{key}/bundle/w.bin", swapped)
    with pytest.raises(StateError) as err:
        remote.backend(tmp_path / "b", prefix).artifacts().local_path(key)
    assert (err.value.summary, err.value.detail) == (
        f"The artifact {key} in the backend is damaged",
        f"{store.url(f'artifacts/{key}/bundle/w.bin')}: its size or SHA-256 differs from the manifest's.")
    assert err.value.hint == f"Remove it so that the next apply builds it again: {store.removal_command(f'manifests/{key}.json')}"
    assert not (tmp_path / "b" / ".mlp" / "cache" / "artifacts" / key).exists()


@pytest.mark.parametrize("path", ["../../escape", "/etc/passwd", "a/../../b", "a//b", "a\\b", "."])
@pytest.mark.parametrize("remote", ["s3"], indirect=True)
def test_a_manifest_cannot_write_outside_the_cache(remote: Remote, prefix: str, tmp_path: Path, path: str) -> None:
    key = key_of("model.evil")
    manifest = {"version": 1, "key": key, "dirs": [], "files": [{"path": path, "size": 1, "sha256": "0" * 64}]}
    store = remote.store(prefix)
    store.put(f"manifests/{key}.json", json.dumps(manifest).encode())
    with pytest.raises(StateError) as err:
        remote.backend(tmp_path / "app", prefix).artifacts().local_path(key)
    assert err.value.detail.startswith(f"{store.url(f'manifests/{key}.json')}: manifest path {path!r}")
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == []


def test_push_and_pull(remote: Remote, prefix: str, tmp_path: Path) -> None:
    local_only, shared, nowhere = key_of("model.local"), key_of("model.shared"), key_of("model.nowhere")
    here = remote.backend(tmp_path / "app", prefix, tmp_path / "cache-1").artifacts()
    build(here, shared, {"m": b"shared"})
    (tmp_path / "cache-1" / "artifacts" / local_only).mkdir(parents=True)  # e.g. built before the backend moved
    (tmp_path / "cache-1" / "artifacts" / local_only / "m").write_bytes(b"local")
    assert here.push([local_only, shared, nowhere]) == TransferSummary((local_only,), (shared,), (nowhere,))
    there = remote.backend(tmp_path / "app", prefix, tmp_path / "cache-2").artifacts()
    assert there.pull([shared, local_only, nowhere]) == TransferSummary(tuple(sorted((local_only, shared))), (), (nowhere,))
    assert there.pull([shared]) == TransferSummary((), (shared,), ())
    assert (there.local_path(local_only) / "m").read_bytes() == b"local"
    assert there.uri(shared) == remote.store(prefix).url(f"artifacts/{shared}/")


@pytest.mark.parametrize("remote", ["s3"], indirect=True)
def test_the_cache_folder(remote: Remote, prefix: str, tmp_path: Path) -> None:
    """<app>/.mlp/cache by default; MLP_CACHE_DIR may be shared by apps, whose builds in
    progress and logs stay apart."""
    app = tmp_path / "app"
    assert cache_dir(app, {}) == app.resolve() / ".mlp" / "cache"
    assert cache_dir(app, {"MLP_CACHE_DIR": str(tmp_path / "shared")}) == (tmp_path / "shared").resolve()
    one = remote.backend(app, f"{prefix}/one", tmp_path / "shared")
    two = remote.backend(app, f"{prefix}/two", tmp_path / "shared")
    building = one.artifacts().temp_dir(key_of("model.one"))
    assert two.artifacts().sweep() == 0 and building.is_dir()
    assert one.artifacts().sweep() == 1 and not building.exists()
    assert one.logs().path("model.m") != two.logs().path("model.m")
    assert remote.backend(app, prefix).artifacts().root == app.resolve() / ".mlp" / "cache" / "artifacts"


def test_a_log_written_elsewhere_is_read_from_the_backend(remote: Remote, prefix: str, tmp_path: Path) -> None:
    address = 'aggregate.mean["x"]'
    logs = remote.backend(tmp_path / "a", prefix).logs()
    logs.path(address).write_text("line 1\n")
    logs.flush(address)
    logs.flush("model.never_ran")  # nothing written: nothing uploaded, no error
    names = remote.store(prefix).list("logs/")
    assert names == ["logs/aggregate.mean%5B%22x%22%5D.log"]
    assert remote.backend(tmp_path / "b", prefix).logs().read(address) == "line 1\n"
    assert remote.backend(tmp_path / "b", prefix).logs().read("model.never_ran") == ""
