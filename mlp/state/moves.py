"""Moving an app to another backend, as `terraform init -migrate-state` does.

mlp remembers in the app folder which backend it last used (`.mlp/backend.json`, as
Terraform keeps `.terraform/terraform.tfstate`): the backend block's kind and settings,
never a credential. When the block changes, the next plan is made from the state in the old
backend, and says so; apply moves the state into the new one (which must be empty, or hold
the same app's state) and copies there the artifacts the plan still needs, instead of
building them again: artifacts are content-addressed, so a copy is the same output.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlp.errors import StateError
from mlp.safeio import read_regular
from mlp.state.backend import ArtifactStore, Backend
from mlp.state.model import State

if TYPE_CHECKING:
    from mlp.config.blocks import App
    from mlp.plan.model import Plan

MEMORY = Path(".mlp") / "backend.json"
_LIMIT = 1 << 16
_SCALARS = (str, int, float, bool)


@dataclass(frozen=True)
class BackendSpec:
    """A backend block as written: its kind and settings (no secrets: those never go in one)."""

    kind: str
    settings: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "settings": dict(sorted(self.settings.items()))}

    @classmethod
    def from_json(cls, d: Any) -> BackendSpec | None:
        """The remembered backend; None for anything but the exact shape (it is only data)."""
        if not isinstance(d, dict) or not isinstance(d.get("kind"), str) or not isinstance(d.get("settings"), dict):
            return None
        settings = d["settings"]
        if not all(isinstance(k, str) and isinstance(v, _SCALARS) for k, v in settings.items()):
            return None
        return cls(d["kind"], dict(settings))

    def describe(self) -> str:
        where = {"s3": "bucket", "gcs": "bucket", "azurerm": "container", "local": "path"}.get(self.kind, "")
        place = self.settings.get(where) if where else None
        prefix = self.settings.get("prefix")
        return f'backend "{self.kind}"' + (f" ({place}{'/' + str(prefix) if prefix else ''})" if place else "")

    def same_place(self, other: BackendSpec) -> bool:
        """Whether both name the same storage (defaults filled in: no `path` is `.mlp`)."""
        return _normal(self) == _normal(other)


def _normal(spec: BackendSpec) -> tuple[str, tuple[tuple[str, str], ...]]:
    settings = {k: str(v) for k, v in spec.settings.items() if v not in ("", None)}
    if spec.kind == "local":
        settings.setdefault("path", ".mlp")
    return spec.kind, tuple(sorted(settings.items()))


@dataclass(frozen=True)
class Move:
    """The backend changed since the app last used one."""

    old: BackendSpec
    new: BackendSpec

    def line(self) -> str:
        return f"The backend changed: {self.old.describe()} -> {self.new.describe()}."

    def to_json(self) -> dict[str, Any]:
        return {"from": self.old.to_json(), "to": self.new.to_json()}

    @classmethod
    def from_json(cls, d: Any) -> Move | None:
        old = BackendSpec.from_json(d.get("from")) if isinstance(d, dict) else None
        new = BackendSpec.from_json(d.get("to")) if isinstance(d, dict) else None
        return cls(old, new) if old is not None and new is not None else None


def remembered(app_dir: Path) -> BackendSpec | None:
    try:
        return BackendSpec.from_json(json.loads(read_regular(app_dir / MEMORY, _LIMIT)))
    except (OSError, ValueError):
        return None


def remember(app_dir: Path, spec: BackendSpec) -> None:
    """Keep the backend this app used last (written whole: temp file, then rename)."""
    path = app_dir / MEMORY
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(spec.to_json(), indent=1) + "\n")
    os.replace(tmp, path)


def pending_move(app_dir: Path, current: BackendSpec) -> Move | None:
    last = remembered(app_dir)
    return Move(last, current) if last is not None and not last.same_place(current) else None


def move_state(old: Backend, new: Backend) -> State:
    """The old backend's state, stored in the new one (the caller holds both locks). The new
    one must hold nothing, or the same app's state at the same or an older serial."""
    state = old.read_state()
    there = new.read_state()
    if there.blocks or there.serial:
        if there.lineage != state.lineage:
            raise StateError("The new backend already holds another app's state",
                             f"Its lineage is {there.lineage}; this app's is {state.lineage}.",
                             "Point the backend block at an empty prefix, or move that state away first.")
        if there.serial > state.serial:
            return there  # moved already, and used since: nothing to bring over
    return new.write_state(state)


def copy_artifacts(old: ArtifactStore, new: ArtifactStore, keys: Iterable[str],
                   on_copied: Callable[[str], None] | None = None) -> tuple[str, ...]:
    """Each key the new store lacks and the old one holds, copied whole (built in a temp
    folder of the new store, then committed); returns the keys copied."""
    copied = []
    for key in sorted(set(keys)):
        if new.has(key) or not old.has(key):
            continue
        tmp = new.temp_dir(key)
        source = old.local_path(key)
        for item in source.iterdir():
            if item.is_dir():
                shutil.copytree(item, tmp / item.name)
            else:
                shutil.copy2(item, tmp / item.name)
        new.commit(key, tmp)
        copied.append(key)
        if on_copied is not None:
            on_copied(key)
    return tuple(copied)


