"""Plan-level test helpers: app folders, a recorded "previous" state, goldens, the real `mlp`.

Nothing here starts Spark or TensorFlow. A state is made the way apply would leave it,
without applying: the real analysis fingerprints the app, and every block gets the record
apply writes for a finished block (`state_from`), stored through the real `LocalBackend`.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from mlp.diagnostics import format_diagnostic
from mlp.graph.analysis import Analysis, analyse
from mlp.state import BlockRecord, LocalBackend, State, artifact_key

REPO = Path(__file__).resolve().parents[2]
GOLDEN = REPO / "tests" / "golden"
MLP = REPO / ".venv" / "bin" / "mlp"
if not MLP.exists():  # a venv elsewhere: the `mlp` next to the running interpreter
    MLP = Path(sys.executable).with_name("mlp")

FIXED_TIME = "2026-01-01T00:00:00Z"
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


# -- apps -------------------------------------------------------------------------------------


def write_app(root: Path, files: Mapping[str, str]) -> Path:
    """An app folder holding `files` (relative path -> text)."""
    root.mkdir(parents=True, exist_ok=True)
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def copy_app(src: Path, dest: Path, ignore: Sequence[str] = ()) -> Path:
    """Copy an app folder (its *.hcl, data/ and code/) without what `ignore` names."""
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns(".mlp", *ignore), dirs_exist_ok=True)
    return dest


def analysed(app_dir: Path, sample: int | None = None, variables: Mapping[str, str] | None = None) -> Analysis:
    """The real analysis of an app that must be valid; its diagnostics in the failure otherwise."""
    analysis, diags = analyse(app_dir, dict(variables or {}), sample)
    if analysis is None:
        pytest.fail("the app does not analyse:\n" + "\n".join(format_diagnostic(d) for d in diags.sorted()))
    return analysis


# -- state ------------------------------------------------------------------------------------


LAST_RUN = {"source": 4.0, "model": 12.0, "api": 3.0}  # seconds the recorded builds took


def block_record(analysis: Analysis, address: str) -> BlockRecord:
    """The record apply writes for a finished block (`RunContext.record`), at a fixed time."""
    addr = next(a for a in analysis.fingerprints if str(a) == address)
    fp = analysis.fingerprints[addr]
    return BlockRecord(address=address, kind=addr.kind.value, fingerprint=fp.value, status="done",
                       artifact=artifact_key(fp.value) if addr.kind.value != "api" else None,
                       settings=dict(fp.settings),
                       extra=analysis.app.blocks[addr].extra(), inputs=dict(fp.inputs), code=fp.code,
                       metrics={}, digest=None, created_at=FIXED_TIME, updated_at=FIXED_TIME,
                       seconds=LAST_RUN.get(addr.kind.value, 0.5))


def state_from(analysis: Analysis) -> State:
    """The state a successful apply of the analysed app leaves: every block done."""
    state = State.new().with_provider(analysis.app.provider.kind)
    for addr in sorted(analysis.fingerprints):
        state = state.with_block(block_record(analysis, str(addr)))
    return state


def backend(app_dir: Path) -> LocalBackend:
    """The app's state backend (the default `.mlp` folder, as `mlp.api` opens it)."""
    return LocalBackend(app_dir.resolve() / ".mlp")


def record_state(analysis: Analysis) -> State:
    """Store `state_from(analysis)` in the app's backend, with the artifacts it records in the
    store (as the apply that wrote it left them); returns what was stored."""
    state = state_from(analysis)
    for rec in state.blocks.values():
        if rec.artifact and rec.kind != "api":
            commit_artifact(analysis.app.dir, rec.fingerprint)
    return backend(analysis.app.dir).write_state(state)


def commit_artifact(app_dir: Path, fingerprint: str) -> str:
    """Put an artifact for `fingerprint` in the app's store, as an earlier apply would have."""
    store = backend(app_dir).artifacts()
    key = artifact_key(fingerprint)
    tmp = store.temp_dir(key)
    (tmp / "meta.json").write_text(json.dumps({"metrics": {}, "digest": None}))
    store.commit(key, tmp)
    return key


# -- goldens ----------------------------------------------------------------------------------


def normalise(text: str, app_dir: Path, lineage: str | None) -> str:
    """What may differ from run to run, replaced: the app's path, the state's lineage, times."""
    for path in sorted({str(app_dir.resolve()), str(app_dir)}, key=len, reverse=True):
        text = text.replace(path, "<APP>")
    if lineage:
        text = text.replace(lineage, "<LINEAGE>")
    return re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "<TIME>", text)


def check_golden(path: Path, actual: str, update: bool) -> None:
    """Compare `actual` with the golden file; rewrite it instead under --update-goldens."""
    if update:
        path.write_text(actual)
        return
    if not path.exists():
        pytest.fail(f"{path.relative_to(REPO)} does not exist; make it with: pytest --update-goldens")
    expected = path.read_text()
    if actual != expected:
        diff = difflib.unified_diff(expected.splitlines(keepends=True), actual.splitlines(keepends=True),
                                    f"{path.relative_to(REPO)} (expected)", "actual")
        pytest.fail(f"{path.relative_to(REPO)} differs (pytest --update-goldens rewrites it if the change "
                    "is right):\n" + "".join(diff), pytrace=False)


@pytest.fixture
def update_goldens(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-goldens"))


# -- the real command -------------------------------------------------------------------------


def mlp_env(**extra: str) -> dict[str, str]:
    """The environment without anything that changes mlp's output, plus `extra`."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("NO_COLOR", "FORCE_COLOR", "MLP_IN_AUTOMATION", "MLP_DEBUG")}
    env.update(extra)
    return env


def run_mlp(*args: str | Path, cwd: Path | None = None, env: Mapping[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the installed `mlp` binary with stdin closed (so: no terminal)."""
    return subprocess.run([str(MLP), *map(str, args)], cwd=cwd, env=dict(env or mlp_env()),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
