"""mlp's Python API: one function per verb. The CLI is a thin layer over these.

Every function takes an app folder and plain options, returns a typed result, and
raises an `mlp.errors.MlpError` (never a bare exception) for anything a user can fix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from mlp.diagnostics import Diagnostics
from mlp.errors import DiagnosticsError, UsageError
from mlp.graph.analysis import Analysis, Checked, analyse, check
from mlp.plan.model import Action, Plan
from mlp.plan.planner import PlanOptions, extras_digests, make_plan
from mlp.state.backend import Backend, artifact_key
from mlp.state.model import State

if TYPE_CHECKING:
    from mlp.config.blocks import App
    from mlp.engine.apply import ApplyResult
    from mlp.providers import Preview
    from mlp.state.moves import Home


@dataclass(frozen=True)
class Validated:
    checked: Checked
    diagnostics: Diagnostics


@dataclass(frozen=True)
class Planned:
    plan: Plan
    analysis: Analysis
    diagnostics: Diagnostics
    infrastructure: Preview = field(default_factory=lambda: _no_preview())


def _no_preview() -> Preview:
    from mlp.providers import Preview

    return Preview()


def infrastructure_json(preview: Preview) -> dict[str, Any]:
    """The provider's preview as the plan's JSON shows it."""
    return {"changes": [{"address": c.address, "action": c.action, "reason": c.reason} for c in preview.changes],
            "note": preview.note}


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


_TRANSFERS: list[Callable[[Any], None]] = []  # who is told of artifact transfers (the CLI's bars)


def on_transfer(hook: Callable[[Any], None] | None) -> None:
    """Tell `hook` of every artifact moved to or from a remote backend's bucket, with its
    `TransferProgress` (after it starts and after each file); None stops telling."""
    _TRANSFERS[:] = [hook] if hook is not None else []


def open_backend(app_dir: Path, kind: str, settings: Mapping[str, Any]) -> Backend:
    """The app's backend: local, s3, gcs or azurerm (see mlp.state.backends and docs/backends.md)."""
    from mlp.state.backends import open_backend as open_by_kind

    return open_by_kind(app_dir, kind, settings, on_progress=_TRANSFERS[0] if _TRANSFERS else None)


def backend_for(analysis: Analysis | Checked) -> Backend:
    app = analysis.app
    return open_backend(app.dir, app.backend.kind, app.backend.settings)


def plan(app_dir: Path, *, variables: Sequence[str] | Mapping[str, str] | None = None,
         targets: Sequence[str] = (), replace: Sequence[str] = (), sample: int | None = None,
         refresh: bool = True) -> Planned:
    if sample is not None and sample < 0:
        raise UsageError("--sample must be 0 or more", f"It is {sample}.", "0 means all rows; N a sample of N rows.")
    var_map = _vars(variables)
    analysis, diags = analyse(app_dir, var_map, sample)
    if analysis is None:
        raise DiagnosticsError(diags)
    home = _home(analysis)
    the_plan = _make_plan(analysis, home, home.state(), var_map, targets, replace, sample, refresh)
    return Planned(the_plan, analysis, diags, _preview(analysis, the_plan))


def _preview(analysis: Analysis, the_plan: Plan) -> Preview:
    """What the provider would change in its infrastructure (Kubernetes objects, cloud
    resources); what it cannot preview becomes the preview's note, not a failed plan."""
    from mlp.errors import MlpError
    from mlp.providers import Preview, provider_for

    if analysis.app.provider.kind == "local":
        return Preview()  # it provisions nothing
    try:
        return provider_for(analysis.app.provider, analysis.app).preview(the_plan)
    except MlpError as e:
        return Preview(note=e.summary + (f": {e.detail}" if e.detail else ""))


def _home(analysis: Analysis) -> Home:
    from mlp.state.moves import home_of

    return home_of(analysis.app, backend_for(analysis), open_backend)


