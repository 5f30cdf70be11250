"""The serving bundle: everything the prediction API needs for one model, in one folder.

    bundle.json       the model, its raw input schema, the transforms, the aggregate values
    saved_model/      the trained model (signature `serving_default`, see runtime.train)
    code/NAME.py      copies of the custom transformer files the transforms run
    steps/NAME/       bundles of the models used as transformations (the same layout)

A bundle is self-contained: `write_bundle` copies custom code and nested bundles in and
stores their paths relative to the folder, so the folder can be moved or shipped into a
container image. bundle.json:

    {"model": "model.dnn", "fingerprint": "...", "type": "classification",
     "raw_columns": [{"name", "field", "type", "required", "min", "max", "values"}],
     "transforms": [{"name", "transformer", "inputs": {slot: {"kind", "name"}}, "args",
                     "custom_path", "output_type"}            # a transformed column, or
                    {"name", "model_bundle"}],                # a model's predictions
     "aggregates": {"name": value}, "features": ["name"], "labels": [...] | null,
     "metrics": {...}}

Transforms are listed in the order they run; each may read the raw columns and the
columns made before it.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlp.coltypes import ColumnType
from mlp.errors import MlpError
from runtime.transforms import InputRef, TransformJob


class BundleError(MlpError):
    """A bundle folder is missing or malformed."""


@dataclass(frozen=True)
class RawColumn:
    """One raw input of the API and the rules a request's value must keep. `name` is the column
    the transforms and the model read; `field` is the request's field that holds it (the `column`
    of an instance of a raw_column with for_each; else, and in older bundles, the name)."""

    name: str
    type: ColumnType
    required: bool = True
    min: float | None = None
    max: float | None = None
    values: tuple[Any, ...] | None = None
    field: str = ""

    def __post_init__(self) -> None:
        if not self.field:
            object.__setattr__(self, "field", self.name)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "field": self.field, "type": self.type.value, "required": self.required,
                "min": self.min, "max": self.max,
                "values": list(self.values) if self.values is not None else None}


@dataclass(frozen=True)
class ModelStep:
    """A column of another model's predictions (class index, or value)."""

    name: str
    bundle: Path


Step = TransformJob | ModelStep


@dataclass(frozen=True)
class Bundle:
    path: Path
    model: str
    fingerprint: str
    type: str  # "classification" | "regression"
    raw_columns: tuple[RawColumn, ...]
    steps: tuple[Step, ...]
    aggregates: Mapping[str, Any] = field(hash=False)
    features: tuple[str, ...]
    labels: tuple[Any, ...] | None
    metrics: Mapping[str, Any] = field(hash=False)

    @property
    def saved_model(self) -> Path:
        return self.path / "saved_model"

    @property
    def classification(self) -> bool:
        return self.type == "classification"

    def metadata(self) -> dict[str, Any]:
        return {"model": self.model, "fingerprint": self.fingerprint, "type": self.type,
                "inputs": [c.to_json() for c in self.raw_columns],
                "features": list(self.features),
                "labels": list(self.labels) if self.labels is not None else None,
                "metrics": dict(self.metrics)}


def write_bundle(dir: str | Path, spec: Mapping[str, Any], saved_model_dir: str | Path) -> Path:
    """Write a bundle folder from bundle.json's content (`spec`) and a SavedModel; custom
    code and nested bundles are copied in. Returns the folder."""
    out = Path(dir)
    out.mkdir(parents=True, exist_ok=True)
    src = Path(saved_model_dir).resolve()
    if src != (out / "saved_model").resolve():
        shutil.rmtree(out / "saved_model", ignore_errors=True)
        shutil.copytree(src, out / "saved_model")
    doc = dict(spec)
    doc["transforms"] = [_copy_step(out, dict(t)) for t in spec.get("transforms", [])]
    tmp = out / "bundle.json.tmp"
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, out / "bundle.json")
    return out


def _copy_step(out: Path, step: dict[str, Any]) -> dict[str, Any]:
    if step.get("model_bundle"):
        src = Path(step["model_bundle"])
        dest = out / "steps" / step["name"]
        if src.resolve() != dest.resolve():
            shutil.rmtree(dest, ignore_errors=True)
            shutil.copytree(src, dest)
        step["model_bundle"] = f"steps/{step['name']}"
    elif step.get("custom_path"):
        dest = out / "code" / f"{step['name']}.py"
        dest.parent.mkdir(exist_ok=True)
        if Path(step["custom_path"]).resolve() != dest.resolve():
            shutil.copyfile(step["custom_path"], dest)
        step["custom_path"] = f"code/{step['name']}.py"
    return step


def load_bundle(dir: str | Path) -> Bundle:
    """The bundle in `dir`; BundleError naming the folder when it is not one."""
    path = Path(dir).resolve()
    try:
        doc = json.loads((path / "bundle.json").read_text())
    except (OSError, ValueError) as e:
        raise BundleError(f"{path} is not a model bundle", f"cannot read bundle.json: {e}",
                          "point at a folder written by `mlp apply` (bundle.json and "
                          "saved_model/)") from None
    if not (path / "saved_model").is_dir():
        raise BundleError(f"{path} is not a model bundle", "it has no saved_model/ folder")
    try:
        return _parse(path, doc)
    except (KeyError, TypeError, ValueError) as e:
        raise BundleError(f"{path}/bundle.json is malformed", f"{type(e).__name__}: {e}"
                          ) from None


def _parse(path: Path, doc: dict[str, Any]) -> Bundle:
    labels = doc.get("labels")
    return Bundle(
        path=path, model=str(doc["model"]), fingerprint=str(doc["fingerprint"]),
        type=str(doc["type"]),
        raw_columns=tuple(_raw(c) for c in doc["raw_columns"]),
        steps=tuple(_step(path, t) for t in doc.get("transforms", [])),
        aggregates=dict(doc.get("aggregates") or {}),
        features=tuple(doc["features"]),
        labels=tuple(labels) if labels is not None else None,
        metrics=dict(doc.get("metrics") or {}))


def _raw(c: dict[str, Any]) -> RawColumn:
    values = c.get("values")
    return RawColumn(str(c["name"]), ColumnType(c["type"]), bool(c.get("required", True)),
                     c.get("min"), c.get("max"), tuple(values) if values is not None else None,
                     str(c.get("field") or c["name"]))


def _step(path: Path, t: dict[str, Any]) -> Step:
    if t.get("model_bundle"):
        return ModelStep(str(t["name"]), path / t["model_bundle"])
    custom = t.get("custom_path")
    inputs = {slot: InputRef(str(r["kind"]), str(r["name"])) for slot, r in t["inputs"].items()}
    return TransformJob(str(t["name"]), str(t.get("transformer") or ""), inputs,
                        dict(t.get("args") or {}), path / custom if custom else None,
                        ColumnType(t.get("output_type") or "FLOAT"))
