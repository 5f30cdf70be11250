"""Transformed columns in Spark: one new column per job, added without any Spark action.

Built-ins are native Spark expressions that give the same values as the numpy versions
in `mlp.builtins.pytransform` (the API runs those). Custom transformers run their file's
`transform(inputs, args)` as a pandas UDF; a file that also has `transform_spark(df,
inputs, args)` is run through that, once both have been shown to agree on a sample.
Jobs that read another job's column are added in a later `withColumns`: the plan stays
one projection per layer and nothing runs until the frame is used.

Failures of custom code are typed and belong to one job. `precheck` runs a custom
`transform` in the driver on a few rows first, so that a bug has its real traceback: a
`UserCodeError` at the user's file:line. On the workers, the UDF catches what `transform`
raises and re-raises it as one line, `USER_ERROR_MARK` + JSON (block, file, line, type,
message, traceback); `worker_errors` turns a Python worker's failure that carries it back
into that UserCodeError. That marker, written by mlp's own runner, is the only error text
mlp reads.
"""

from __future__ import annotations

import json
import math
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, NoReturn

from mlp.builtins.catalogue import TRANSFORMERS
from mlp.coltypes import ColumnType
from mlp.errors import DataError, MlpError, UserCodeError
from runtime import customcode
from runtime.sparkenv import spark_type

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import Column, DataFrame

PARITY_ROWS = 1000
REL_TOL = 1e-9
ABS_TOL = 1e-12  # so that values within rounding of 0 compare equal
SHOWN_ROWS = 5
PRECHECK_ROWS = 100  # rows a custom transform runs on in the driver before Spark runs it
USER_ERROR_MARK = "MLP-USER-CODE-ERROR "
TRACE_CHARS = 4000


@dataclass(frozen=True)
class InputRef:
    """A transformer input: a DataFrame column (`kind` "column") or an aggregate's value."""

    kind: str
    name: str


@dataclass(frozen=True)
class TransformJob:
    """One transformed column: `name` is the new column; `custom_path` is set for custom
    code; `output_type` is the column's type (for fill_missing, its input's type)."""

    name: str
    transformer: str
    inputs: Mapping[str, InputRef]
    args: Mapping[str, Any] = field(default_factory=dict)
    custom_path: Path | None = None
    output_type: ColumnType = ColumnType.FLOAT

    @property
    def block(self) -> str:
        return f"transformed_column.{self.name}"

    def called_with(self) -> str:
        """What `transform` gets, for the detail of its errors."""
        keys = ", ".join(f'"{s}"' for s in self.inputs)
        return f"transform(inputs, args) gets inputs with the keys {keys} and args {dict(self.args)}"

    def resolved_args(self) -> dict[str, Any]:
        """`args` over the built-in's catalogue defaults (custom code gets `args` as given)."""
        spec = TRANSFORMERS.get(self.transformer) if self.custom_path is None else None
        defaults = {a.name: a.default for a in spec.args if a.default is not None} if spec else {}
        return {**defaults, **self.args}


def apply_transforms(df: DataFrame, jobs: list[TransformJob],
                     agg_values: Mapping[str, Any]) -> DataFrame:
    """`df` with one more column per job (lazily: no Spark job runs here, except the
    parity check of custom transformers that have `transform_spark`); the first error."""
    out, errors = build_columns(df, jobs, agg_values)
    for job in jobs:
        if job.name in errors:
            raise errors[job.name]
    return out


def build_columns(df: DataFrame, jobs: list[TransformJob],
                  agg_values: Mapping[str, Any]) -> tuple[DataFrame, dict[str, MlpError]]:
    """`df` with the column of every job that could be made, and the error of each job
    that could not (by name). Jobs that read a failed job's column are left out too."""
    errors: dict[str, MlpError] = {}
    left_out: set[str] = set()
    for layer in layers(jobs):
        cols: dict[str, Column] = {}
        for job in layer:
            if any(r.kind == "column" and r.name in left_out for r in job.inputs.values()):
                left_out.add(job.name)
                continue
            try:
                with worker_errors():
                    cols[job.name] = column_for(df, job, agg_values)
            except MlpError as e:
                errors[job.name] = e
                left_out.add(job.name)
        df = df.withColumns(cols) if cols else df
    return df, errors


