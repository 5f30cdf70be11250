"""For the cloud plugins' tests: `examples/iris` under a cloud provider block, Pulumi
engine events as a real run writes them (`EngineEvent.from_json` of its event log's lines),
and what the golden plans need: `mlp plan` run as a user runs it, the plugin bound to test
seams, the output normalised and compared with its golden file.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
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


# -- golden plans ---------------------------------------------------------------------------
#
# `mlp plan` of examples/iris under a cloud's block, its backend on a real object-storage
# server (tests/state/conftest.py): as the CLI prints it without a terminal, compared with a
# checked-in text that MLP_UPDATE_GOLDENS=1 rewrites.

MLP_BIN = "mlp"                     # the entry point installed next to the running interpreter
PULUMI_AT = "/usr/local/bin/pulumi"  # where the recorded preview says the CLI is


def backend_block(kind: str, settings: Mapping[str, str]) -> str:
    """A `backend` block of `kind` with `settings` (in their order), as HCL."""
    width = max(map(len, settings))
    lines = "".join(f'  {k.ljust(width)} = "{v}"\n' for k, v in settings.items())
    return f'backend "{kind}" {{\n{lines}}}'


def normalise(text: str, app_dir: Path, endpoint: str = "") -> str:
    """What moves from run to run, replaced: the app's folder and the server's address."""
    for path in sorted({str(app_dir.resolve()), str(app_dir)}, key=len, reverse=True):
        text = text.replace(path, "<APP>")
    if endpoint:
        text = text.replace(endpoint, "<ENDPOINT>")
    return re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", "<TIME>", text)


def check_golden(path: Path, actual: str, update: bool) -> None:
    """`actual` against the golden file `path`, a unified diff when they differ; with
    `update`, the file is rewritten instead."""
    import difflib

    import pytest

    if update:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual)
        return
    if not path.exists():
        pytest.fail(f"{path} does not exist; make it with MLP_UPDATE_GOLDENS=1", pytrace=False)
    expected = path.read_text()
    if actual != expected:
        diff = difflib.unified_diff(expected.splitlines(keepends=True), actual.splitlines(keepends=True),
                                    f"{path.name} (expected)", "actual")
        pytest.fail(f"{path} differs (MLP_UPDATE_GOLDENS=1 rewrites it if the change is right):\n"
                    + "".join(diff), pytrace=False)


def updating_goldens(config: Any) -> bool:
    """MLP_UPDATE_GOLDENS=1, or pytest's --update-goldens where the repository defines it."""
    import os

    try:
        flag = bool(config.getoption("--update-goldens"))
    except ValueError:
        flag = False
    return flag or os.environ.get("MLP_UPDATE_GOLDENS") == "1"


def run_mlp(app_dir: Path, *args: str, environ: Mapping[str, str]) -> Any:
    """The installed `mlp` command in a process of its own, stdin closed and stdout a pipe
    (no terminal, so no colour): `mlp -C APP ARGS...`."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "MLP_DEBUG")}
    env.update(environ)
    return subprocess.run([str(Path(sys.executable).with_name(MLP_BIN)), "-C", str(app_dir), *args], env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)


def mlp_in_process(app_dir: Path, *args: str) -> tuple[int, str, str]:
    """`mlp -C APP ARGS...` through the CLI's entry point in this process (so that a test's
    seams reach the provider): its exit code, stdout and stderr, neither a terminal."""
    import io
    import sys
    from contextlib import redirect_stderr, redirect_stdout

    from mlp.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    argv, sys.argv = sys.argv, [MLP_BIN, "-C", str(app_dir), *args]
    try:
        with redirect_stdout(out), redirect_stderr(err):
            main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    finally:
        sys.argv = argv
    return code, out.getvalue(), err.getvalue()


def first_preview(program: Callable[[], None], stack: str, computed: Any = None, invokes: Any = None) -> list[Any]:
    """The engine events of a stack's first preview: its root and every resource `program`
    registers (run under Pulumi's mocks, `mlp_cloud.mocks`) created, in the order they
    were registered, then the summary."""
    from mlp_cloud.mocks import run_program

    run = run_program(program, computed, invokes, stack=stack)
    component = next(r.type for r in run.resources if r.type.startswith("mlp:"))
    events = [step_event("create", urn(stack, "pulumi:pulumi:Stack", f"mlp-{stack}"), seq=0)]
    for seq, r in enumerate(run.resources, start=1):
        parent = "" if r.type == component else component
        events.append(step_event("create", urn(stack, r.type, r.name, parent), seq=seq))
    return [*events, summary_event(len(events))]


@dataclass(frozen=True)
class _BoundPlugin:
    """An `mlp.providers` entry point whose factory is given, not imported."""

    name: str
    factory: Callable[..., Any]

    def load(self) -> Callable[..., Any]:
        return self.factory


def bind_plugin(monkeypatch: Any, kind: str, factory: Callable[..., Any]) -> None:
    """Make mlp find `factory` as the plugin of `kind` (the entry point's object, called as
    `factory(block, app=app)`), the other installed plugins left as they are."""
    from functools import lru_cache

    from mlp.providers import registry

    found = {**registry._entry_points(), kind: _BoundPlugin(kind, factory)}
    monkeypatch.setattr(registry, "_entry_points", lru_cache(maxsize=1)(lambda: found))


def bind_first_preview(monkeypatch: Any, provider: type[Any], app: Any, computed: Any = None,
                       invokes: Any = None) -> Any:
    """The plugin `provider` (a `CloudProvider` class), as mlp finds it, with the Pulumi CLI
    there and its Pulumi calls going to a `RecordingDriver` that answers the first preview of
    `app`'s stack (`first_preview` of its program); returns the driver."""
    from mlp_cloud.provider import Seams
    from mlp_cloud.recording import RecordingDriver
    from mlp_kubernetes.recording import RecordingKubeApi

    bound = provider(app.provider, app)
    driver = RecordingDriver(first_preview(bound.program(bound.infra(app)), bound.stack(app).name, computed, invokes))
    seams = Seams(driver, RecordingKubeApi(), pulumi_cli=lambda: PULUMI_AT)
    bind_plugin(monkeypatch, bound.kind, lambda block, app=None: provider(block, app, seams))
    return driver


def with_backend(app_dir: Path, block: str) -> Path:
    """The app's backend block replaced by `block`."""
    hcl = app_dir / "app.hcl"
    text, n = re.subn(r'backend "[a-z0-9]+" \{[^}]*\}', block, hcl.read_text())
    assert n == 1, f"{hcl} has no backend block"
    hcl.write_text(text)
    return app_dir
