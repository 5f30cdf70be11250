"""The built-in transformers in numpy/pandas, for the prediction API.

Each gives, value for value, what its Spark expression in `runtime/transforms.py` gives
(the parity tests hold them to it). Inputs are a map of slot -> pandas Series (columns)
or plain value (aggregates). Nulls follow Spark: a null input gives a null output, except
`index_string` (the unseen index), `one_hot` (all zeros) and `fill_missing`. Discrete
values are matched by their string form, as Spark casts them: 3 -> "3", True -> "true".

INT outputs that can be null use pandas' nullable Int64; FLOAT outputs are float64 with
NaN for null; FLOAT_LIST outputs are Series of lists of floats.
"""

from __future__ import annotations

import re
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

import numpy as np
import pandas as pd

from mlp.coltypes import ColumnType

if TYPE_CHECKING:
    from runtime.transforms import TransformJob

Transform = Callable[[dict[str, Any], dict[str, Any]], pd.Series]


def _float(s: pd.Series) -> pd.Series:
    return pd.to_numeric(s, errors="coerce").astype("float64")


def _zero_where_present(s: pd.Series) -> pd.Series:
    return pd.Series(np.where(s.isna(), np.nan, 0.0), index=s.index)


def _key(v: Any) -> str | None:
    if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
        return None
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))  # an INT column that pandas holds as float because of nulls
    return str(v)


def keys(s: pd.Series) -> pd.Series:
    """The string form of each value (None for nulls), as Spark's cast to string."""
    if pd.api.types.is_bool_dtype(s) and not s.isna().any():
        return pd.Series(np.where(s.astype(bool), "true", "false"), index=s.index, dtype=object)
    return pd.Series([_key(v) for v in s], index=s.index, dtype=object)


def _positions(s: pd.Series, vocab: list[str]) -> pd.Series:
    """Position of each value in `vocab`; -1 when unseen or null."""
    lookup = {str(k): n for n, k in enumerate(vocab)}
    return pd.Series([lookup.get(k, -1) if k is not None else -1 for k in keys(s)],
                     index=s.index, dtype="int64")


def normalize(i: dict[str, Any], a: dict[str, Any]) -> pd.Series:
    x, mean, sd = _float(i["column"]), i["mean"], i["stddev"]
    if not sd or mean is None:
        return _zero_where_present(x)
    return (x - float(mean)) / float(sd)


def min_max_scale(i: dict[str, Any], a: dict[str, Any]) -> pd.Series:
    x, lo, hi = _float(i["column"]), i["min"], i["max"]
    if lo is None or hi is None or hi == lo:
        return _zero_where_present(x)
    return (x - float(lo)) / (float(hi) - float(lo))


def index_string(i: dict[str, Any], a: dict[str, Any]) -> pd.Series:
    vocab = list(i["vocabulary"] or [])
    pos = _positions(i["column"], vocab)
    return pos.where(pos >= 0, len(vocab)).astype("int64")


def _boundaries(i: dict[str, Any], a: dict[str, Any]) -> np.ndarray:
    b = i.get("boundaries")
    return np.sort(np.asarray(b if b is not None else a.get("boundaries") or [], dtype="float64"))


def bucketize(i: dict[str, Any], a: dict[str, Any]) -> pd.Series:
    x = _float(i["column"])
    idx = np.searchsorted(_boundaries(i, a), x.to_numpy(), side="right")
    return pd.Series(idx, index=x.index).astype("Int64").mask(x.isna())


def log(i: dict[str, Any], a: dict[str, Any]) -> pd.Series:
    x = _float(i["column"])
    with np.errstate(divide="ignore", invalid="ignore"):
        return pd.Series(np.where(x > -1.0, np.log1p(x), np.nan), index=x.index)


def clip(i: dict[str, Any], a: dict[str, Any]) -> pd.Series:
    x = _float(i["column"])
    lo = float(a["min"]) if a.get("min") is not None else None
    hi = float(a["max"]) if a.get("max") is not None else None
    return x.clip(lower=lo, upper=hi)


def fill_missing(i: dict[str, Any], a: dict[str, Any]) -> pd.Series:
    x: pd.Series = i["column"]
    value = i["value"] if "value" in i else a.get("value")
    if value is None:
        return x
    if pd.api.types.is_numeric_dtype(x) and not pd.api.types.is_bool_dtype(x):
        return x.fillna(value)
    fill = _key(value) if pd.api.types.is_string_dtype(x) else value
    return x.astype(object).where(x.notna(), fill)