def layers(jobs: list[TransformJob]) -> list[list[TransformJob]]:
    """Jobs grouped so that each reads only columns made by earlier groups."""
    by_name = {j.name: j for j in jobs}
    depth: dict[str, int] = {}

    def level(job: TransformJob, seen: tuple[str, ...]) -> int:
        if job.name in seen:
            raise ValueError("transformed columns form a cycle: " + " -> ".join(seen + (job.name,)))
        if job.name not in depth:
            ups = [by_name[r.name] for r in job.inputs.values()
                   if r.kind == "column" and r.name in by_name]
            depth[job.name] = 1 + max((level(u, seen + (job.name,)) for u in ups), default=-1)
        return depth[job.name]

    out: list[list[TransformJob]] = []
    for job in jobs:
        d = level(job, ())
        out.extend([] for _ in range(d + 1 - len(out)))
        out[d].append(job)
    return out


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def resolve_inputs(job: TransformJob, agg_values: Mapping[str, Any]) -> dict[str, Any]:
    """Slot -> Spark column (columns) or plain value (aggregates)."""
    from pyspark.sql import functions as F

    out: dict[str, Any] = {}
    for slot, ref in job.inputs.items():
        if ref.kind == "column":
            out[slot] = F.col(_quote(ref.name))
        elif ref.name in agg_values:
            out[slot] = agg_values[ref.name]
        else:
            raise ValueError(f'transformed column "{job.name}": no value for aggregate "{ref.name}"')
    return out


def column_for(df: DataFrame, job: TransformJob, agg_values: Mapping[str, Any]) -> Column:
    """The Spark column of one job (its new column's values)."""
    if job.custom_path is not None:
        if customcode.has_function(job.custom_path, "transform_spark"):
            check_transform_parity(df, job, agg_values)
            return _spark_custom(df, job, agg_values)
        return pandas_udf_column(job, agg_values)
    if job.transformer not in SPARK_BUILTINS:
        raise ValueError(f'transformed column "{job.name}": no built-in "{job.transformer}"')
    inputs = resolve_inputs(job, agg_values)
    out = SPARK_BUILTINS[job.transformer](inputs, job.resolved_args(), job.output_type)
    return out.cast(spark_type(job.output_type))


# --- built-ins as Spark expressions -----------------------------------------------------


def _zero_where_present(x: Column) -> Column:
    from pyspark.sql import functions as F

    return F.when(x.isNotNull(), F.lit(0.0))


def _normalize(i: dict[str, Any], a: Mapping[str, Any], out: ColumnType) -> Column:
    from pyspark.sql import functions as F

    x, mean, sd = i["column"].cast("double"), i["mean"], i["stddev"]
    if not sd or mean is None:
        return _zero_where_present(x)
    return (x - F.lit(float(mean))) / F.lit(float(sd))


def _min_max_scale(i: dict[str, Any], a: Mapping[str, Any], out: ColumnType) -> Column:
    from pyspark.sql import functions as F

    x, lo, hi = i["column"].cast("double"), i["min"], i["max"]
    if lo is None or hi is None or hi == lo:
        return _zero_where_present(x)
    return (x - F.lit(float(lo))) / F.lit(float(hi) - float(lo))


def _lookup(x: Column, vocab: list[str]) -> Column:
    """Position of x's string form in `vocab`; null when unseen or null."""
    from pyspark.sql import functions as F

    if not vocab:
        return F.lit(None).cast("int")
    pairs = [p for k, v in ((str(k), n) for n, k in enumerate(vocab)) for p in (F.lit(k), F.lit(v))]
    return F.create_map(*pairs)[x.cast("string")]


def _index_string(i: dict[str, Any], a: Mapping[str, Any], out: ColumnType) -> Column:
    from pyspark.sql import functions as F

    vocab = list(i["vocabulary"] or [])
    return F.coalesce(_lookup(i["column"], vocab), F.lit(len(vocab)))


