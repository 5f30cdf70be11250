"""The rollout gate on the real stack: a worse retrained model is refused and the old one
keeps serving; `promote = "always"` swaps it in."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import httpx
import pytest

from mlp import api
from mlp.engine.gate import Verdict
from mlp.plan.model import Action, Reason

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("serving", "candidate", "tolerance", "promote"), [
    (0.98, 0.98, 0.02, True), (0.98, 0.96, 0.02, True), (0.98, 0.959, 0.02, False),
    (0.98, 0.99, 0.0, True), (0.98, 0.97, 0.0, False), (-0.5, -0.51, 0.02, True),
], ids=["equal", "at-the-tolerance", "past-the-tolerance", "better", "no-tolerance", "negative-r2"])
def test_verdict(serving: float, candidate: float, tolerance: float, promote: bool) -> None:
    assert Verdict("accuracy", serving, candidate, 10, tolerance).promote is promote


def _fp(app: Path, address: str) -> str:
    return str(next(b["fingerprint"] for b in api.show(app).blocks if b["address"] == address))


def _served(app: Path) -> str:
    url = api.show(app).outputs["api.iris"]["url"]
    return str(httpx.get(url + "/healthz", timeout=10).json()["fingerprint"])


@pytest.mark.slow
def test_a_worse_model_is_refused_and_always_swaps_it(tmp_path: Path) -> None:
    app = tmp_path / "iris"
    shutil.copytree(ROOT / "examples" / "iris", app, ignore=shutil.ignore_patterns(".mlp"))
    try:
        res = api.apply(app, variables=["epochs=60"])
        assert res.ok, res.failed
        good = _fp(app, "model.dnn")
        assert _served(app) == good
        model = app / "model.hcl"
        model.write_text(model.read_text().replace("learning_rate = 0.01", "learning_rate = 0.00001"))
        res = api.apply(app, variables=["epochs=1"])
        assert not res.ok and set(res.failed) == {"api.iris"}
        message = res.failed["api.iris"]
        assert "api.iris: the retrained model.dnn is worse than the model serving" in message
        numbers = re.search(r"accuracy (\d\.\d{4}) against (\d\.\d{4})", message)
        assert numbers is not None and float(numbers[1]) < float(numbers[2]) - 0.02, message
        assert 'promote = "always"' in message
        assert _served(app) == good and api.show(app).outputs["api.iris"]["model_fingerprint"] == good
        rows = int(re.search(r"; (\d+) evaluation rows", message)[1])  # type: ignore[index]
        eval_rows = next(b for b in api.show(app).blocks if b["address"] == "model.dnn")["metrics"]["rows"]
        assert rows == eval_rows["eval"]  # the gate scored the trainer's held-out rows
        plan = {str(c.address): (c.action, c.reason) for c in api.plan(app, variables=["epochs=1"]).plan.changes}
        assert plan["api.iris"] == (Action.REBUILD, Reason.UPSTREAM_CHANGED)  # refused, not drifted

        hcl = app / "model.hcl"
        hcl.write_text(hcl.read_text().replace("replicas = 1", 'replicas = 1\n  promote  = "always"'))
        res = api.apply(app, variables=["epochs=1"])
        assert res.ok, res.failed
        assert _served(app) == _fp(app, "model.dnn") != good
    finally:
        api.destroy(app)
