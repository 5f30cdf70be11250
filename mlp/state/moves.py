"""Moving an app to another backend, as `terraform init -migrate-state` does.

mlp remembers in the app folder which backend it last used (`.mlp/backend.json`, as
Terraform keeps `.terraform/terraform.tfstate`): the backend block's kind and settings,
never a credential. When the block changes, the next plan is made from the state in the old
backend, and says so; apply moves the state into the new one (which must be empty, or hold
the same app's state) and copies there the artifacts the plan still needs, instead of
building them again: artifacts are content-addressed, so a copy is the same output.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlp.errors import StateError
from mlp.safeio import read_regular
from mlp.state.backend import ArtifactStore, Backend
from mlp.state.model import State

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