def _boundaries(i: dict[str, Any], a: Mapping[str, Any]) -> list[float]:
    b = i.get("boundaries")
    return sorted(float(v) for v in (b if b is not None else a.get("boundaries") or []))


def _bucketize(i: dict[str, Any], a: Mapping[str, Any], out: ColumnType) -> Column:
    from pyspark.sql import functions as F

    x, b = i["column"].cast("double"), _boundaries(i, a)
    if not b:
        return F.when(x.isNotNull(), F.lit(0))
    below = F.filter(F.array(*[F.lit(v) for v in b]), lambda v: v <= x)
    return F.when(x.isNotNull(), F.size(below))


def _log(i: dict[str, Any], a: Mapping[str, Any], out: ColumnType) -> Column:
    from pyspark.sql import functions as F

    return F.log1p(i["column"].cast("double"))  # null for x <= -1


def _clip(i: dict[str, Any], a: Mapping[str, Any], out: ColumnType) -> Column:
    from pyspark.sql import functions as F

    x = i["column"].cast("double")
    if a.get("min") is not None:
        x = F.when(x < F.lit(float(a["min"])), F.lit(float(a["min"]))).otherwise(x)
    if a.get("max") is not None:
        x = F.when(x > F.lit(float(a["max"])), F.lit(float(a["max"]))).otherwise(x)
    return x


def _fill_missing(i: dict[str, Any], a: Mapping[str, Any], out: ColumnType) -> Column:
    from pyspark.sql import functions as F

    value = i["value"] if "value" in i else a.get("value")
    if value is None:
        return i["column"]
    return F.coalesce(i["column"].cast(spark_type(out)), F.lit(value).cast(spark_type(out)))


def _one_hot(i: dict[str, Any], a: Mapping[str, Any], out: ColumnType) -> Column:
    from pyspark.sql import functions as F

    vocab = i.get("vocabulary")
    if vocab is not None:
        size, pos = len(vocab), _lookup(i["column"], list(vocab))
    else:
        size, pos = int(a.get("size") or 0), i["column"].try_cast("long")
    if size <= 0:
        return F.array().cast("array<double>")
    hot = F.coalesce(pos, F.lit(-1))
    return F.transform(F.array_repeat(F.lit(0.0), size),
                       lambda _, n: F.when(n == hot, F.lit(1.0)).otherwise(F.lit(0.0)))


def _hash_bucket(i: dict[str, Any], a: Mapping[str, Any], out: ColumnType) -> Column:
    from pyspark.sql import functions as F

    text = i["column"].cast("string").cast("binary")
    return F.pmod(F.crc32(text), F.lit(int(a["num_buckets"])))


SPARK_BUILTINS: dict[str, Callable[[dict[str, Any], Mapping[str, Any], ColumnType], Column]] = {
    "normalize": _normalize,
    "min_max_scale": _min_max_scale,
    "index_string": _index_string,
    "bucketize": _bucketize,
    "log": _log,
    "clip": _clip,
    "fill_missing": _fill_missing,
    "one_hot": _one_hot,
    "hash_bucket": _hash_bucket,
}


# --- custom transformers ----------------------------------------------------------------


