"""The checks of a prediction request's instances against the raw input schema.

A request is checked column by column. A column whose values are all valid, nearly always
the case, is accepted in one pass (`_Accept`: a set of Python types, the bounds and the
`values` compared in Python, one numpy array made); any other goes down the column path,
which type-checks, range- and value-checks it with numpy and walks the failing values
instance by instance to name the culprits
(`{"instance": 0, "field": "sepal_length", "message": "must be a number"}`). The required
FLOAT columns without a list of `values`, the usual case, are first tried together as one
float64 matrix: one type check, one conversion, two comparisons; any failure there sends
them down the column-by-column path, which names every bad value. A FLOAT value must be
finite and an INT one must fit int64 (JSON has no such bounds: orjson reads integers up to
2^64-1, and a request that only the standard parser reads can hold 1e400 or 10^400); an
INT may be written 7.0 or 7e0, which JSON Schema, and so the OpenAPI document, calls integers.

The same errors name the values the request made the model read (`FiniteColumns`, after
the transforms; `prediction_errors`, after the model): a transformed FLOAT or FLOAT_LIST
column the model needs must not be +-inf, nor NaN made from inputs that were all present
(NaN from a missing optional input is a null, which the model reads as 0).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from operator import le
from typing import Any

import numpy as np
import orjson
import pandas as pd

from mlp.coltypes import ColumnType
from runtime.bundle import RawColumn

MAX_ERRORS = 100  # listed in one 422 answer
SMALL_BATCH = 16  # instances up to which the fast path checks ranges in Python
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_NUMBERS = {float, int}
_LARGEST = float(np.finfo(np.float64).max)  # the fast path's bounds: they keep out +-inf and NaN
INT64_MESSAGE = "must be an integer between -2^63 and 2^63-1"
FINITE_MESSAGE = "must be a finite number"

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


def parse_json(body: bytes) -> Any:
    """The JSON body; ValueError with orjson's message when it is not JSON. What orjson
    refuses and is still JSON is a number past float64's range: the standard parser reads
    it (1e400 -> inf, 10^400 -> an int) and validation names its instance and field. What
    the standard parser alone would take (NaN, Infinity, lone surrogates) stays refused."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as e:
        try:
            value = json.loads(body.decode("utf-8"), parse_constant=_not_json)
        except (ValueError, RecursionError):
            raise e from None
        if not _encodable(value):
            raise e from None
        return value


def _not_json(literal: str) -> Any:
    raise ValueError(f"{literal} is not JSON")


def _encodable(value: Any) -> bool:
    """No lone surrogates ("\\ud800"), which orjson refuses and the standard parser keeps."""
    todo = [value]
    while todo:
        v = todo.pop()
        if isinstance(v, str):
            try:
                v.encode("utf-8")
            except UnicodeEncodeError:
                return False
        elif isinstance(v, dict):
            todo.extend(v)
            todo.extend(v.values())
        elif isinstance(v, list):
            todo.extend(v)
    return True


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
        self._fields = tuple(c.field for c in self._numeric)  # what a request calls them
        self._low = np.array([-_LARGEST if c.min is None else c.min for c in self._numeric])
        self._high = np.array([_LARGEST if c.max is None else c.max for c in self._numeric])
        self._lows, self._highs = self._low.tolist(), self._high.tolist()
        self._rest = tuple(c for c in columns if c not in self._numeric)
        self._checks = {c.name: _Accept(c) for c in columns}

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
            values = [inst.get(col.field) for inst in instances]
            accepted = self._checks[col.name](values)
            data[col.name] = _column(col, values, instances, errors) if accepted is None else accepted
        if errors:
            errors.sort(key=lambda e: e["instance"])
            raise InvalidInstances(errors[:MAX_ERRORS])
        return data

    def _numeric_block(self, instances: list[dict[str, Any]]) -> Columns | None:
        """The fast path's columns as views of one float64 matrix, or None when any of
        its values is missing, not a number or out of range: the column-by-column path
        then finds and names them."""
        fields = self._fields
        rows: list[list[Any]] = [[inst.get(f) for f in fields] for inst in instances]
        if not {type(v) for row in rows for v in row} <= _NUMBERS:
            return None
        try:
            if len(rows) <= SMALL_BATCH:  # Python compares a few numbers faster than numpy
                lows, highs = self._lows, self._highs  # `lo <= v`, `v <= hi`: NaN fails them
                if not all(all(map(le, lows, row)) and all(map(le, row, highs)) for row in rows):
                    return None
                matrix = np.array(rows, dtype=np.float64).reshape(len(rows), len(fields))
            else:
                matrix = np.array(rows, dtype=np.float64).reshape(len(rows), len(fields))
                if not ((matrix >= self._low) & (matrix <= self._high)).all():
                    return None
        except OverflowError:  # an integer past float64's range
            return None
        return dict(zip(self._names, matrix.T))  # matrix.T[j] is matrix[:, j]


