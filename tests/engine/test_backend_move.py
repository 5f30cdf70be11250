"""Moving an app's state to another backend, the provider unchanged: examples/iris applied
with the local backend, then its backend block pointed at S3 (a real moto server). The plan
copies every output instead of rebuilding it; a saved plan is applied as it was made, and
refused once the move it was made for is done."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from mlp import api
from mlp.errors import PlanFileError
from mlp.plan.model import Action, Reason
from mlp.plan.planfile import write_plan
from mlp.state.moves import MEMORY

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


@pytest.fixture
def iris(tmp_path: Path) -> Any:
    app = tmp_path / "iris"
    shutil.copytree(ROOT / "examples" / "iris", app, ignore=shutil.ignore_patterns(".mlp"))
    yield app
    try:
        api.destroy(app)
    except Exception:  # noqa: BLE001 - best effort: never leave a server running
        pass


def test_a_saved_plan_moves_the_state_to_s3_and_copies_instead_of_building(iris: Path, moto_server: Any) -> None:
    first = api.apply(iris)
    assert first.ok, first.failed
    before = {b["address"]: b["fingerprint"] for b in api.show(iris).blocks}
    hcl = iris / "app.hcl"
    hcl.write_text(hcl.read_text() + f'\nbackend "s3" {{\n  bucket   = "mlp-state"\n  prefix   = "moved"\n'
                                      f'  endpoint = "{moto_server.endpoint}"\n}}\n')

    planned = api.plan(iris).plan
    copies = {str(c.address) for c in planned.changes if c.action is Action.COPY}
    assert copies == {a for a in before if not a.startswith("api.")}
    assert {c.reason for c in planned.changes if c.action is Action.COPY} == {Reason.BACKEND_CHANGED}
    assert [str(c.address) for c in planned.changes if c.action.runs] == []  # the api keeps serving
    saved = iris / "move.plan"
    write_plan(planned, saved)

    result = api.apply(iris, plan_file=saved)
    assert result.ok, result.failed
    assert set(result.copied) == copies and result.built == ()
    assert json.loads((iris / MEMORY).read_text())["kind"] == "s3"
    moved = api.show(iris)  # read from the bucket now
    assert {b["address"]: b["fingerprint"] for b in moved.blocks} == before
    assert api.plan(iris).plan.summary().line() == "No changes. The app matches its state."

    with pytest.raises(PlanFileError, match="stale"):  # made for a move that is done
        api.apply(iris, plan_file=saved)