def _id(v: Any) -> int:
    """A category id as Spark's cast to long reads it ("12", 12.0, true); -1 when it cannot."""
    if isinstance(v, (bool, np.bool_, int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return int(v) if float(v).is_integer() else -1  # NaN is not an integer
    if isinstance(v, str) and re.fullmatch(r"[+-]?\d+", v.strip()):
        return int(v)
    return -1


def _ids(x: pd.Series) -> np.ndarray:
    if pd.api.types.is_integer_dtype(x) and not x.isna().any():
        return x.to_numpy(dtype="int64")
    return np.fromiter((_id(v) for v in x), dtype="int64", count=len(x))


def one_hot(i: dict[str, Any], a: dict[str, Any]) -> pd.Series:
    x: pd.Series = i["column"]
    vocab = i.get("vocabulary")
    if vocab is not None:
        size, pos = len(vocab), _positions(x, list(vocab)).to_numpy()
    else:
        size, pos = int(a.get("size") or 0), _ids(x)
    hot = np.zeros((len(x), size))
    rows = np.flatnonzero((pos >= 0) & (pos < size))
    hot[rows, pos[rows]] = 1.0
    return pd.Series([r.tolist() for r in hot], index=x.index, dtype=object)


def hash_bucket(i: dict[str, Any], a: dict[str, Any]) -> pd.Series:
    n = int(a["num_buckets"])
    out = [None if k is None else zlib.crc32(k.encode("utf-8")) % n for k in keys(i["column"])]
    return pd.Series(out, index=i["column"].index, dtype="Int64")


TRANSFORMS: dict[str, Transform] = {
    "normalize": normalize,
    "min_max_scale": min_max_scale,
    "index_string": index_string,
    "bucketize": bucketize,
    "log": log,
    "clip": clip,
    "fill_missing": fill_missing,
    "one_hot": one_hot,
    "hash_bucket": hash_bucket,
}


def as_type(s: pd.Series, t: ColumnType) -> pd.Series:
    """A transform's output held as the pandas form of column type `t`."""
    if t is ColumnType.FLOAT:
        return _float(s)
    if t is ColumnType.INT:
        f = pd.to_numeric(s, errors="coerce")
        return pd.Series(np.trunc(f.astype("float64")), index=s.index).astype("Int64") \
            if not pd.api.types.is_integer_dtype(f) else f.astype("Int64")
    if t is ColumnType.STRING:
        return keys(s)
    if t is ColumnType.BOOL:
        return s.astype("boolean")
    return s


def _inputs(frame: pd.DataFrame, job: TransformJob, agg_values: Mapping[str, Any]) -> dict[str, Any]:
    return {slot: frame[ref.name] if ref.kind == "column" else agg_values[ref.name]
            for slot, ref in job.inputs.items()}


def _custom(path: Path) -> Transform:
    from runtime.customcode import get_function

    return get_function(path, "transform")


def apply_chain(frame: pd.DataFrame, jobs: list[TransformJob],
                agg_values: Mapping[str, Any]) -> pd.DataFrame:
    """`frame` with one more column per job, run in order (a job may read earlier ones)."""
    out = frame.copy()
    for job in jobs:
        fn = _custom(job.custom_path) if job.custom_path is not None else TRANSFORMS[job.transformer]
        result = pd.Series(fn(_inputs(out, job, agg_values), job.resolved_args()))
        result.index = out.index
        out[job.name] = as_type(result, job.output_type)
    return out


# -- the serving fast path ---------------------------------------------------------------
# The API transforms small batches: pandas' per-call overhead (Series, to_numeric, column
# insertion) costs more there than the arithmetic. These numpy forms give exactly what the
# functions above give (a parity test holds them to it); other jobs fall back to pandas.


_F64 = np.dtype(np.float64)


def _np_float(v: Any) -> np.ndarray:
    if type(v) is np.ndarray and v.dtype is _F64:  # what the API's checked FLOAT columns are
        return v
    a = v.to_numpy() if isinstance(v, pd.Series) else np.asarray(v)
    if a.dtype.kind == "f":
        return a.astype(np.float64, copy=False)
    if a.dtype.kind in "iub":
        return a.astype(np.float64)
    return pd.to_numeric(pd.Series(a), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _np_scale(offset: Any, scale: Any) -> Callable[[np.ndarray], np.ndarray]:
    if not scale or offset is None:
        return lambda x: np.where(np.isnan(x), np.nan, 0.0)
    offset, scale = float(offset), float(scale)
    return lambda x: (x - offset) / scale


def _np_log(x: np.ndarray) -> np.ndarray:
    # log1p only where it is defined (NaN elsewhere), so no floating-point state to guard
    return np.log1p(np.where(x > -1.0, x, np.nan))


def _np_clip(args: Mapping[str, Any]) -> Callable[[np.ndarray], np.ndarray]:
    lo = float(args["min"]) if args.get("min") is not None else None
    hi = float(args["max"]) if args.get("max") is not None else None
    if lo is None and hi is None:
        return lambda x: x
    return lambda x: np.clip(x, lo, hi)


def _np_keys(v: Any) -> list[str | None]:
    """`keys` for an array: the string form of each value, None for nulls."""
    a = v.to_numpy() if isinstance(v, pd.Series) else np.asarray(v)
    if a.dtype.kind == "b":
        return ["true" if x else "false" for x in a.tolist()]
    if a.dtype.kind in "iu":
        return [str(x) for x in a.tolist()]
    if a.dtype.kind == "O" and all(type(x) is str for x in a):
        return list(a)
    return [_key(x) for x in a]


def _np_nullable_ints(values: list[int | None]) -> np.ndarray:
    """int64, or float64 with NaN where a value is null (the signature reads NaN as -1)."""
    if None not in values:
        return np.array(values, dtype=np.int64)
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def _np_index(vocab: list[Any]) -> Callable[[Any], np.ndarray]:
    lookup: dict[str | None, int] = {str(k): n for n, k in enumerate(vocab)}
    unseen = len(vocab)

    def run(col: Any) -> np.ndarray:
        if type(col) is np.ndarray and col.dtype.kind == "O":  # the API's STRING columns: one pass
            return np.array([unseen if k is None else lookup.get(k, unseen) if type(k) is str
                             else lookup.get(_key(k), unseen) for k in col.tolist()], dtype=np.int64)
        return np.array([lookup.get(k, unseen) if k is not None else unseen for k in _np_keys(col)],
                        dtype=np.int64)
    return run


def _np_bucketize(boundaries: Any) -> Callable[[Any], np.ndarray]:
    b = np.sort(np.asarray(boundaries if boundaries is not None else [], dtype="float64"))

    def run(col: Any) -> np.ndarray:
        x = _np_float(col)
        idx = np.searchsorted(b, x, side="right")
        missing = np.isnan(x)
        return np.where(missing, np.nan, idx) if missing.any() else idx.astype(np.int64, copy=False)
    return run


def _np_fill(value: Any, out: ColumnType) -> Callable[[Any], Any]:
    if value is None:
        return lambda col: col
    if out in (ColumnType.FLOAT, ColumnType.INT):
        filler = float(int(value)) if out is ColumnType.INT else float(value)  # Spark's cast truncates
        return lambda col: np.where(np.isnan(x := _np_float(col)), filler, x)
    fill = _key(value) if out is ColumnType.STRING else value
    return lambda col: np.array([fill if _key(v) is None else v for v in np.asarray(col, dtype=object)],
                                dtype=object)


def _np_one_hot(vocab: Any, size: int) -> Callable[[Any], list[list[float]]]:
    def run(col: Any) -> list[list[float]]:
        if vocab is not None:
            lookup = {str(k): n for n, k in enumerate(vocab)}
            width, pos = len(vocab), np.array([lookup.get(k, -1) if k is not None else -1
                                               for k in _np_keys(col)], dtype=np.int64)
        else:
            a = np.asarray(col)
            width = size
            pos = a.astype(np.int64) if a.dtype.kind in "iu" else np.fromiter((_id(v) for v in a), "int64", len(a))
        hot = np.zeros((len(pos), width))
        rows = np.flatnonzero((pos >= 0) & (pos < width))
        hot[rows, pos[rows]] = 1.0
        return hot.tolist()
    return run


def _np_hash(n: int) -> Callable[[Any], np.ndarray]:
    return lambda col: _np_nullable_ints([None if k is None else zlib.crc32(k.encode("utf-8")) % n
                                          for k in _np_keys(col)])


def _discrete(job: TransformJob, i: Mapping[str, Any], args: Mapping[str, Any]) -> Callable[[Any], Any] | None:
    """The numpy forms of the built-ins whose output is not a plain float."""
    if job.transformer == "index_string":
        return _np_index(list(i["vocabulary"] or []))
    if job.transformer == "bucketize":
        return _np_bucketize(i["boundaries"] if i.get("boundaries") is not None else args.get("boundaries"))
    if job.transformer == "fill_missing":
        return _np_fill(i["value"] if "value" in i else args.get("value"), job.output_type)
    if job.transformer == "one_hot":
        return _np_one_hot(i.get("vocabulary"), int(args.get("size") or 0))
    if job.transformer == "hash_bucket":
        return _np_hash(int(args["num_buckets"]))
    return None


Step = Callable[[Mapping[str, Any]], Any]  # the columns so far -> the job's column


def _fast(job: TransformJob, aggs: Mapping[str, Any], args: Mapping[str, Any]) -> Step | None:
    """The numpy form of a job, its aggregate values and arguments bound, or None (custom code)."""
    if job.custom_path is not None:
        return None
    ref = job.inputs.get("column")
    if ref is None or ref.kind != "column" or any(
            r.kind == "column" for slot, r in job.inputs.items() if slot != "column"):
        return None
    source = ref.name
    i = {slot: aggs[r.name] for slot, r in job.inputs.items() if r.kind != "column"}
    discrete = _discrete(job, i, args)
    if discrete is not None:
        return lambda cols: discrete(cols[source])
    if job.output_type is not ColumnType.FLOAT:
        return None
    fn: Callable[[np.ndarray], np.ndarray]
    if job.transformer == "normalize":
        fn = _np_scale(i["mean"], i["stddev"])
    elif job.transformer == "min_max_scale":
        lo, hi = i["min"], i["max"]
        fn = _np_scale(lo, None if lo is None or hi is None or hi == lo
                       else float(hi) - float(lo))
    elif job.transformer == "log":
        fn = _np_log
    elif job.transformer == "clip":
        fn = _np_clip(args)
    else:
        return None
    return lambda cols: fn(_np_float(cols[source]))


class TransformFailed(Exception):
    """A custom transform raised on a batch, or returned what cannot be its column (the
    wrong number of values, a type `as_type` cannot make): the data made user code fail.
    `column` is the transformed column, `__cause__` the exception."""

    def __init__(self, column: str, cause: Exception) -> None:
        super().__init__(f"the transform of {column} raised {type(cause).__name__}: {cause}")
        self.column = column
        self.cause = cause


def _slow(job: TransformJob, aggs: Mapping[str, Any], args: dict[str, Any]) -> Step:
    fn = _custom(job.custom_path) if job.custom_path is not None else TRANSFORMS[job.transformer]

    def step(cols: Mapping[str, Any]) -> Any:
        index = pd.RangeIndex(len(next(iter(cols.values()))))
        inputs = {slot: (cols[ref.name] if isinstance(cols[ref.name], pd.Series)
                         else pd.Series(cols[ref.name], index=index)) if ref.kind == "column"
                  else aggs[ref.name] for slot, ref in job.inputs.items()}
        result = pd.Series(fn(inputs, args))
        result.index = index
        return as_type(result, job.output_type)

    if job.custom_path is None:
        return step  # a built-in that raises is a bug of mlp's, not of the data

    def custom(cols: Mapping[str, Any]) -> Any:
        try:
            return step(cols)
        except Exception as e:
            raise TransformFailed(job.name, e) from e
    return custom


def _step(job: TransformJob, aggs: Mapping[str, Any]) -> Step:
    args = job.resolved_args()
    return _fast(job, aggs, args) or _slow(job, aggs, args)


def compile_columns(jobs: list[TransformJob], agg_values: Mapping[str, Any]
                    ) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """`apply_columns` for these jobs with their arguments, aggregate values and
    functions resolved once, for the API, which runs the same jobs on every request."""
    steps = [(job.name, _step(job, agg_values)) for job in jobs]

    def run(columns: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(columns)
        for name, step in steps:
            out[name] = step(out)
        return out
    return run


def apply_columns(columns: Mapping[str, Any], jobs: list[TransformJob],
                  agg_values: Mapping[str, Any]) -> dict[str, Any]:
    """Like `apply_chain`, over a dict of columns (numpy arrays or Series): numpy for the
    numeric built-ins, pandas for the rest."""
    return compile_columns(jobs, agg_values)(columns)