class _Accept:
    """A column's values as its array when every one of them is valid, in what `_column`
    would make of them; None when any is not (`_column` then finds and names it). A
    request's values are nearly always valid: this is their way, with no error bookkeeping."""

    def __init__(self, col: RawColumn) -> None:
        self.col = col
        self.types = frozenset(_PYTYPES[col.type] if col.required else _PYTYPES[col.type] | {type(None)})
        self.values = None if col.values is None else frozenset(
            col.values if col.required else (*col.values, None))
        self.low = -math.inf if col.min is None else col.min
        self.high = math.inf if col.max is None else col.max

    def __call__(self, values: list[Any]) -> Any:
        if not set(map(type, values)) <= self.types or (
                self.values is not None and not self.values.issuperset(values)):
            return None  # INT values written 7.0 go this way too: `_column` makes ints of them
        t = self.col.type
        if t is ColumnType.STRING:
            return np.array(values, dtype=object)
        nulls = None in values
        if t is ColumnType.BOOL:
            return _nullable_bools(values) if nulls else np.array(values, bool)
        present = [v for v in values if v is not None] if nulls else values
        try:
            floats = [float(v) for v in present]  # as the column path compares them
        except OverflowError:  # an integer past float64's range
            return None
        if not all(self.low <= x <= self.high for x in floats):  # NaN fails it too
            return None
        if t is ColumnType.FLOAT:
            return np.array(values, dtype=np.float64) if all(map(math.isfinite, floats)) else None
        if present and not (min(present) >= INT64_MIN and max(present) <= INT64_MAX):
            return None
        return _nullable_ints(values) if nulls else np.array(values, np.int64)


def _nullable_ints(values: list[Any]) -> Any:
    """`pd.array(values, dtype="Int64")` of ints and Nones, in a tenth of its time."""
    return pd.arrays.IntegerArray(np.array([1 if v is None else v for v in values], np.int64),
                                  np.array([v is None for v in values], bool))


def _nullable_bools(values: list[Any]) -> Any:
    """`pd.array(values, dtype="boolean")` of bools and Nones, in a tenth of its time."""
    return pd.arrays.BooleanArray(np.array([False if v is None else v for v in values], bool),
                                  np.array([v is None for v in values], bool))


def _column(col: RawColumn, values: list[Any], instances: list[dict[str, Any]],
            errors: list[dict[str, Any]]) -> Any:
    values, has_null = _typed(col, values, instances, errors)
    arr = None
    if col.type is ColumnType.FLOAT:
        arr, values = _floats(col, values, errors)
    elif col.type is ColumnType.INT:
        values, has_null = _int64(col, values, has_null, errors)
    if col.values is not None:
        _check_values(col, values, errors)
    if col.type is ColumnType.FLOAT or col.type is ColumnType.INT:
        arr = np.array(values, dtype=np.float64) if arr is None else arr
        _check_range(col, arr, errors)
        if col.type is ColumnType.FLOAT:
            return arr
        return _nullable_ints(values) if has_null else np.array(values, np.int64)
    if col.type is ColumnType.BOOL:
        return _nullable_bools(values) if has_null else np.array(values, bool)
    return np.array(values, dtype=object)


