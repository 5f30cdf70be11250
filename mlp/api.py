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