def _udf_runner(source: str, filename: str, module_name: str, slots: list[str],
                consts: dict[str, Any], args: dict[str, Any], block: str = "",
                detail: str = "") -> Callable[..., Any]:
    """The pandas UDF body. Self-contained (it executes the file's text itself) so that a
    worker can run it without importing mlp or finding the file. What `transform` raises
    comes back as one line: `USER_ERROR_MARK` and a JSON object (see `worker_errors`)."""
    import pandas as pd

    loaded: dict[str, Any] = {}
    mark, trace_chars = USER_ERROR_MARK, TRACE_CHARS

    def fail(e: BaseException, line: int | None) -> NoReturn:
        import traceback

        frames = traceback.extract_tb(e.__traceback__)
        own = [f for f in frames if f.filename == filename]
        first = next((i for i, f in enumerate(frames) if f.filename == filename), len(frames))
        trace = ("Traceback (most recent call last):\n" + "".join(traceback.format_list(frames[first:]))
                 + "".join(traceback.format_exception_only(type(e), e)))
        text = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), "")
        payload = {"block": block, "file": filename, "line": own[-1].lineno if own else line,
                   "type": type(e).__name__, "message": text[:300], "detail": detail,
                   "trace": trace[-trace_chars:]}
        raise RuntimeError(mark + json.dumps(payload)) from None

    def load() -> Any:
        if "transform" not in loaded:
            import sys
            import types

            module = sys.modules.get(module_name)
            if module is None:
                module = types.ModuleType(module_name)
                module.__file__ = filename
                sys.modules[module_name] = module
                exec(compile(source, filename, "exec"), module.__dict__)
            loaded["transform"] = module.transform
        return loaded["transform"]

    def run(*cols):  # type: ignore[no-untyped-def]
        fn = None
        try:
            fn = load()
            result = pd.Series(fn({**dict(zip(slots, cols)), **consts}, dict(args)))
        except (Exception, SystemExit) as e:  # noqa: BLE001 - the user's error, sent back typed
            fail(e, getattr(getattr(fn, "__code__", None), "co_firstlineno", None))
        if len(result) != len(cols[0]):
            fail(ValueError(f"transform returned {len(result)} values for {len(cols[0])} rows; "
                            "it must return one per row"), getattr(getattr(fn, "__code__", None), "co_firstlineno", None))
        return result.reset_index(drop=True)

    return run


def decode_worker_error(text: str) -> UserCodeError | None:
    """The UserCodeError that `_udf_runner` put in a Python worker's error text, if any."""
    at = text.find(USER_ERROR_MARK)
    if at < 0:
        return None
    try:
        p, _ = json.JSONDecoder().raw_decode(text, at + len(USER_ERROR_MARK))
        return UserCodeError(str(p["block"]), str(p["file"]), p["line"], str(p["type"]), str(p["message"]),
                             str(p.get("detail", "")), trace=str(p.get("trace", "")))
    except (ValueError, KeyError, TypeError):
        return None


@contextmanager
def worker_errors() -> Iterator[None]:
    """Raise a Python worker's failure in custom code as the UserCodeError it carries."""
    from pyspark.errors import PythonException

    try:
        yield
    except PythonException as e:
        err = decode_worker_error(str(e))
        if err is None:
            raise
        raise err from None


def sample_inputs(df: DataFrame, jobs: list[TransformJob], rows: int | None = None) -> pd.DataFrame:
    """The first `rows` (PRECHECK_ROWS) rows of the custom jobs' column inputs, in pandas (one Spark job)."""
    from pyspark.sql import functions as F

    rows = PRECHECK_ROWS if rows is None else rows
    cols = sorted({r.name for j in jobs if j.custom_path is not None for r in j.inputs.values()
                   if r.kind == "column"})
    return df.select(*[F.col(_quote(c)) for c in cols]).limit(rows).toPandas()


def precheck(sample: pd.DataFrame, job: TransformJob, agg_values: Mapping[str, Any]) -> None:
    """Run a custom job's `transform` in the driver on `sample` (see `sample_inputs`):
    a CustomCodeError, or a UserCodeError with the real traceback, before Spark runs it."""
    assert job.custom_path is not None
    fn = customcode.get_function(job.custom_path, "transform")
    if sample.empty:  # nothing for Spark to run it on either
        return
    inputs = {slot: sample[ref.name].copy() if ref.kind == "column" else agg_values[ref.name]
              for slot, ref in job.inputs.items()}
    result = customcode.call(job.block, job.custom_path, fn, inputs, dict(job.args), detail=job.called_with())
    _check_result(job, fn, result, len(sample))