def _make_plan(analysis: Analysis, home: Home, state: State, var_map: Mapping[str, str],
               targets: Sequence[str], replace: Sequence[str], sample: int | None, refresh: bool) -> Plan:
    """The plan of an analysed app against `state`, reusing what the artifact store holds;
    with `refresh`, the provider first says what is really there (as Terraform refreshes).
    On a backend move, `state` and what refresh reads are the old backend's, and what only
    its store holds is copied."""
    from dataclasses import replace as with_fields

    from mlp.providers import provider_for

    store = home.backend.artifacts()
    old = home.old.artifacts() if home.old is not None else None
    seen = provider_for(analysis.app.provider, analysis.app).refresh(state, old or store) if refresh else None
    opts = PlanOptions(tuple(targets), tuple(replace), tuple(sorted(var_map.items())), sample, seen)
    the_plan = make_plan(analysis, state, lambda fp: store.has(artifact_key(fp)), opts,
                         (lambda fp: old.has(artifact_key(fp))) if old is not None else None)
    notes = _notes(analysis, home, state, the_plan)
    return with_fields(the_plan, move=home.move, notes=notes) if home.move or notes else the_plan


def _notes(analysis: Analysis, home: Home, state: State, the_plan: Plan) -> tuple[str, ...]:
    """What the plan says beside the blocks: the backend move, and what an old provider
    still holds after the app leaves it."""
    from mlp.providers import leftovers

    notes = []
    if home.move is not None:
        copies = the_plan.summary().copy
        notes.append(f"{home.move.line()} Apply moves the state there first, then copies the {copies} "
                     f"output{'s' if copies != 1 else ''} the plan takes from the old backend's store "
                     "instead of rebuilding them; the old backend is left as it is.")
    if state.provider and state.provider != analysis.app.provider.kind:
        old_backend = home.move.old if home.move is not None else None
        note = leftovers(state.provider, analysis.app, old_backend)
        if note:
            notes.append(note)
    return tuple(notes)


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
    checked, diags = check(app_dir)
    if checked is None:
        raise DiagnosticsError(diags)
    return _state_view(checked, backend_for(checked))


def _state_view(checked: Checked, backend: Backend) -> StateView:
    from mlp.graph.address import Address

    state = backend.read_state()
    store = backend.artifacts()
    rows = []
    for addr in sorted(state.blocks, key=Address.parse):
        rec = state.blocks[addr]
        row = rec.to_json()
        row["in_app"] = Address.parse(addr) in checked.app.blocks
        row["artifact"] = store.location(rec.artifact) if rec.artifact else None
        rows.append(row)
    return StateView(checked.app.name, state.lineage, state.serial, tuple(rows), dict(state.outputs))


@dataclass(frozen=True)
class BlockView:
    """What `mlp show ADDRESS` prints: one block's record, where its output and log are,
    and, for an api, its endpoint."""

    address: str
    record: Mapping[str, Any]
    in_app: bool
    artifact: str | None
    log: str | None
    endpoint: Mapping[str, Any] | None

    def to_json(self) -> dict[str, Any]:
        return {**dict(self.record), "in_app": self.in_app, "artifact": self.artifact, "log": self.log,
                "endpoint": dict(self.endpoint) if self.endpoint else None}


def show_block(app_dir: Path, address: str) -> BlockView:
    """One block of the state; a UsageError with "did you mean" when the state has none."""
    from mlp.config.values import did_you_mean

    checked, diags = check(app_dir)
    if checked is None:
        raise DiagnosticsError(diags)
    backend = backend_for(checked)
    view = _state_view(checked, backend)
    rows = {str(b["address"]): b for b in view.blocks}
    if address not in rows:
        hint = did_you_mean(address, sorted(rows)) or "`mlp show` lists the blocks in the state."
        raise UsageError(f"No block {address} in the state", "It has not been applied, or the address is wrong.",
                         hint)
    row = dict(rows[address])
    in_app, artifact = bool(row.pop("in_app")), row.pop("artifact")
    log = backend.logs().path(address)
    return BlockView(address, row, in_app, artifact, str(log) if log.exists() else None,
                     view.outputs.get(address))