def _typed(col: RawColumn, values: list[Any], instances: list[dict[str, Any]],
           errors: list[dict[str, Any]]) -> tuple[list[Any], bool]:
    """The values with those of the wrong type named and made None, and whether any is
    None; a missing or null required value named."""
    allowed = _PYTYPES[col.type]
    kinds = set(map(type, values))
    if col.type is ColumnType.INT and float in kinds:  # 7.0 and 1e3 are integers to JSON Schema
        values = [_integral(v) for v in values]
        kinds = set(map(type, values))
    has_null = type(None) in kinds
    bad: set[int] = set()
    if not kinds <= allowed | {type(None)}:  # the slow path, only for a bad column
        bad = {i for i, v in enumerate(values) if v is not None and type(v) not in allowed}
        errors.extend(error(i, col.field, _type_message(col.type, values[i])) for i in sorted(bad))
        values = [None if i in bad else v for i, v in enumerate(values)]
        has_null = True
    if has_null and col.required:
        for i, v in enumerate(values):
            if v is None and i not in bad:
                missing = col.field not in instances[i]
                errors.append(error(i, col.field, "is required" if missing else "must not be null"))
    return values, has_null


def _integral(v: Any) -> Any:
    """An integral float inside int64 as an int; anything else as it is (-2.0**63 too: it is
    what orjson makes of -2^63-1)."""
    if type(v) is float and v.is_integer() and -(2.0**63) < v < 2.0**63:
        return int(v)
    return v


def _type_message(t: ColumnType, v: Any) -> str:
    """A float of 2^63 or more for an INT column is most likely a JSON integer that orjson
    read as a float because it does not fit 64 bits (-2^63-1 reads as -2.0**63, 2^64 as
    2.0**64); an integer of -2^63 it reads as an int."""
    if t is ColumnType.INT and type(v) is float and abs(v) >= 2.0**63:
        return INT64_MESSAGE
    return _TYPE_MESSAGES[t]


def _floats(col: RawColumn, values: list[Any], errors: list[dict[str, Any]]
            ) -> tuple[np.ndarray, list[Any]]:
    """The values as float64 (NaN for None), those that are not finite named and made None."""
    try:
        arr = np.array(values, dtype=np.float64)
        if finite(arr) or (not np.isinf(arr).any() and int(np.isnan(arr).sum()) == values.count(None)):
            return arr, values
    except OverflowError:  # an integer past float64's range
        pass
    bad = {i for i, v in enumerate(values) if v is not None and not _finite_number(v)}
    errors.extend(error(i, col.field, FINITE_MESSAGE) for i in sorted(bad))
    values = [None if i in bad else v for i, v in enumerate(values)]
    return np.array(values, dtype=np.float64), values


def _finite_number(v: Any) -> bool:
    try:
        return math.isfinite(v)
    except OverflowError:
        return False


def _int64(col: RawColumn, values: list[Any], has_null: bool, errors: list[dict[str, Any]]
           ) -> tuple[list[Any], bool]:
    """The values with those past int64 named and made None, and whether any is None."""
    present = [v for v in values if v is not None] if has_null else values
    if not present or (min(present) >= INT64_MIN and max(present) <= INT64_MAX):
        return values, has_null
    bad = {i for i, v in enumerate(values) if v is not None and not INT64_MIN <= v <= INT64_MAX}
    errors.extend(error(i, col.field, INT64_MESSAGE) for i in sorted(bad))
    return [None if i in bad else v for i, v in enumerate(values)], True


def _check_range(col: RawColumn, arr: np.ndarray, errors: list[dict[str, Any]]) -> None:
    low = arr < col.min if col.min is not None else None
    high = arr > col.max if col.max is not None else None
    if low is not None and low.any():
        errors.extend(error(int(i), col.field, f"must be at least {col.min:g}")
                      for i in np.flatnonzero(low))
    if high is not None and high.any():
        errors.extend(error(int(i), col.field, f"must be at most {col.max:g}")
                      for i in np.flatnonzero(high))


def _check_values(col: RawColumn, values: list[Any], errors: list[dict[str, Any]]) -> None:
    allowed = set(col.values or ())
    if set(values) - allowed - {None}:
        shown = ", ".join(json.dumps(v) for v in col.values or ())
        for i, v in enumerate(values):
            if v is not None and v not in allowed:
                errors.append(error(i, col.field, f"must be one of {shown}"))