def _check_result(job: TransformJob, fn: Callable[..., Any], result: Any, rows: int) -> None:
    """A transform's result on the sample: one value per row, of the column's type."""
    import pandas as pd

    assert job.custom_path is not None
    line = getattr(getattr(fn, "__code__", None), "co_firstlineno", None)
    try:
        series = pd.Series(result)
    except (TypeError, ValueError) as e:
        raise _bad_result(job, line, f"returned {type(result).__name__}, not a Series: {e}") from None
    if len(series) != rows:
        raise _bad_result(job, line, f"returned {len(series)} values for {rows} rows; it must return one per row")
    try:
        from pyspark.sql.pandas.conversion import create_arrow_array_from_pandas
        from pyspark.sql.types import DataType
    except ImportError:  # another pyspark: Spark itself will say
        return
    try:
        create_arrow_array_from_pandas(series.reset_index(drop=True), DataType.fromDDL(spark_type(job.output_type)))
    except (TypeError, ValueError, ArithmeticError, NotImplementedError) as e:
        raise _bad_result(job, line, f"returned {series.dtype} values that are not {job.output_type.value} "
                                     f"({customcode.short_message(e.__cause__ or e)})") from None


def _bad_result(job: TransformJob, line: int | None, what: str) -> UserCodeError:
    assert job.custom_path is not None
    return UserCodeError(job.block, str(job.custom_path), line, "ValueError", f"transform {what}",
                         job.called_with())


def pandas_udf_column(job: TransformJob, agg_values: Mapping[str, Any]) -> Column:
    """A custom transformer's `transform` as a pandas UDF over its column inputs."""
    from pyspark.sql import functions as F

    assert job.custom_path is not None
    customcode.get_function(job.custom_path, "transform")  # fail early, naming the file
    code = customcode.read_code(job.custom_path)
    inputs = resolve_inputs(job, agg_values)
    slots = [s for s, ref in job.inputs.items() if ref.kind == "column"]
    if not slots:
        raise ValueError(f'transformed column "{job.name}": a custom transformer needs a column')
    consts = {s: v for s, v in inputs.items() if s not in slots}
    run = _udf_runner(code.source, str(code.path), code.module_name, slots, consts, dict(job.args),
                      job.block, job.called_with())
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")
        udf = F.pandas_udf(run, returnType=spark_type(job.output_type))  # type: ignore[call-overload]
    return udf(*[inputs[s] for s in slots])


def _spark_custom(df: DataFrame, job: TransformJob, agg_values: Mapping[str, Any]) -> Column:
    assert job.custom_path is not None
    fn = customcode.get_function(job.custom_path, "transform_spark")
    inputs = {s: (ref.name if ref.kind == "column" else agg_values[ref.name])
              for s, ref in job.inputs.items()}
    return fn(df, inputs, dict(job.args)).cast(spark_type(job.output_type))


def check_transform_parity(df: DataFrame, job: TransformJob, agg_values: Mapping[str, Any],
                           rows: int = PARITY_ROWS) -> None:
    """Raise DataError with the differing rows when a custom transformer's
    `transform_spark` and `transform` disagree on the first `rows` rows of `df`."""
    from pyspark.sql import functions as F

    sample = df.limit(rows)
    cols = [r.name for r in job.inputs.values() if r.kind == "column"]
    with worker_errors():
        got = sample.select(*[F.col(_quote(c)) for c in cols],
                            pandas_udf_column(job, agg_values).alias("__transform"),
                            _spark_custom(sample, job, agg_values).alias("__transform_spark")
                            ).collect()
    bad = [r for r in got if not values_equal(r["__transform"], r["__transform_spark"])]
    if bad:
        lines = [f"{len(bad)} of {len(got)} sampled rows differ; the first {min(len(bad), SHOWN_ROWS)}:"]
        for r in bad[:SHOWN_ROWS]:
            shown = ", ".join(f"{c}={r[c]!r}" for c in cols)
            lines.append(f"  {shown}: transform -> {r['__transform']!r}, "
                         f"transform_spark -> {r['__transform_spark']!r}")
        raise DataError(
            f'transformed column "{job.name}": transform and transform_spark in '
            f"{job.custom_path} disagree",
            "\n".join(lines),
            f"make transform_spark compute what transform does (the API runs transform), "
            f"or remove transform_spark from {job.custom_path}",
        )


def values_equal(a: Any, b: Any) -> bool:
    """Equality of column values: floats within REL_TOL (NaN equals NaN), lists item-wise."""
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(values_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        if isinstance(a, (str, bool)) or isinstance(b, (str, bool)):
            return False
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL)
    return bool(a == b)
