"""Serving through `mlp apply` on the local provider: a model used as a transformed column,
and a re-apply that swaps the model while a client keeps sending requests."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import httpx
import pytest

from mlp import api
from mlp.plan.model import Action

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

STACKED = '''
model "petal" {
  type      = "regression"
  estimator = "linear"
  target    = raw_column.petal_width
  features  = [transformed_column.sepal_length_norm, transformed_column.petal_length_norm]
  training {
    epochs        = 30
    learning_rate = 0.05
  }
}

transformed_column "petal_pred" {
  model = model.petal
}
'''


@pytest.fixture()
def iris(tmp_path: Path):  # type: ignore[no-untyped-def]
    app = tmp_path / "iris"
    shutil.copytree(ROOT / "examples" / "iris", app, ignore=shutil.ignore_patterns(".mlp"))
    # These tests are about swapping models; the rollout gate has its own (test_rollout_gate.py).
    hcl = app / "model.hcl"
    hcl.write_text(hcl.read_text().replace("replicas = 1", 'replicas = 1\n  promote  = "always"'))
    yield app
    try:
        api.destroy(app)
    except Exception:  # noqa: BLE001 - never leave a server behind
        pass


def test_a_model_as_a_transformed_column(iris: Path) -> None:
    (iris / "stacked.hcl").write_text(STACKED)
    model = iris / "model.hcl"
    model.write_text(model.read_text().replace("raw_column.petal_width,\n", "transformed_column.petal_pred,\n"))
    plan = api.plan(iris, variables=["epochs=40"]).plan
    assert "transformed_column.petal_pred" in {str(c.address) for c in plan.changes}
    res = api.apply(iris, variables=["epochs=40"])
    assert res.ok, res.failed
    assert {"model.petal", "transformed_column.petal_pred", "model.dnn"} <= set(res.built)
    bundle = json.loads((_bundle_of(iris) / "bundle.json").read_text())
    assert any(step.get("model_bundle") for step in bundle["transforms"])
    code, body = api.predict(iris, "iris", json.dumps(
        {"sepal_length": 6.7, "sepal_width": 3.0, "petal_length": 5.2, "petal_width": 2.3}))
    assert code == 200, body
    assert body["predictions"][0]["label"] in ("Iris-virginica", "Iris-versicolor")


def _bundle_of(app: Path) -> Path:
    rows = {b["address"]: b for b in api.show(app).blocks}
    return Path(rows["model.dnn"]["artifact"]) / "bundle"


def test_reapply_swaps_the_model_without_a_failed_request(iris: Path) -> None:
    res = api.apply(iris, variables=["epochs=20"])
    assert res.ok, res.failed
    url = api.show(iris).outputs["api.iris"]["url"]
    pid = api.show(iris).outputs["api.iris"]["pid"]
    body = {"instances": [{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}]}
    seen: set[str] = set()
    failures: list[str] = []
    stop = threading.Event()

    def client() -> None:
        with httpx.Client(timeout=10) as c:
            while not stop.is_set():
                try:
                    r = c.post(f"{url}/predict", json=body)
                    if r.status_code != 200:
                        failures.append(f"{r.status_code} {r.text[:200]}")
                    else:
                        seen.add(r.json()["model"])
                except httpx.HTTPError as e:
                    failures.append(repr(e))
                time.sleep(0.01)

    t = threading.Thread(target=client)
    t.start()
    try:
        model = iris / "model.hcl"
        model.write_text(model.read_text().replace("hidden_units = [16, 8]", "hidden_units = [12]"))
        changes = {str(c.address): c.action for c in api.plan(iris, variables=["epochs=20"]).plan.changes}
        assert changes["model.dnn"] is Action.REBUILD
        res = api.apply(iris, variables=["epochs=20"])
        assert res.ok, res.failed
        time.sleep(0.5)
    finally:
        stop.set()
        t.join(timeout=30)
    assert failures == []
    assert len(seen) == 2, seen  # the old fingerprint, then the new one
    after = api.show(iris).outputs["api.iris"]
    assert after["pid"] == pid  # swapped inside the running server
    assert after["model_fingerprint"] in seen
    # the swap went through the token only this user can read; nobody else can swap
    token = iris / ".mlp" / "logs" / "api.iris.admin-token"
    assert token.stat().st_mode & 0o777 == 0o600
    assert token.read_text() not in json.dumps(api.show(iris).outputs)
    assert httpx.post(f"{url}/admin/reload", json={"bundle": str(iris)}).status_code == 401


def test_replicas_change_updates_in_place(iris: Path) -> None:
    res = api.apply(iris, variables=["epochs=5"])
    assert res.ok, res.failed
    before = api.show(iris).outputs["api.iris"]
    model = iris / "model.hcl"
    model.write_text(model.read_text().replace("replicas = 1", "replicas = 2"))
    changes = {str(c.address): (c.action, c.details) for c in api.plan(iris, variables=["epochs=5"]).plan.changes
               if c.action is not Action.NOOP}
    assert changes == {"api.iris": (Action.UPDATE, ("replicas: 1 -> 2",))}
    res = api.apply(iris, variables=["epochs=5"])
    assert res.ok and res.built == ("api.iris",)
    after = api.show(iris).outputs["api.iris"]
    assert after["pid"] == before["pid"] and after["replicas"] == 2