def state_list(app_dir: Path) -> list[str]:
    """`mlp state list`: every address the state records, in address order."""
    from mlp.graph.address import Address

    checked, diags = check(app_dir)
    if checked is None:
        raise DiagnosticsError(diags)
    return sorted(backend_for(checked).read_state().blocks, key=Address.parse)


def state_pull(app_dir: Path) -> str:
    """`mlp state pull`: the stored state (journal replayed) as one JSON document."""
    import json

    checked, diags = check(app_dir)
    if checked is None:
        raise DiagnosticsError(diags)
    return json.dumps(backend_for(checked).read_state().to_json(), indent=2, sort_keys=True) + "\n"


def state_push(app_dir: Path, state_file: Path, force: bool = False) -> int:
    """`mlp state push FILE`: store a state document in the app's backend, under the lock;
    returns the serial stored. As in Terraform, a state of another lineage is refused, and
    so is one older than the stored one unless `force`."""
    import json

    from mlp.state.backend import locked
    from mlp.state.model import State

    checked, diags = check(app_dir)
    if checked is None:
        raise DiagnosticsError(diags)
    try:
        from mlp.safeio import read_regular

        pushed = State.from_json(json.loads(read_regular(state_file, 1 << 30)))
    except OSError as e:
        raise UsageError(f"Cannot read {state_file}", str(e), "Give the path of a state file (`mlp state pull`).") \
            from None
    except ValueError as e:
        raise UsageError(f"{state_file} is not an mlp state", str(e)[:300],
                         "Give a file written by `mlp state pull`.") from None
    backend = backend_for(checked)
    with locked(backend, "mlp state push"):
        stored = backend.read_state()
        if stored.blocks or stored.serial:
            if stored.lineage != pushed.lineage:
                raise UsageError(f"{state_file} is the state of another app",
                                 f"Its lineage is {pushed.lineage}; the backend's is {stored.lineage}.",
                                 "Push a state pulled from this app's backend.")
            if pushed.serial < stored.serial and not force:
                raise UsageError(f"{state_file} is older than the stored state",
                                 f"Its serial is {pushed.serial}; the backend's is {stored.serial}.",
                                 "Pull the state again, or pass --force to replace the newer one.")
        return backend.write_state(pushed).serial


def render(app_dir: Path, out_dir: Path) -> list[Path]:
    """`mlp render DIR`: every manifest the app's provider would apply, written as files.
    Only a provider with manifests (kubernetes, and the clouds on top of it) has any."""
    checked, diags = check(app_dir)
    if checked is None:
        raise DiagnosticsError(diags)
    provider = checked.app.provider
    if provider.kind == "local":
        raise UsageError("The local provider has no manifests to render",
                         "It runs every job on this machine; nothing is sent to a cluster.",
                         'Render an app whose provider is "kubernetes" (or a cloud provider).')
    from mlp.providers import provider_for

    made = provider_for(provider, checked.app)
    write = getattr(made, "render", None)
    if write is None:
        raise UsageError(f'The "{provider.kind}" provider has no manifests to render', "", "")
    return list(write(out_dir))


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
    if out_file is not None and not out_file.parent.is_dir():
        raise UsageError(f"Cannot write the graph to {out_file}", f"The folder {out_file.parent} does not exist.",
                         "Create it, or give another --out path.")
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


def _parallelism(analysis: Analysis, parallelism: int | None) -> int:
    if parallelism is not None:
        if parallelism < 1:
            raise UsageError("--parallelism must be at least 1", f"It is {parallelism}.")
        return parallelism
    return analysis.app.provider.parallelism