class Home:
    """Where an app's state is, and where it moves: the backend its block names and, while a
    move is pending, the one it last used. `state()` is the state the plan starts from."""

    def __init__(self, app_dir: Path, backend: Backend, spec: BackendSpec,
                 old: Backend | None = None, move: Move | None = None) -> None:
        self.app_dir, self.backend, self.spec, self.old, self.move = app_dir, backend, spec, old, move

    def state(self) -> State:
        return self.old.read_state() if self.old is not None else self.backend.read_state()

    @contextmanager
    def locked_old(self, command: str) -> Iterator[None]:
        """The old backend's lock too, while its state moves (nothing without a move)."""
        if self.old is None:
            yield
            return
        from mlp.state.backend import locked

        with locked(self.old, command):
            yield

    def check_saved(self, saved: Plan) -> None:
        """A saved plan is applied only under the move it was made for."""
        from mlp.errors import PlanFileError

        if (saved.move is None) != (self.move is None) or (
                saved.move is not None and self.move is not None
                and not (saved.move.old.same_place(self.move.old) and saved.move.new.same_place(self.move.new))):
            now = self.move.line() if self.move else "The backend is the one the app last used."
            raise PlanFileError("The saved plan is stale", f"It was made for another backend. {now}",
                                "Make a new plan with: mlp plan --out FILE")

    def carry_over(self, plan: Plan) -> Plan:
        """Before apply runs anything: the state moved into the new backend and the outputs
        the plan copies brought over; the backend remembered. Returns the plan the engine
        runs, where a copy is what it became: the block as it is in the state (no-op), or an
        output found in the store (reuse)."""
        from dataclasses import replace as with_fields

        from mlp.plan.model import Action, Change

        if self.move is None or self.old is None:
            _remember_quietly(self.app_dir, self.spec)
            return plan
        state = move_state(self.old, self.backend)
        copies = [c for c in plan.changes if c.action is Action.COPY]
        carry_tables(self.old.artifacts(), self.backend.artifacts(),
                     [artifact_of(state, c.address, c.fingerprint_after) for c in copies])
        _remember_quietly(self.app_dir, self.spec)

        def became(c: Change) -> Change:
            rec = state.blocks.get(str(c.address))
            kept = rec is not None and rec.status == "done" and rec.fingerprint == c.fingerprint_after
            return with_fields(c, action=Action.NOOP if kept else Action.REUSE)

        return with_fields(plan, changes=tuple(became(c) if c.action is Action.COPY else c for c in plan.changes))


def artifact_of(state: State, address: object, fingerprint: str | None) -> str:
    from mlp.state.backend import artifact_key

    rec = state.blocks.get(str(address))
    if rec is not None and rec.artifact and rec.fingerprint == fingerprint:
        return rec.artifact
    return artifact_key(fingerprint or "")


def carry_tables(old: ArtifactStore, new: ArtifactStore, keys: Iterable[str]) -> tuple[str, ...]:
    """`copy_artifacts` of these keys and of the tables their outputs point at (a column's
    artifact names the table artifact it is a column of)."""
    from mlp.engine.context import read_meta

    todo, seen, copied = sorted(set(keys)), set[str](), list[str]()
    while todo:
        copied += copy_artifacts(old, new, todo)
        seen |= set(todo)
        tables = {read_meta(new, k).get("table") for k in todo if new.has(k)}
        todo = sorted(t for t in tables if isinstance(t, str) and t not in seen)
    return tuple(copied)


def _remember_quietly(app_dir: Path, spec: BackendSpec) -> None:
    """The backend used, kept for the next plan; a folder mlp cannot write (a read-only
    checkout) only means that a later move of the backend block is not detected."""
    with contextlib.suppress(OSError):
        remember(app_dir, spec)


def home_of(app: App, backend: Backend, open_backend: Callable[[Path, str, Mapping[str, Any]], Backend]) -> Home:
    """The app's Home: a move is pending when the backend block names another place than
    the one remembered, and the old one holds this app's state not yet moved."""
    from mlp.errors import MlpError

    app_dir = Path(app.dir)
    spec = BackendSpec(app.backend.kind, {k: v for k, v in app.backend.settings.items() if isinstance(v, _SCALARS)})
    move = pending_move(app_dir, spec)
    if move is None:
        return Home(app_dir, backend, spec)
    try:
        old = open_backend(app_dir, move.old.kind, move.old.settings)
        old_state = old.read_state()
    except MlpError as e:
        raise StateError(f"The app last used {move.old.describe()}, and it cannot be read",
                         f"{e.summary}. {e.detail}".strip(),
                         f"Give mlp access to it again to move the state, or delete {MEMORY} in the app "
                         "folder to start from the new backend's state alone") from None
    there = backend.read_state()
    if not old_state.blocks and not old_state.serial:
        return Home(app_dir, backend, spec)  # nothing there to move
    if there.blocks or there.serial:
        if there.lineage != old_state.lineage:
            raise StateError("The new backend already holds another app's state",
                             f"Its lineage is {there.lineage}; the state in {move.old.describe()} is "
                             f"{old_state.lineage}.",
                             "Point the backend block at an empty prefix, or move that state away first.")
        if there.serial >= old_state.serial:
            return Home(app_dir, backend, spec)  # moved already
    return Home(app_dir, backend, spec, old, move)