class FiniteColumns:
    """The check of transformed columns the model reads, run on each batch right after they
    are made: a value that is +-inf, or NaN made from inputs that were all present and
    finite, is an error of that column. NaN where an input is missing (or itself not finite,
    and so named at the column that made it) is what the model's NaN-as-0 encoding expects.

    `columns`: (column name, the names of the columns its transform reads).
    """

    def __init__(self, columns: Iterable[tuple[str, tuple[str, ...]]]) -> None:
        self._columns = tuple(columns)

    def __call__(self, columns: Columns) -> Columns:
        errors: list[dict[str, Any]] = []
        for name, inputs in self._columns:
            if not _all_finite(columns[name]):
                errors.extend(_made_nonfinite(name, columns, inputs))
        if errors:
            errors.sort(key=lambda e: e["instance"])
            raise InvalidInstances(errors[:MAX_ERRORS])
        return columns


def prediction_errors(out: np.ndarray, field: str) -> list[dict[str, Any]]:
    """The rows of a model's output that are not finite, as errors naming `field`."""
    rows = out.reshape(len(out), -1)
    return [error(int(i), field, f"the model's prediction is not finite ({_first_nonfinite(rows[i])})")
            for i in np.flatnonzero(~np.isfinite(rows).all(axis=1))][:MAX_ERRORS]


def finite(arr: np.ndarray) -> bool:
    """Whether every value of a float array is finite, in a quarter of `np.isfinite`'s
    time on the API's small batches: a NaN or inf makes the sum of squares non-finite; so
    can values past 1e154 (float64) or 1e19 (float32), which the exact check then clears."""
    flat = arr if arr.ndim == 1 else arr.reshape(-1)
    return math.isfinite(flat.dot(flat)) or bool(np.isfinite(flat).all())


def _all_finite(values: Any) -> bool:
    arr = values if isinstance(values, np.ndarray) else (
        values.to_numpy() if isinstance(values, pd.Series) else np.asarray(values))
    if arr.dtype.kind == "f":
        return finite(arr)
    missing, infinite = _flags(arr)
    return not (missing.any() or infinite.any())


def _made_nonfinite(name: str, columns: Columns, inputs: tuple[str, ...]) -> list[dict[str, Any]]:
    values = np.asarray(columns[name].to_numpy() if isinstance(columns[name], pd.Series)
                        else columns[name])
    nan, inf = _flags(values)
    in_missing, in_inf = np.zeros(len(values), bool), np.zeros(len(values), bool)
    for source in inputs:
        m, i = _flags(np.asarray(columns[source]))
        in_missing |= m
        in_inf |= i
    made = (inf & ~in_inf) | (nan & ~inf & ~in_missing & ~in_inf)
    return [error(int(i), name, f"the transformed value is not finite ({_first_nonfinite(values[i])})")
            for i in np.flatnonzero(made)]


def _flags(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: (missing or NaN, +-inf) of a column of any type (FLOAT_LIST rows: of any item)."""
    if values.dtype.kind in "fiub":
        rows = values.astype(np.float64, copy=False).reshape(len(values), -1)
        return np.asarray(np.isnan(rows).any(axis=1)), np.asarray(np.isinf(rows).any(axis=1))
    flags = [_value_flags(v) for v in values]
    return (np.array([m for m, _ in flags], dtype=bool).reshape(len(values)),
            np.array([i for _, i in flags], dtype=bool).reshape(len(values)))


def _value_flags(v: Any) -> tuple[bool, bool]:
    if v is None or v is pd.NA:
        return True, False
    if isinstance(v, (str, bytes, bool, np.bool_)):
        return False, False
    try:
        arr = np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError):
        return False, False
    return bool(np.isnan(arr).any()), bool(np.isinf(arr).any())


def _first_nonfinite(v: Any) -> str:
    arr = np.asarray(v, dtype=np.float64).ravel()
    return str(float(arr[~np.isfinite(arr)][0]))
