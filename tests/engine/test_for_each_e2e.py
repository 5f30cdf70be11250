"""A for_each app on the real stack (Spark, TensorFlow in a child process, uvicorn).

The wine app of tests/plan/test_for_each.py (13 raw columns, 26 aggregates and 13 normalised
columns from four blocks with for_each, a model on `transformed_column.norm[*]`) is planned,
applied and served. Instance addresses are what users see and type: in the plan, the state's
keys, `mlp show`, `mlp logs` and `--target`/`--replace`; and a prediction takes each raw
column instance under its `column` name.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlp import api
from mlp.engine.events import RecordingHooks
from mlp.plan.render import render_text
from tests.plan.test_for_each import FEATURES, wine_app

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow
EPOCHS = ["epochs=3"]
NORM = 'transformed_column.norm["alcohol"]'


def _cli(app: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mlp", "-C", str(app), *args], capture_output=True, text=True,
                          timeout=600, cwd=ROOT, env={**os.environ, "MLP_IN_AUTOMATION": "1"})


class Applied:
    def __init__(self, path: Path, plan_text: str) -> None:
        self.path, self.plan_text = path, plan_text


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Applied]:
    path = wine_app(tmp_path_factory.mktemp("for_each") / "wine")
    plan_text = render_text(api.plan(path, variables=EPOCHS).plan.to_json())
    res = api.apply(path, hooks=RecordingHooks(), variables=EPOCHS)
    assert res.ok, (res.failed, res.skipped)
    yield Applied(path, plan_text)
    try:
        api.destroy(path)
    except Exception:  # noqa: BLE001 - never leave a server behind
        pass


def test_the_plan_and_the_state_name_every_instance(app: Applied) -> None:
    assert f"  + {NORM}" in app.plan_text and '  + aggregate.stddev["proline"]' in app.plan_text
    view = api.show(app.path)
    addresses = {str(b["address"]) for b in view.blocks}
    for kind, block in [("raw_column", "feature"), ("aggregate", "mean"), ("aggregate", "stddev"),
                        ("transformed_column", "norm")]:
        assert {f'{kind}.{block}["{k}"]' for k in FEATURES} <= addresses
    assert all(b["status"] == "done" for b in view.blocks)
    assert api.plan(app.path, variables=EPOCHS).plan.has_changes is False


def test_show_and_logs_take_an_instance_address(app: Applied) -> None:
    shown = _cli(app.path, "show", NORM)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith(f"{NORM}: done")
    assert re.search(r'^  input +aggregate\.mean\["alcohol"\] [0-9a-f]{12}$', shown.stdout, re.M), shown.stdout
    logged = _cli(app.path, "logs", NORM)
    assert logged.returncode == 0, logged.stderr
    assert "create (new)" in logged.stdout


def test_target_and_replace_take_an_instance_address(app: Applied) -> None:
    target = 'aggregate.mean["ash"]'
    planned = api.plan(app.path, variables=EPOCHS, targets=[target], replace=[target]).plan
    assert {str(c.address): c.action.value for c in planned.changes} == {
        "source.wine": "no-op", 'raw_column.feature["ash"]': "no-op", target: "rebuild"}
    res = api.apply(app.path, hooks=RecordingHooks(), variables=EPOCHS, targets=[target], replace=[target])
    assert res.ok and list(res.built) == [target]


def _instance() -> dict[str, Any]:
    return {name: 0.5 for name in FEATURES}


def test_a_prediction_takes_the_raw_columns_column_names(app: Applied) -> None:
    code, body = api.predict(app.path, "wine", json.dumps(_instance()))
    assert code == 200, body
    assert len(body["predictions"]) == 1
