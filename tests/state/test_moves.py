"""Moving an app's state and artifacts to another backend (local -> S3 on moto's server):
the state keeps its lineage, the artifacts arrive whole, another app's state is never
written over, and the remembered backend is data only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlp.errors import StateError
from mlp.state.local import LocalBackend
from mlp.state.moves import MEMORY, BackendSpec, copy_artifacts, move_state, pending_move, remember, remembered
from mlp.state.testing import make_record

from .conftest import Remote


def _local_with_artifacts(root: Path) -> tuple[LocalBackend, list[str]]:
    backend = LocalBackend(root / ".mlp")
    keys = []
    for n in range(3):
        key = f"a{n}/a{n}{'0' * 30}"
        tmp = backend.artifacts().temp_dir(key)
        (tmp / "table").mkdir()
        (tmp / "table" / "part-0.parquet").write_bytes(bytes([n]) * 1000)
        (tmp / "meta.json").write_text(json.dumps({"n": n}))
        backend.artifacts().commit(key, tmp)
        backend.record_block(make_record(f"raw_column.c{n}", artifact=key))
        keys.append(key)
    backend.write_state(backend.read_state())
    return backend, keys


@pytest.mark.parametrize("remote", ["s3"], indirect=True)
def test_moving_from_local_to_s3_keeps_the_state_and_copies_the_artifacts(remote: Remote, prefix: str,
                                                                           tmp_path: Path) -> None:
    old, keys = _local_with_artifacts(tmp_path / "app")
    new = remote.backend(tmp_path / "app", prefix)
    moved = move_state(old, new)
    before = old.read_state()
    assert (moved.lineage, sorted(moved.blocks)) == (before.lineage, sorted(before.blocks))
    seen: list[str] = []
    assert copy_artifacts(old.artifacts(), new.artifacts(), keys, seen.append) == tuple(keys) == tuple(seen)
    elsewhere = remote.backend(tmp_path / "other-machine", prefix, cache=tmp_path / "empty-cache")
    for key in keys:
        assert elsewhere.artifacts().has(key)
        n = int(key[1])
        assert (elsewhere.artifacts().local_path(key) / "table" / "part-0.parquet").read_bytes() == bytes([n]) * 1000
    assert copy_artifacts(old.artifacts(), new.artifacts(), keys) == ()  # all there already
    assert move_state(old, new).lineage == before.lineage  # moving twice changes nothing


@pytest.mark.parametrize("remote", ["s3"], indirect=True)
def test_a_new_backend_holding_another_apps_state_is_not_written_over(remote: Remote, prefix: str,
                                                                      tmp_path: Path) -> None:
    old, _ = _local_with_artifacts(tmp_path / "app")
    new = remote.backend(tmp_path / "app", prefix)
    other, _ = _local_with_artifacts(tmp_path / "other")
    move_state(other, new)
    with pytest.raises(StateError) as err:
        move_state(old, new)
    assert err.value.summary == "The new backend already holds another app's state"


def test_the_remembered_backend_is_data_and_a_move_is_a_change_of_place(tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    assert remembered(app) is None and pending_move(app, BackendSpec("local", {})) is None
    remember(app, BackendSpec("local", {"path": ".mlp"}))
    assert pending_move(app, BackendSpec("local", {})) is None  # the default is the same place
    move = pending_move(app, BackendSpec("s3", {"bucket": "b", "prefix": "apps/iris", "endpoint": ""}))
    assert move is not None
    assert move.line() == 'The backend changed: backend "local" (.mlp) -> backend "s3" (b/apps/iris).'
    for junk in ("{not json", '{"kind": "s3", "settings": {"bucket": ["x"]}}', '"s3"', "[]"):
        (app / MEMORY).write_text(junk)
        assert remembered(app) is None
