"""`mlp state list`, `state pull` and `state push`, as in Terraform: pull prints the stored
state, push stores a state file under the lock, refusing another app's state and, without
--force, an older one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlp import api
from mlp.errors import UsageError
from mlp.graph.analysis import analyse

from .conftest import backend, record_state, write_app
from .test_providers import BODY, CSV

APP = 'provider "local" {}\n' + BODY


@pytest.fixture
def applied(tmp_path: Path) -> Path:
    app = write_app(tmp_path / "app", {"app.hcl": APP, "data/s.csv": CSV})
    analysis, _ = analyse(app)
    assert analysis is not None
    record_state(analysis)
    return app


def test_state_list_and_pull_show_what_is_stored(applied: Path) -> None:
    assert api.state_list(applied) == ["source.s", "raw_column.x", "raw_column.y", "model.m"]
    pulled = json.loads(api.state_pull(applied))
    stored = backend(applied).read_state()
    assert (pulled["lineage"], pulled["serial"]) == (stored.lineage, stored.serial)
    assert sorted(pulled["blocks"]) == sorted(stored.blocks)


def test_state_push_stores_a_pulled_state_and_moves_the_serial_on(applied: Path, tmp_path: Path) -> None:
    pulled = json.loads(api.state_pull(applied))
    del pulled["blocks"]["model.m"]
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(pulled))
    before = backend(applied).read_state().serial
    assert api.state_push(applied, path) == before + 1
    assert "model.m" not in api.state_list(applied)
    assert backend(applied).current_lock() is None


def test_state_push_refuses_another_apps_state_and_an_older_one(applied: Path, tmp_path: Path) -> None:
    pulled = json.loads(api.state_pull(applied))
    other = tmp_path / "other.json"
    other.write_text(json.dumps({**pulled, "lineage": "00000000-0000-4000-8000-000000000000"}))
    with pytest.raises(UsageError) as err:
        api.state_push(applied, other)
    assert err.value.summary == f"{other} is the state of another app"
    older = tmp_path / "older.json"
    older.write_text(json.dumps({**pulled, "serial": 0}))
    backend(applied).set_output("x", 1)  # the stored serial moves past the pulled one
    with pytest.raises(UsageError) as err:
        api.state_push(applied, older)
    assert err.value.hint == "Pull the state again, or pass --force to replace the newer one."
    assert api.state_push(applied, older, force=True) > pulled["serial"]


@pytest.mark.parametrize(("text", "summary"), [
    ("{not json", "is not an mlp state"),
    ('{"version": 1}', "is not an mlp state"),
])
def test_state_push_of_a_file_that_is_no_state_is_one_clear_error(applied: Path, tmp_path: Path, text: str,
                                                                   summary: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(UsageError) as err:
        api.state_push(applied, path)
    assert err.value.summary == f"{path} {summary}"


def test_the_state_commands_on_the_command_line(applied: Path, tmp_path: Path) -> None:
    from .conftest import run_mlp

    listed = run_mlp("-C", applied, "state", "list")
    assert listed.returncode == 0 and listed.stdout.split() == api.state_list(applied)
    shown = run_mlp("-C", applied, "state", "show", "model.m", "--json")
    assert shown.returncode == 0 and json.loads(shown.stdout)["address"] == "model.m"
    pulled = run_mlp("-C", applied, "state", "pull")
    assert json.loads(pulled.stdout)["lineage"] == backend(applied).read_state().lineage
    path = tmp_path / "pulled.json"
    path.write_text(pulled.stdout)
    pushed = run_mlp("-C", applied, "state", "push", path)
    assert pushed.returncode == 0 and "The state is stored (serial" in pushed.stdout
    missing = run_mlp("-C", applied, "state", "show", "model.n")
    assert missing.returncode == 1 and "No block model.n in the state" in missing.stdout + missing.stderr


def test_render_writes_the_kubernetes_manifests_and_local_has_none(applied: Path, tmp_path: Path) -> None:
    from .conftest import run_mlp

    local = run_mlp("-C", applied, "render", tmp_path / "out")
    assert local.returncode == 1 and "The local provider has no manifests to render" in local.stdout + local.stderr
    app = write_app(tmp_path / "k8s", {"app.hcl": 'provider "kubernetes" {\n  image = "example/mlp:1"\n}\n' + BODY,
                                       "data/s.csv": CSV,
                                       "backend.hcl": 'backend "s3" {\n  bucket = "b"\n  prefix = "apps/x"\n}\n'})
    done = run_mlp("-C", app, "render", tmp_path / "manifests")
    assert done.returncode == 0, done.stdout + done.stderr
    files = sorted(p.name for p in (tmp_path / "manifests").iterdir())
    assert any("deployment" in f for f in files) is False and any("job" in f for f in files), files
    assert done.stdout.strip() == f"Wrote {len(files)} manifests to {tmp_path / 'manifests'}"
