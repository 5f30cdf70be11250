"""Sources in object storage (`s3://`, `gs://`, `abfs://`), on the real emulators: planned
from their objects' metadata (a listing and a stat per object, never a read of the data),
ingested by the local provider from a local copy made once per version, and replanned as
changed when an object is rewritten."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest

from mlp import api, objectdata
from mlp.plan.model import Action, Reason
from tests.state.conftest import AZURITE_ACCOUNT, BUCKET, Remote
from tests.state.test_remote_backends import CountingStore

ROOT = Path(__file__).resolve().parents[2]
IRIS = (ROOT / "examples" / "iris" / "data" / "iris.csv").read_bytes()
pytestmark = pytest.mark.slow


def _uri(kind: str, name: str) -> str:
    if kind == "azurerm":
        return f"abfs://{BUCKET}@{AZURITE_ACCOUNT}.dfs.core.windows.net/{name}"
    return f"{'s3' if kind == 's3' else 'gs'}://{BUCKET}/{name}"


def _app(tmp_path: Path, remote: Remote, uri: str) -> Path:
    app = tmp_path / "iris"
    shutil.copytree(ROOT / "examples" / "iris", app, ignore=shutil.ignore_patterns(".mlp", "data"))
    hcl = app / "app.hcl"
    hcl.write_text(hcl.read_text().replace('path   = "data/iris.csv"', f'path   = "{uri}"'))
    settings = remote.settings(f"apps/{uuid.uuid4().hex[:8]}")
    if remote.kind == "gcs":
        settings.pop("region")  # a gcs backend block has none
    body = "".join(f'  {k} = "{v}"\n' for k, v in settings.items())
    (app / "backend.hcl").write_text(f'backend "{remote.kind}" {{\n{body}}}\n')
    return app


def test_a_source_in_object_storage_is_planned_from_metadata_and_ingested(
        tmp_path: Path, remote: Remote, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in remote.server.environ:
        monkeypatch.setenv(name, value)
    folder = f"data/{uuid.uuid4().hex[:8]}/iris"
    store = remote.store("")
    store.put(f"{folder}/part-0.csv", IRIS)
    app = _app(tmp_path, remote, _uri(remote.kind, folder + "/"))

    calls: list[CountingStore] = []
    real = objectdata._store

    def counted(*args: object) -> CountingStore:
        calls.append(CountingStore(real(*args)))  # type: ignore[arg-type]
        return calls[-1]

    monkeypatch.setattr(objectdata, "_store", counted)
    plan = api.plan(app, targets=["source.iris"]).plan
    assert plan.change(plan.changes[0].address) is not None
    read = {name for c in calls for name, n in c.calls.items() if n}
    assert read <= {"list", "stat"}, read  # metadata only: the data is never read to plan

    result = api.apply(app, targets=["source.iris"])
    assert result.ok and "source.iris" in result.built, result.failed
    state = api.show(app)
    rows = {b["address"]: b for b in state.blocks}
    assert rows["source.iris"]["metrics"]["rows"] == 150

    assert not api.plan(app, targets=["source.iris"]).plan.has_changes
    store.put(f"{folder}/part-0.csv", IRIS.rsplit(b"\n", 2)[0] + b"\n")  # one row fewer: a new version
    changed = api.plan(app, targets=["source.iris"]).plan
    source = next(c for c in changed.changes if str(c.address) == "source.iris")
    assert (source.action, source.reason) == (Action.REBUILD, Reason.DATA_CHANGED)


def test_a_source_location_with_no_objects_is_an_error_at_its_path(
        tmp_path: Path, remote: Remote, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in remote.server.environ:
        monkeypatch.setenv(name, value)
    app = _app(tmp_path, remote, _uri(remote.kind, f"nothing/{uuid.uuid4().hex[:8]}/"))
    with pytest.raises(Exception) as err:
        api.plan(app)
    diags = getattr(err.value, "diagnostics", None)
    assert diags is not None, err.value
    [d] = diags.errors()
    assert (d.summary, str(d.pos)) == ("No data found for source.iris", "app.hcl:15:3")