def apply(app_dir: Path, *, plan_file: Path | None = None,
          variables: Sequence[str] | Mapping[str, str] | None = None, targets: Sequence[str] = (),
          replace: Sequence[str] = (), sample: int | None = None, parallelism: int | None = None,
          hooks: Any = None, confirm: Callable[[Plan], bool] | None = None, refresh: bool = True) -> ApplyResult:
    """Plan (or load a saved plan), confirm, and apply under the state lock."""
    from mlp.engine.apply import apply_plan
    from mlp.engine.events import NullHooks
    from mlp.state.backend import locked

    hooks = hooks or NullHooks()
    saved = None
    if plan_file is not None:
        from mlp.plan.planfile import read_plan

        saved = read_plan(plan_file)
        variables, targets, replace, sample = saved.variables, saved.targets, saved.replace, saved.sample
    var_map = _vars(variables)
    analysis, diags = analyse(app_dir, var_map, sample)
    if analysis is None:
        raise DiagnosticsError(diags)
    home = _home(analysis)
    backend = home.backend
    with locked(backend, "mlp apply"), home.locked_old("mlp apply (moving its state)"):
        state = home.state()
        if saved is not None:
            _check_saved(saved, analysis, state.lineage, state.serial)
            home.check_saved(saved)
            the_plan = saved
        else:
            the_plan = _make_plan(analysis, home, state, var_map, targets, replace, sample, refresh)
            if confirm is not None and the_plan.has_changes and not confirm(the_plan):
                raise UsageError("Apply cancelled", "Nothing was changed.")
        run = home.carry_over(the_plan)  # on a move: the state, then the outputs to copy
        result = apply_plan(analysis, run, backend, hooks, _parallelism(analysis, parallelism))
    if run is the_plan:
        return result
    from dataclasses import replace as with_fields

    copied = tuple(str(c.address) for c in the_plan.changes if c.action is Action.COPY)
    return with_fields(result, plan=the_plan, copied=copied,
                       reused=tuple(a for a in result.reused if a not in copied))


def _check_saved(saved: Plan, analysis: Analysis, lineage: str, serial: int) -> None:
    from mlp.errors import PlanFileError
    from mlp.plan.planfile import check_fresh

    check_fresh(saved, lineage, serial, {str(k): v for k, v in analysis.data.items()},
                {str(k): v for k, v in analysis.code.items()})
    moved = {str(c.address) for c in saved.changes if c.fingerprint_after is not None
             and (c.address not in analysis.fingerprints
                  or analysis.fingerprints[c.address].value != c.fingerprint_after)}
    now = extras_digests(analysis, (c.address for c in saved.changes))
    moved |= {a for a in set(now) | set(saved.extras) if now.get(a) != saved.extras.get(a)}
    if moved:
        raise PlanFileError("The saved plan is stale",
                            "The app's configuration changed since the plan was made: "
                            + ", ".join(sorted(moved)) + ".",
                            "Make a new plan with: mlp plan --out FILE")


@dataclass(frozen=True)
class Destroyed:
    blocks: tuple[str, ...]
    artifacts: int
    apis_stopped: tuple[str, ...]
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class _StateHome:
    """Where destroy finds the state, even when the app's files no longer validate."""

    backend: Backend
    warning: str = ""
    app: App | None = None  # None: the app's files do not validate


def _state_home(app_dir: Path) -> _StateHome:
    checked, diags = check(app_dir)
    if checked is not None:
        return _StateHome(backend_for(checked), app=checked.app)
    from mlp.config.loader import parse_app
    from mlp.diagnostics import Diagnostics, format_diagnostic

    blocks = [b for pf in parse_app(app_dir, None, Diagnostics()) for b in pf.blocks if b.kind == "backend"]
    kind, settings = "local", {"path": ".mlp"}
    if blocks and blocks[0].labels:
        path = blocks[0].attrs.get("path")
        kind = blocks[0].labels[0]
        settings = {"path": path.value if path is not None and isinstance(path.value, str) else ".mlp"}
    errors = diags.errors()
    first = format_diagnostic(errors[0]).splitlines()[:2] if errors else []
    warning = (f"The app's files do not validate ({len(errors)} error{'s' if len(errors) != 1 else ''}); "
               f"destroying what the state in the {kind} backend records. " + " ".join(ln.strip() for ln in first))
    return _StateHome(open_backend(app_dir, kind, settings), warning)


def destroy_preview(app_dir: Path) -> tuple[tuple[str, ...], str]:
    """The addresses destroy would remove, and the warning it would give."""
    home = _state_home(app_dir)
    return tuple(sorted(home.backend.read_state().blocks)), home.warning


