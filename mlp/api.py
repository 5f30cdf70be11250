"""mlp's Python API: one function per verb. The CLI is a thin layer over these.

Every function takes an app folder and plain options, returns a typed result, and
raises an `mlp.errors.MlpError` (never a bare exception) for anything a user can fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from mlp.diagnostics import Diagnostics
from mlp.errors import DiagnosticsError, StateError, UsageError
from mlp.graph.analysis import Analysis, Checked, analyse, check
from mlp.plan.model import Plan
from mlp.plan.planner import PlanOptions, make_plan
from mlp.state.backend import Backend, artifact_key


@dataclass(frozen=True)
class Validated:
    checked: Checked
    diagnostics: Diagnostics


@dataclass(frozen=True)
class Planned:
    plan: Plan
    analysis: Analysis
    diagnostics: Diagnostics


def _vars(variables: Sequence[str] | Mapping[str, str] | None) -> dict[str, str]:
    if variables is None:
        return {}
    if isinstance(variables, Mapping):
        return dict(variables)
    out = {}
    for item in variables:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"Invalid --var {item!r}", "A variable is set as NAME=VALUE.",
                             "Write e.g. --var epochs=80")
        out[key.strip()] = value
    return out


def validate(app_dir: Path, variables: Sequence[str] | Mapping[str, str] | None = None) -> Validated:
    checked, diags = check(app_dir, _vars(variables))
    if checked is None:
        raise DiagnosticsError(diags)
    return Validated(checked, diags)


def open_backend(app_dir: Path, kind: str, settings: Mapping[str, Any]) -> Backend:
    if kind == "local":
        from mlp.state.local import LocalBackend

        return LocalBackend(app_dir / str(settings.get("path") or ".mlp"))
    raise UsageError(f'The "{kind}" backend is not available in this version',
                     "This version of mlp stores state in the local backend only.",
                     'Remove the backend block, or use backend "local" {}.')


def backend_for(analysis: Analysis | Checked) -> Backend:
    app = analysis.app
    return open_backend(app.dir, app.backend.kind, app.backend.settings)


def plan(app_dir: Path, *, variables: Sequence[str] | Mapping[str, str] | None = None,
         targets: Sequence[str] = (), replace: Sequence[str] = (), sample: int | None = None) -> Planned:
    if sample is not None and sample < 0:
        raise UsageError("--sample must be 0 or more", f"It is {sample}.", "0 means all rows; N a sample of N rows.")
    var_map = _vars(variables)
    analysis, diags = analyse(app_dir, var_map, sample)
    if analysis is None:
        raise DiagnosticsError(diags)
    backend = backend_for(analysis)
    try:
        state = backend.read_state()
    except StateError:
        raise
    store = backend.artifacts()
    opts = PlanOptions(tuple(targets), tuple(replace), tuple(sorted(var_map.items())), sample)
    the_plan = make_plan(analysis, state, lambda fp: store.has(artifact_key(fp)), opts)
    return Planned(the_plan, analysis, diags)


def unlock(app_dir: Path, lock_id: str) -> None:
    checked, diags = check(app_dir)
    if checked is None:
        raise DiagnosticsError(diags)
    backend_for(checked).unlock(lock_id)


@dataclass(frozen=True)
class StateView:
    """What `mlp show` prints: every block in state, in address order."""

    app: str
    lineage: str
    serial: int
    blocks: tuple[dict[str, Any], ...]
    outputs: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"app": self.app, "lineage": self.lineage, "serial": self.serial,
                "blocks": list(self.blocks), "outputs": dict(self.outputs)}


def show(app_dir: Path) -> StateView:
    from mlp.graph.address import Address

    checked, diags = check(app_dir)
    if checked is None:
        raise DiagnosticsError(diags)
    backend = backend_for(checked)
    state = backend.read_state()
    store = backend.artifacts()
    rows = []
    for addr in sorted(state.blocks, key=Address.parse):
        rec = state.blocks[addr]
        row = rec.to_json()
        row["in_app"] = Address.parse(addr) in checked.app.blocks
        row["artifact"] = str(store.local_path(rec.artifact)) if rec.artifact else None
        rows.append(row)
    return StateView(checked.app.name, state.lineage, state.serial, tuple(rows), dict(state.outputs))


def graph(app_dir: Path, fmt: str = "dot", out_file: Path | None = None) -> str | Path:
    """DOT text of the block graph; or an SVG/PNG written by Graphviz's `dot`."""
    import shutil
    import subprocess

    from mlp.graph.dot import to_dot

    if fmt not in ("dot", "svg", "png"):
        raise UsageError(f"Unknown graph format {fmt!r}", "Use dot, svg or png.")
    checked, diags = check(app_dir)
    if checked is None:
        raise DiagnosticsError(diags)
    text = to_dot(checked.app, checked.graph)
    if fmt == "dot":
        if out_file is not None:
            out_file.write_text(text)
            return out_file
        return text
    dot = shutil.which("dot")
    if dot is None:
        raise UsageError(f"Rendering {fmt.upper()} needs Graphviz's `dot` program, which is not installed",
                         "", "Install Graphviz (apt-get install graphviz), or use --format dot.")
    target = out_file or Path(f"graph.{fmt}")
    proc = subprocess.run([dot, f"-T{fmt}", "-o", str(target)], input=text.encode(), capture_output=True)
    if proc.returncode != 0:
        raise UsageError("Graphviz failed", proc.stderr.decode(errors="replace")[-500:])
    return target
