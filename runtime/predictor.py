"""One loaded bundle as the API runs it: validation, the transforms, the model's signature.

A request's instances are checked against the raw columns (runtime.validation); bad ones
raise InvalidInstances naming each instance and field. The transforms then run over the
whole batch (`mlp.builtins.pytransform.compile_columns`: numpy for the numeric built-ins,
pandas for the rest and for custom `transform` functions, with the aggregate values the
model was trained with); the transformed columns the model needs are checked to be finite
(`FiniteColumns`), and the SavedModel's signature is called once per batch
(runtime.signature: a session running in the caller's thread, one tensor per dtype). A
custom transform that raises on the request's values raises TransformFailed naming its
column.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlp.coltypes import ColumnType
from runtime.bundle import Bundle, ModelStep, load_bundle
from runtime.signature import Signature
from runtime.transforms import TransformJob
from runtime.validation import (
    SMALL_BATCH,
    Columns,
    FiniteColumns,
    InvalidInstances,
    Validator,
    finite,
    prediction_errors,
)

_CHECKED = (ColumnType.FLOAT, ColumnType.FLOAT_LIST)  # the types FiniteColumns checks


@dataclass(frozen=True)
class _ModelColumn:
    """A transform step that is another model's predictions."""

    name: str
    predictor: Predictor


class Predictor:
    """A loaded bundle: validation, transforms and the SavedModel signature."""

    def __init__(self, bundle: Bundle) -> None:
        self.bundle = bundle
        self.fingerprint = bundle.fingerprint
        self._validate = Validator(bundle.raw_columns)
        self._signature = Signature(bundle.saved_model)
        self._inputs = self._signature.features
        self._steps = [_ModelColumn(s.name, Predictor(load_bundle(s.bundle)))
                       if isinstance(s, ModelStep) else s for s in bundle.steps]
        self._stages = self._compile()
        self._labels = list(bundle.labels or ())
        self._keys = [lab if isinstance(lab, str) else json.dumps(lab) for lab in self._labels]

    @classmethod
    def load(cls, path: str | Path) -> Predictor:
        """Load and warm up (first signature call, custom code imported)."""
        predictor = cls(load_bundle(path))
        predictor._warm_up()
        return predictor

    def _warm_up(self) -> None:
        from runtime.customcode import load_module

        self._signature(self._signature.sample())  # the session builds its executors
        for step in self._steps:
            if isinstance(step, _ModelColumn):
                step.predictor._warm_up()
            elif step.custom_path is not None:
                load_module(step.custom_path)

    def transform(self, columns: Columns) -> Columns:
        """The raw columns plus the transformed ones, run in bundle order over the batch."""
        for stage in self._stages:
            columns = stage(columns)
        return columns

    def _compile(self) -> list[Callable[[Columns], Columns]]:
        """The steps as stages: each run of transformed columns compiled into one
        (`compile_columns`) and followed by the finite check of those the model needs,
        each model column one."""
        from mlp.builtins.pytransform import compile_columns

        needed = self._needed()
        stages: list[Callable[[Columns], Columns]] = []
        jobs: list[TransformJob] = []
        for step in [*self._steps, None]:
            if isinstance(step, TransformJob):
                jobs.append(step)
                continue
            if jobs:
                stages.append(compile_columns(jobs, self.bundle.aggregates))
                checked = [j for j in jobs if j.name in needed and j.output_type in _CHECKED]
                if checked:
                    stages.append(FiniteColumns(_sources(checked)))
                jobs = []
            if isinstance(step, _ModelColumn):
                stages.append(_model_stage(step))
        return stages

    def _needed(self) -> set[str]:
        """The columns the model reads, and those they are made from."""
        needed = set(self._inputs)
        for step in reversed(self._steps):
            if step.name not in needed:
                continue
            if isinstance(step, _ModelColumn):
                needed |= {c.name for c in step.predictor.bundle.raw_columns}
            else:
                needed |= {r.name for r in step.inputs.values() if r.kind == "column"}
        return needed

    def column(self, columns: Columns, name: str) -> np.ndarray:
        """This model's predictions as the column `name`: class index or value."""
        out = self.outputs(self.transform(columns))
        if not finite(out):
            raise InvalidInstances(prediction_errors(out, name))
        return out.argmax(axis=1).astype(np.int64) if self.bundle.classification else out

    def outputs(self, columns: Columns) -> np.ndarray:
        """The signature's output for the rows of transformed columns."""
        try:
            return self._signature.feed(columns)
        except KeyError:
            missing = [name for name in self._inputs if name not in columns]
            if missing:
                raise KeyError(f"the bundle makes no column {', '.join(missing)} for the model") from None
            raise

    def predict(self, instances: list[Any]) -> list[dict[str, Any]]:
        """One prediction per instance: {"label", "probabilities"} or {"value"};
        InvalidInstances or TransformFailed when the instances make them fail."""
        out = self.outputs(self.transform(self._validate(instances)))
        if not finite(out):
            raise InvalidInstances(prediction_errors(out, self._signature.output))
        if not self.bundle.classification:
            # float32 printed at its own precision: 152.3, not 152.3000030517578
            return [{"value": v} for v in out.astype(str).astype(np.float64).tolist()]
        return classified(out, self._labels, self._keys)


def classified(out: np.ndarray, labels: list[Any], keys: list[str], small: int = SMALL_BATCH
               ) -> list[dict[str, Any]]:
    """{"label", "probabilities"} per row of finite probabilities: the label of the first
    largest, as `argmax`; the probabilities as float64 rounded to 6 decimals. In numpy
    for a batch, in Python (`round6`, bit for bit the same) for up to `small` rows, where
    numpy's per-call cost is most of the time."""
    if len(out) > small:
        best = out.argmax(axis=1).tolist()
        rows = out.astype(np.float64).round(6).tolist()
    else:
        floats = out.tolist()
        best = [r.index(max(r)) for r in floats]
        rows = [[round6(v) for v in r] for r in floats]
    return [{"label": labels[b], "probabilities": dict(zip(keys, r))} for b, r in zip(best, rows)]


def round6(v: float) -> float:
    """`np.round(v, 6)` of a float64, bit for bit: numpy multiplies by 1e6, rounds half to
    even (rint) and divides, keeping the sign of a zero (-0.0 for -1e-7)."""
    y = v * 1e6
    return math.copysign(round(y), y) / 1e6


def _sources(jobs: Iterable[TransformJob]) -> list[tuple[str, tuple[str, ...]]]:
    return [(j.name, tuple(r.name for r in j.inputs.values() if r.kind == "column")) for j in jobs]


def _model_stage(step: _ModelColumn) -> Callable[[Columns], Columns]:
    return lambda cols: {**cols, step.name: step.predictor.column(cols, step.name)}
