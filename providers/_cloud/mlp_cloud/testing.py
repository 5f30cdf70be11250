"""For the cloud plugins' tests: `examples/iris` under a cloud provider block, and Pulumi
engine events as a real run writes them (`EngineEvent.from_json` of its event log's lines).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any


def iris_app(dest: Path, repo: Path, provider: str, backend: str = "", gpu: int = 0) -> Path:
    """examples/iris copied to `dest`, its provider block replaced by `provider`, `backend`
    added, and with `gpu` > 0 its model asking for that many GPUs."""
    shutil.copytree(repo / "examples" / "iris", dest, ignore=shutil.ignore_patterns(".mlp"))
    hcl = dest / "app.hcl"
    text, n = re.subn(r'provider "local" \{[^}]*\}', provider + ("\n\n" + backend if backend else ""), hcl.read_text())
    assert n == 1, 'examples/iris/app.hcl has no provider "local" block'
    hcl.write_text(text)
    if gpu:
        model = dest / "model.hcl"
        text, n = re.subn(r'(model "dnn" \{)', rf"\1\n  compute {{\n    gpu = {gpu}\n  }}\n", model.read_text())
        assert n == 1, 'examples/iris/model.hcl has no model "dnn"'
        model.write_text(text)
    return dest


def step_event(op: str, urn: str, diffs: tuple[str, ...] = (), keys: tuple[str, ...] = (), seq: int = 0) -> Any:
    """A `resourcePreEvent` of the engine, parsed by Pulumi's own `EngineEvent.from_json`."""
    from pulumi.automation.events import EngineEvent

    type_ = urn.split("::")[-2].rsplit("$", 1)[-1]
    metadata = {"op": op, "urn": urn, "type": type_, "provider": "", "diffs": list(diffs), "keys": list(keys)}
    return EngineEvent.from_json({"sequence": seq, "timestamp": 0, "resourcePreEvent": {"metadata": metadata}})


def urn(stack: str, type_: str, name: str, parent: str = "") -> str:
    chain = f"{parent}${type_}" if parent else type_
    return f"urn:pulumi:{stack}::mlp::{chain}::{name}"


def summary_event(seq: int = 99) -> Any:
    from pulumi.automation.events import EngineEvent

    return EngineEvent.from_json({"sequence": seq, "timestamp": 0, "summaryEvent": {
        "maybeCorrupt": False, "durationSeconds": 1, "resourceChanges": {"create": 1}, "PolicyPacks": {}}})


def app_fixtures(repo: Path, provider: str, backend: str) -> tuple[Any, Any, Any, Any]:
    """The fixtures every cloud plugin's tests share, for its provider and backend blocks:
    `iris` (examples/iris under them), `iris_gpu` (its model asking for a GPU), `iris_once`
    (made once per module, for tests that only read it) and `loaded` (an app folder loaded
    into mlp's `App`). Assign them to the same names in the plugin's conftest."""
    import pytest

    from mlp.config.loader import load_app

    @pytest.fixture
    def iris(tmp_path: Path) -> Path:
        return iris_app(tmp_path / "iris", repo, provider, backend)

    @pytest.fixture
    def iris_gpu(tmp_path: Path) -> Path:
        return iris_app(tmp_path / "gpu" / "iris", repo, provider, backend, gpu=1)

    @pytest.fixture(scope="module")
    def iris_once(tmp_path_factory: pytest.TempPathFactory) -> Path:
        return iris_app(tmp_path_factory.mktemp("once") / "iris", repo, provider, backend)

    @pytest.fixture(scope="module")
    def loaded() -> Any:
        def load(app_dir: Path) -> Any:
            app, diags = load_app(app_dir)
            assert app is not None and not diags.has_errors(), diags.items
            return app

        return load

    return iris, iris_gpu, iris_once, loaded