def destroy(app_dir: Path, confirm: Callable[[tuple[str, ...]], bool] | None = None) -> Destroyed:
    """Stop the app's APIs, empty its state, and delete the artifacts no state refers to.

    Works from the state alone: an app whose files no longer validate is still torn down,
    with a warning that says so."""
    from mlp.engine.serving import stop_api
    from mlp.state.backend import locked

    home = _state_home(app_dir)
    backend = home.backend
    with locked(backend, "mlp destroy"):
        state = backend.read_state()
        blocks = tuple(sorted(state.blocks))
        if confirm is not None and blocks and not confirm(blocks):
            raise UsageError("Destroy cancelled", "Nothing was changed.")
        apis = sorted({a for a in blocks if a.startswith("api.")} | {k for k in state.outputs if k.startswith("api.")})
        from mlp.providers import provider_for

        provider = (provider_for(home.app.provider, home.app) if home.app is not None
                    and home.app.provider.kind == (state.provider or home.app.provider.kind)
                    else provider_for(state.provider or "local"))
        stopped = tuple(a for a in apis if stop_api(backend, a, provider))
        provider.teardown()  # what the provider provisioned goes last
        for a in blocks:
            backend.remove_block(a)
        for key in list(backend.read_state().outputs):
            backend.set_output(key, None)
        store = backend.artifacts()
        keys = store.keys()
        for k in keys:  # the local store belongs to this app's state alone
            store.delete(k)
        backend.write_state(backend.read_state())
    return Destroyed(blocks, len(keys), stopped, (home.warning,) if home.warning else ())


def logs(app_dir: Path, address: str) -> Path:
    checked, diags = check(app_dir)
    if checked is None:
        raise DiagnosticsError(diags)
    store = backend_for(checked).logs()
    path = store.path(address)
    if not path.exists():
        text = store.read(address)  # a remote backend's log, written on another machine
        if text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            return path
        raise UsageError(f"No logs for {address}", f"Nothing has been logged at {path}.",
                         "Run `mlp apply` first, or check the address with `mlp show`.")
    return path


def outputs(app_dir: Path) -> dict[str, Any]:
    """API endpoints and model metrics."""
    view = show(app_dir)
    out: dict[str, Any] = {"apis": {}, "models": {}}
    for key, value in sorted(view.outputs.items()):
        if key.startswith("api."):
            out["apis"][key] = value
    for b in view.blocks:
        if b["kind"] == "model":
            out["models"][b["address"]] = b["metrics"].get("eval", {})
    return out


def predict(app_dir: Path, api_name: str, text: str) -> tuple[int, Any]:
    """POST instances to a running API. `text` is one instance, a list, or {"instances": [...]}."""
    import json

    import httpx

    try:
        payload = json.loads(text)
    except ValueError as e:
        raise UsageError("The instances are not valid JSON", str(e), "Pass e.g. --data '{\"x\": 1}'") from None
    if isinstance(payload, dict) and "instances" not in payload:
        payload = {"instances": [payload]}
    elif isinstance(payload, list):
        payload = {"instances": payload}
    address = api_name if api_name.startswith("api.") else f"api.{api_name}"
    endpoint = show(app_dir).outputs.get(address)
    if not endpoint:
        raise UsageError(f"{address} is not running", "The state has no endpoint for it.",
                         "Run `mlp apply` first; `mlp output` lists the endpoints.")
    from mlp.providers import Endpoint
    from mlp.providers.local import is_local_url

    parsed = Endpoint.from_json(endpoint)
    if parsed is None or not is_local_url(parsed.url, parsed.port):
        raise UsageError(f"{address}: the state's endpoint is not a local server", f"It records {endpoint!r:.120}.",
                         "Run `mlp apply` to start the api again; it records the endpoint anew.")
    try:
        resp = httpx.post(f"{endpoint['url']}/predict", json=payload, timeout=30)
    except httpx.HTTPError as e:
        raise UsageError(f"{address} does not answer at {endpoint['url']}", str(e),
                         "`mlp plan` shows it as not_running; `mlp apply` starts it again.") from None
    try:
        return resp.status_code, resp.json()
    except ValueError:
        return resp.status_code, {"error": resp.text}
