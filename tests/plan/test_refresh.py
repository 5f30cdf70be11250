"""Refresh on the local provider, without servers: what it reports for artifacts that are
gone and for api endpoints that are absent, malformed, not local or dead."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mlp import api
from mlp.plan.model import Action, Reason
from mlp.providers import ApiStatus
from mlp.providers.local import LocalProvider

from .conftest import analysed, backend, copy_app, record_state

ROOT = Path(__file__).resolve().parents[2]
GOLDEN_APP = ROOT / "tests" / "golden" / "unchanged_app"


@pytest.fixture
def app(tmp_path: Path) -> Path:
    path = copy_app(GOLDEN_APP, tmp_path / "app", ignore=("case.json", "state.json", "plan.txt", "plan.json"))
    record_state(analysed(path))
    return path


def _refresh(app: Path) -> Any:
    b = backend(app)
    return LocalProvider().refresh(b.read_state(), b.artifacts())


def test_a_true_state_has_nothing_missing(app: Path) -> None:
    seen = _refresh(app)
    assert seen.missing == {}
    assert {a: h.status for a, h in seen.apis.items()} == {"api.returns": ApiStatus.DOWN}


def test_a_deleted_artifact_and_a_deleted_table_are_missing(app: Path) -> None:
    b = backend(app)
    state = b.read_state()
    mean = state.blocks["aggregate.amount_mean"]
    assert mean.artifact is not None
    b.artifacts().delete(mean.artifact)
    norm = state.blocks["transformed_column.amount_norm"]
    b.record_block(type(norm)(**{**norm.__dict__, "refs": ("ab/" + "ab" * 32,)}))  # its table: never stored
    assert _refresh(app).missing == {"aggregate.amount_mean": mean.artifact,
                                     "transformed_column.amount_norm": "ab/" + "ab" * 32}


@pytest.mark.parametrize(("endpoint", "detail"), [
    (None, "the state records no running server for it"),
    ({"url": "http://127.0.0.1:1"}, "the state records no running server for it"),
    ({"url": "file:///etc/passwd", "port": 1, "pid": 1}, "the state records 'file:///etc/passwd', not a local server"),
    ({"url": "http://10.1.2.3:8080", "port": 8080, "pid": 1}, "the state records 'http://10.1.2.3:8080', not a local server"),
    ({"url": "http://127.0.0.1:9", "port": 9, "pid": 2 ** 22 + 7}, "its process 4194311 is not running"),
], ids=["none", "malformed", "file-url", "remote-url", "dead-pid"])
def test_endpoints_refresh_cannot_trust(app: Path, endpoint: Any, detail: str) -> None:
    backend(app).set_output("api.returns", endpoint)
    health = _refresh(app).apis["api.returns"]
    assert (health.status, health.detail) == (ApiStatus.DOWN, detail)


def test_a_live_process_that_is_not_a_server_is_down(app: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        backend(app).set_output("api.returns", {"url": "http://127.0.0.1:9", "port": 9, "pid": proc.pid})
        health = _refresh(app).apis["api.returns"]
        assert (health.status, health.detail) == (ApiStatus.DOWN, f"its process {proc.pid} is not running")
    finally:
        proc.kill()
        proc.wait()


def test_refresh_false_trusts_the_state(app: Path) -> None:
    b = backend(app)
    mean = b.read_state().blocks["aggregate.amount_mean"]
    assert mean.artifact is not None
    b.artifacts().delete(mean.artifact)
    trusted = {str(c.address): c.action for c in api.plan(app, refresh=False).plan.changes}
    assert set(trusted.values()) == {Action.NOOP}
    refreshed = {str(c.address): (c.action, c.reason) for c in api.plan(app).plan.changes
                 if c.action is not Action.NOOP}
    assert refreshed == {"aggregate.amount_mean": (Action.REBUILD, Reason.ARTIFACT_MISSING),
                         "api.returns": (Action.UPDATE, Reason.NOT_RUNNING)}
