"""The checks of a prediction request's instances against the raw input schema.

A request is checked column by column: each raw column's values are type-checked as a set
of Python types, range- and value-checked with numpy, and only the columns that fail are
walked instance by instance to name the culprits
(`{"instance": 0, "field": "sepal_length", "message": "must be a number"}`). The required
FLOAT columns without a list of `values`, the usual case, are first tried together as one
float64 matrix: one type check, one conversion, two comparisons; any failure there sends
them down the column-by-column path, which names every bad value.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from mlp.coltypes import ColumnType
from runtime.bundle import RawColumn

MAX_ERRORS = 100  # listed in one 422 answer
SMALL_BATCH = 16  # instances up to which the fast path checks ranges in Python
_NUMBERS = {float, int}

_PYTYPES: dict[ColumnType, set[type]] = {
    ColumnType.FLOAT: {float, int}, ColumnType.INT: {int}, ColumnType.STRING: {str},
    ColumnType.BOOL: {bool},
}
_TYPE_MESSAGES = {ColumnType.FLOAT: "must be a number", ColumnType.INT: "must be an integer",
                  ColumnType.STRING: "must be a string", ColumnType.BOOL: "must be true or false"}


class InvalidInstances(Exception):
    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(f"{len(errors)} invalid values")
        self.errors = errors


def error(instance: int | None, field: str | None, message: str) -> dict[str, Any]:
    return {"instance": instance, "field": field, "message": message}


Columns = dict[str, Any]  # name -> numpy array, pandas array or Series, one value per row


class Validator:
    """Checks a request's instances against the raw columns and returns them as columns."""

    def __init__(self, columns: tuple[RawColumn, ...]) -> None:
        self.columns = columns
        # The fast path: required FLOAT columns without `values`, checked as one matrix.
        self._numeric = tuple(c for c in columns if c.type is ColumnType.FLOAT and c.required
                              and c.values is None)
        self._names = tuple(c.name for c in self._numeric)
        self._low = np.array([-np.inf if c.min is None else c.min for c in self._numeric])
        self._high = np.array([np.inf if c.max is None else c.max for c in self._numeric])
        self._bounds = list(zip(self._low.tolist(), self._high.tolist()))
        self._rest = tuple(c for c in columns if c not in self._numeric)

    def __call__(self, instances: list[Any]) -> Columns:
        """The instances as raw columns (FLOAT float64 with NaN, INT int64 or nullable
        Int64, BOOL bool or nullable boolean, STRING object); InvalidInstances naming every
        bad value."""
        errors = [error(i, None, "must be a JSON object")
                  for i, inst in enumerate(instances) if type(inst) is not dict]
        if errors:
            raise InvalidInstances(errors[:MAX_ERRORS])
        data = self._numeric_block(instances) if self._numeric else None
        if data is None:
            data = {}
            todo = self.columns
        else:
            todo = self._rest
        for col in todo:
            values = [inst.get(col.name) for inst in instances]
            data[col.name] = _column(col, values, instances, errors)
        if errors:
            errors.sort(key=lambda e: e["instance"])
            raise InvalidInstances(errors[:MAX_ERRORS])
        return data

    def _numeric_block(self, instances: list[dict[str, Any]]) -> Columns | None:
        """The fast path's columns as views of one float64 matrix, or None when any of
        its values is missing, not a number or out of range: the column-by-column path
        then finds and names them."""
        names = self._names
        rows = [[inst.get(n) for n in names] for inst in instances]
        if not {type(v) for row in rows for v in row} <= _NUMBERS:
            return None
        if len(rows) <= SMALL_BATCH:  # Python compares a few numbers faster than numpy
            bounds = self._bounds
            if any(v < lo or v > hi for row in rows for v, (lo, hi) in zip(row, bounds)):
                return None
            matrix = np.array(rows, dtype=np.float64).reshape(len(rows), len(names))
        else:
            matrix = np.array(rows, dtype=np.float64).reshape(len(rows), len(names))
            if (matrix < self._low).any() or (matrix > self._high).any():
                return None
        return {n: matrix[:, j] for j, n in enumerate(names)}


def _column(col: RawColumn, values: list[Any], instances: list[dict[str, Any]],
            errors: list[dict[str, Any]]) -> Any:
    allowed = _PYTYPES[col.type]
    kinds = set(map(type, values))
    has_null = type(None) in kinds
    bad: set[int] = set()
    if not kinds <= allowed | {type(None)}:  # the slow path, only for a bad column
        bad = {i for i, v in enumerate(values) if v is not None and type(v) not in allowed}
        errors.extend(error(i, col.name, _TYPE_MESSAGES[col.type]) for i in sorted(bad))
        values = [None if i in bad else v for i, v in enumerate(values)]
        has_null = True
    if has_null and col.required:
        for i, v in enumerate(values):
            if v is None and i not in bad:
                missing = col.name not in instances[i]
                errors.append(error(i, col.name, "is required" if missing else "must not be null"))
    if col.values is not None:
        _check_values(col, values, errors)
    if col.type is ColumnType.FLOAT or col.type is ColumnType.INT:
        arr = np.array(values, dtype=np.float64)
        _check_range(col, arr, errors)
        if col.type is ColumnType.FLOAT:
            return arr
        return pd.array(values, dtype="Int64") if has_null else np.array(values, np.int64)
    if col.type is ColumnType.BOOL:
        return pd.array(values, dtype="boolean") if has_null else np.array(values, bool)
    return np.array(values, dtype=object)


def _check_range(col: RawColumn, arr: np.ndarray, errors: list[dict[str, Any]]) -> None:
    low = arr < col.min if col.min is not None else None
    high = arr > col.max if col.max is not None else None
    if low is not None and low.any():
        errors.extend(error(int(i), col.name, f"must be at least {col.min:g}")
                      for i in np.flatnonzero(low))
    if high is not None and high.any():
        errors.extend(error(int(i), col.name, f"must be at most {col.max:g}")
                      for i in np.flatnonzero(high))


def _check_values(col: RawColumn, values: list[Any], errors: list[dict[str, Any]]) -> None:
    allowed = set(col.values or ())
    if set(values) - allowed - {None}:
        shown = ", ".join(json.dumps(v) for v in col.values or ())
        for i, v in enumerate(values):
            if v is not None and v not in allowed:
                errors.append(error(i, col.name, f"must be one of {shown}"))
