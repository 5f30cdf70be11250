"""The packed serving signature: every feature of one dtype in one tensor.

A SavedModel exported by the trainer has two signatures over the same model:

    serving_default   one tensor per feature, named after it (see runtime.tfdata): the
                      public one, for TF Serving and anybody loading the SavedModel
    serving_packed    one tensor per dtype, the one the prediction API calls:
                          float32  [None, F]   float features, FLOAT_LIST ones spread
                                               over their widths
                          int64    [None, I]   categorical INT features
                          string   [None, S]   STRING features
                      each in the name order of its features

Every tensor fed to a TensorFlow call costs a fixed conversion (about 40 µs here, as much
as a small model's whole graph), so the API feeds one per dtype, not one per feature. The
layout is a pure function of the features' names, dtypes and widths, which both sides
read from `serving_default`: nothing else needs storing.

`feed` makes the packed arrays from the API's columns: one numpy call for a dtype whose
features are all plain numeric arrays (the usual case), `tensor` then `pack` for the rest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

SIGNATURE = "serving_packed"
DTYPES = ("float32", "int64", "string")
NUMPY = {"float32": np.float32, "int64": np.int64, "string": object}


@dataclass(frozen=True)
class Slot:
    """A feature's place in its dtype's packed tensor; `width` None for a scalar one."""

    name: str
    width: int | None = None

    @property
    def columns(self) -> int:
        return self.width or 1


Layout = dict[str, tuple[Slot, ...]]  # dtype -> slots, for the dtypes the model takes


def layout(features: Iterable[tuple[str, str, int | None]]) -> Layout:
    """The packing of features given as (name, dtype, width or None)."""
    by_dtype: dict[str, list[Slot]] = {}
    for name, dtype, width in sorted(features):
        if dtype not in DTYPES:
            raise ValueError(f"feature {name!r} has dtype {dtype}, not one of {DTYPES}")
        by_dtype.setdefault(dtype, []).append(Slot(name, width))
    return {d: tuple(by_dtype[d]) for d in DTYPES if d in by_dtype}


def unpack(tf: Any, packed: Mapping[str, Any], plan: Layout) -> dict[str, Any]:
    """Inside a tf.function: the packed tensors as one tensor per feature."""
    out: dict[str, Any] = {}
    for dtype, slots in plan.items():
        x = packed[dtype]
        if all(s.width is None for s in slots):
            out.update(zip((s.name for s in slots), tf.unstack(x, num=len(slots), axis=1)))
            continue
        parts = tf.split(x, [s.columns for s in slots], axis=1)
        for slot, part in zip(slots, parts):
            out[slot.name] = part if slot.width is not None else tf.reshape(part, [-1])
    return out


def pack(columns: Mapping[str, np.ndarray], plan: Layout) -> dict[str, np.ndarray]:
    """The numpy arrays of the packed tensors, from one array per feature (a scalar
    feature [n], a FLOAT_LIST one [n, width]; numeric arrays of any numeric dtype, cast
    here in the copy)."""
    out = {}
    for dtype, slots in plan.items():
        rows = len(columns[slots[0].name])
        arr = np.empty((rows, sum(s.columns for s in slots)), dtype=NUMPY[dtype])
        j = 0
        for slot in slots:
            if slot.width is None:
                arr[:, j] = columns[slot.name]
            else:
                arr[:, j:j + slot.width] = columns[slot.name]
            j += slot.columns
        out[dtype] = arr
    return out


_PLAIN = {"float32": "fiub", "int64": "iub"}  # numpy kinds `feed` packs in one call, per dtype


def feed(columns: Mapping[str, Any], plan: Layout) -> list[np.ndarray]:
    """The packed arrays, in plan order, from the API's columns (any type `tensor` takes)."""
    out = []
    for dtype, slots in plan.items():
        values = [columns[s.name] for s in slots]
        kinds = _PLAIN.get(dtype, "")
        if all(s.width is None for s in slots) and all(
                type(v) is np.ndarray and v.ndim == 1 and v.dtype.kind in kinds for v in values):
            # [features, n] cast as `pack`'s assignments cast, then one row per instance
            out.append(np.ascontiguousarray(np.array(values, dtype=NUMPY[dtype]).T))
        else:
            tensors = {s.name: tensor(v, dtype, s.width) for s, v in zip(slots, values)}
            out.append(pack(tensors, {dtype: slots})[dtype])
    return out


def tensor(values: Any, dtype: str, width: int | None) -> np.ndarray:
    """A column as a numpy array of the values a signature input takes (see
    runtime.tfdata): objects for strings ("" for a missing one), [n, width] floats for a
    FLOAT_LIST (zeros for a missing or misshapen row), numbers of any numeric dtype for the
    rest (-1 for a missing INT, NaN for a missing FLOAT)."""
    if dtype == "string":
        arr = np.asarray(values, dtype=object)
        missing = pd.isna(arr)
        return np.where(missing, "", arr) if missing.any() else arr
    if width is not None:
        rows = [r if r is not None and len(r) == width else [0.0] * width for r in values]
        return np.array(rows, dtype=np.float64).reshape(len(rows), width)
    kind = getattr(values, "dtype", None)
    objects = kind is None or kind == np.dtype("O")  # not `in (None, ...)`: dtype(None) is float64
    if isinstance(values, np.ndarray) and not objects:
        arr = values
    elif not objects:  # a pandas Series or nullable array
        arr = values.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        arr = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(np.float64, na_value=np.nan)
    if dtype == "int64":
        return np.where(np.isnan(arr), -1, arr).astype(np.int64) if arr.dtype.kind == "f" \
            else arr
    return arr  # cast to float32 by the signature, in the copy it makes anyway
